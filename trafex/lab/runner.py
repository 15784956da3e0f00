"""``trafex lab up | down | status``: the topology built in network namespaces.

Every namespace is ``PREFIX + node`` (``tx-router1``); the run directory
(``/run/trafex-lab/PREFIX``) holds each node's sockets, logs and state, and
``state.json``, the processes the lab started. ``down`` ends those processes by PID,
then every process still inside one of the lab's namespaces (the lab put it there),
and removes the namespaces (their links, nftables tables and ip rules go with them).
It works from what the kernel shows, not only from ``state.json``, so it also cleans
up after a crash.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from trafex.lab import frr, netns, pki, procs
from trafex.lab.procs import Proc
from trafex.lab.topology import (
    HOST_SYSCTLS,
    ROUTER_SYSCTLS,
    ApiAccess,
    Node,
    Topology,
    controller_access,
    frr_daemons,
)
from trafex.model.errors import TrafexError

log = structlog.get_logger("trafex.lab")

DEFAULT_PREFIX = "tx-"
RUN_ROOT = Path(os.environ.get("TRAFEX_LAB_RUN", "/run/trafex-lab"))
UP_TIMEOUT = 30.0
UP_STATES = ("Established", "Full")  # BGP sessions, OSPFv3 adjacencies
REQUIRED = {
    "ip": "iproute2",
    "sysctl": "procps",
    "nft": "nftables",
    "traceroute": "traceroute",
    "gobgpd": "gobgpd",
}


class LabError(TrafexError):
    """The lab cannot be built, reached or removed; the message says what to do."""


def prerequisites() -> str | None:
    """The first missing prerequisite, as one line, or None."""
    if not netns.is_root():
        return "the lab needs root (network namespaces): run it with sudo"
    for binary, package in REQUIRED.items():
        if shutil.which(binary) is None:
            return f"{binary} not found: apt-get install {package} (or: make setup)"
    return frr.missing()


def tool(name: str) -> str:
    """A trafex console script next to this Python (the venv's), else on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise LabError(f"{name} not found: install trafex (make setup)")
    return found


@dataclass
class Lab:
    topology: Topology
    prefix: str = DEFAULT_PREFIX
    rundir: Path = field(default=Path())

    def __post_init__(self) -> None:
        if self.rundir == Path():
            self.rundir = RUN_ROOT / self.prefix.rstrip("-")

    # -- names ----------------------------------------------------------------------------

    def ns(self, node: str) -> str:
        return f"{self.prefix}{node}"

    def nodedir(self, node: str) -> Path:
        return self.rundir / node

    @functools.cached_property
    def access(self) -> ApiAccess:
        """How the lab's clients reach trafexd (its address, CA and token), from the
        controller's trafexd.toml, read once."""
        return controller_access(self.topology)

    @property
    def state_file(self) -> Path:
        return self.rundir / "state.json"

    def procs(self) -> list[Proc]:
        try:
            data = json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return []
        return [Proc.from_dict(p) for p in data.get("procs", [])]

    def _save(self, started: list[Proc]) -> None:
        self.rundir.mkdir(parents=True, exist_ok=True)
        state = {"prefix": self.prefix, "procs": [p.as_dict() for p in started]}
        self.state_file.write_text(json.dumps(state, indent=1))

    # -- up -------------------------------------------------------------------------------

    def is_up(self) -> bool:
        started = self.procs()
        return (
            bool(started)
            and all(procs.alive(p) for p in started)
            and set(netns.namespaces(self.prefix)) == {self.ns(n.name) for n in self.topology.nodes}
        )

    def up(self, timeout: float = UP_TIMEOUT) -> float:
        """Build the lab and wait until every BGP session is established; the seconds
        it took. Idempotent: a lab that is up is only checked; what a crash left is
        removed first."""
        reason = prerequisites()
        if reason:
            raise LabError(reason)
        begin = time.monotonic()
        if not self.is_up():
            if netns.namespaces(self.prefix) or self.rundir.exists():
                self.down()
            started: list[Proc] = []
            try:
                self._build(started)
            except (TrafexError, OSError) as error:
                self._save(started)
                self.down()
                raise LabError(f"lab up failed: {error}") from None
            self._save(started)
        try:
            self.wait_established(timeout - (time.monotonic() - begin))
        except LabError:
            if os.environ.get("TRAFEX_LAB_KEEP") != "1":
                self.down()
            raise
        return time.monotonic() - begin

    def _build(self, started: list[Proc]) -> None:
        topo = self.topology
        for node in topo.nodes:
            sysctls = ROUTER_SYSCTLS if node.kind == "router" else HOST_SYSCTLS
            netns.create(self.ns(node.name), sysctls)
            self.nodedir(node.name).mkdir(parents=True, exist_ok=True)
        for i, link in enumerate(topo.links):
            netns.veth(
                ((self.ns(link.a.node), link.a.ifname), (self.ns(link.b.node), link.b.ifname)),
                (f"{self.prefix}{i}a", f"{self.prefix}{i}b"),
            )
        resolver = topo.resolver
        for node in topo.nodes:
            if node.kind == "router":
                continue  # a router's addresses are in its frr.conf: zebra sets them
            for end in topo.ends_of(node.name):
                netns.add_addresses(self.ns(node.name), end.ifname, end.addresses)
            assert node.gateway is not None
            netns.default_route(self.ns(node.name), node.gateway)
            if resolver is not None:
                server = topo.address(resolver.name)
                netns.write_etc(self.ns(node.name), "resolv.conf", f"nameserver {server}\n")
        daemons = frr_daemons()
        for node in topo.of_kind("router"):
            started += frr.start_router(
                node.name,
                self.ns(node.name),
                node.frr_config,
                self.nodedir(node.name),
                daemons,
            )
        if resolver is not None:
            started.append(self._start_resolver(resolver))
        self.make_pki()
        started.append(self._start_trafexd(topo.controller))
        for node in topo.enforcers:
            started.append(self._start_enforcer(node))
        started.append(self._start_sensor(topo.controller))

    def make_pki(self) -> ApiAccess:
        """The API's certificates and token (made once, in trafexd.toml's pki folder)."""
        access = self.access
        controller = str(self.topology.address(self.topology.controller.name))
        pki.ensure(access.pki, (controller,), access.token)
        return access

    def _spawn(self, name: str, node: str, argv: list[str], **env: str) -> Proc:
        directory = self.nodedir(node)
        return procs.spawn(name, node, self.ns(node), argv, directory / f"{name}.log", env)

    def _start_resolver(self, node: Node) -> Proc:
        records = [f"{name}={address}" for name, address in node.dns]
        argv = [sys.executable, "-m", "trafex.lab.dnsd", "--listen"]
        return self._spawn(
            "dnsd", node.name, [*argv, str(self.topology.address(node.name)), *records]
        )

    def _start_trafexd(self, node: Node) -> Proc:
        assert node.trafexd is not None
        state = self.nodedir(node.name) / "state"
        argv = [tool("trafexd"), "--config", str(node.trafexd)]
        return self._spawn("trafexd", node.name, argv, TRAFEX_STATE_DIR=str(state))

    def _start_enforcer(self, node: Node) -> Proc:
        assert node.enforce is not None
        argv = [tool("trafex"), "enforce", "run", "--config", str(node.enforce)]
        state = str(self.nodedir(node.name))  # the enforcer keeps its files in enforce/
        return self._spawn("enforce", node.name, argv, TRAFEX_STATE_DIR=state)

    def sensor_output(self) -> Path:
        return self.nodedir(self.topology.controller.sensor_node) / "sensor.jsonl"

    def _start_sensor(self, controller: Node) -> Proc:
        assert controller.sensor is not None
        access = self.access
        argv = [
            tool("trafex"),
            "detect",
            "--interface",
            controller.sensor_interface,
            "--config",
            str(controller.sensor),
            "--controller",
            access.target,
            "--tls-ca",
            str(access.ca),
            "--token-file",
            str(access.token),
            "--json",
        ]
        node = controller.sensor_node
        directory = self.nodedir(node)
        # stdout (one JSON detection a line) apart from the log on stderr
        out = self.sensor_output()
        err = directory / "sensor.log"
        command = f'exec "$@" >>{_shq(str(out))} 2>>{_shq(str(err))}'
        return procs.spawn(
            "sensor", node, self.ns(node), ["sh", "-c", command, "sensor", *argv], err
        )

    # -- waiting and looking ---------------------------------------------------------------

    def bgp_state(self) -> dict[str, dict[str, str]]:
        """Every BGP session's state, per node that speaks BGP, and every OSPFv3
        adjacency between routers (``ospf6 IFNAME``: Full or Down): BGP between
        loopbacks can be up while the IGP still converges."""
        states: dict[str, dict[str, str]] = {}
        routers = {n.name for n in self.topology.of_kind("router")}
        for name in sorted(routers):
            try:
                states[name] = frr.bgp_peers(self.nodedir(name))
                full = frr.ospf6_full(self.nodedir(name))
            except frr.FrrError as error:
                states[name] = {"vtysh": str(error)}
                continue
            for link in self.topology.links:
                if {link.a.node, link.b.node} <= routers:
                    for end in link.ends():
                        if end.node == name:
                            up = "Full" if end.ifname in full else "Down"
                            states[name][f"ospf6 {end.ifname}"] = up
        controller = self.topology.controller.name
        ctl = [tool("trafex-ctl"), "status", "--json"]
        states[controller] = self._json_peers(controller, ctl, self.client_env())
        for node in self.topology.enforcers:
            key = f"{node.name}/enforce"
            argv = [tool("trafex"), "enforce", "status", "--json", "--config", str(node.enforce)]
            env = {"TRAFEX_STATE_DIR": str(self.nodedir(node.name))}
            states[key] = self._json_peers(node.name, argv, env)
        return states

    def _json_peers(
        self, node: str, argv: list[str], env: dict[str, str] | None = None
    ) -> dict[str, str]:
        try:
            done = subprocess.run(
                [*netns.exec_prefix(self.ns(node)), *argv],
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
                env={**os.environ, **(env or {})},
            )
            data = json.loads(done.stdout)
        except (OSError, subprocess.TimeoutExpired, ValueError):
            return {"api": "not answering"}
        return {p["address"]: str(p["state"]).capitalize() for p in data.get("peers", [])}

    def wait_established(self, timeout: float) -> None:
        deadline = time.monotonic() + max(timeout, 1.0)
        while True:
            self._check_alive()
            states = self.bgp_state()
            down = {
                f"{node} -> {peer}: {state}"
                for node, peers in states.items()
                for peer, state in peers.items()
                if state not in UP_STATES
            }
            if not down and all(states.values()) and self._igp_settled():
                return
            if time.monotonic() > deadline:
                raise LabError(
                    f"BGP sessions not established after {timeout:.0f} s: "
                    + "; ".join(sorted(down) or ["no peers"])
                )
            time.sleep(0.25)

    def _igp_settled(self) -> bool:
        """Full adjacencies are not yet converged routes: no SPF pending anywhere, and
        every router's link-state database of the same size."""
        try:
            states = [
                frr.ospf6_settled(self.nodedir(n.name)) for n in self.topology.of_kind("router")
            ]
        except frr.FrrError:
            return False
        return all(idle for idle, _ in states) and len({count for _, count in states}) == 1

    def _check_alive(self) -> None:
        dead = [p for p in self.procs() if not procs.alive(p)]
        if dead:
            what = ", ".join(f"{p.node}/{p.name} (log {p.log})" for p in dead)
            raise LabError(f"lab process(es) died: {what}")

    def status(self) -> dict[str, Any]:
        started = self.procs()
        return {
            "prefix": self.prefix,
            "rundir": str(self.rundir),
            "namespaces": netns.namespaces(self.prefix),
            "processes": [{**p.as_dict(), "alive": procs.alive(p)} for p in started],
            "bgp": self.bgp_state() if started else {},
        }

    # -- down -----------------------------------------------------------------------------

    def down(self) -> list[str]:
        """Remove everything the lab made; returns what could not be removed."""
        problems = []
        for proc in reversed(self.procs()):
            if not procs.stop(proc):
                problems.append(f"{proc.node}/{proc.name} pid {proc.pid} did not end")
            if proc.name in frr_daemons():
                frr.remove_tmpdir(proc)
        for namespace in netns.namespaces(self.prefix):
            for pid in netns.pids_in(namespace):
                procs.kill_pid(pid)
        problems += netns.remove_all(self.prefix)
        shutil.rmtree(self.rundir, ignore_errors=True)
        return problems

    def vtysh(self, node: str, command: str) -> str:
        """An FRR command on a router of the lab."""
        if node not in {n.name for n in self.topology.of_kind("router")}:
            raise LabError(f"{node!r} is not a router of the lab")
        return frr.vtysh(self.nodedir(node), command)

    def client_env(self) -> dict[str, str]:
        """TRAFEX_TLS_CA and TRAFEX_TOKEN_FILE: trafex-ctl run in the lab (``trafex lab
        exec controller -- trafex-ctl …``) presents the lab's CA and token."""
        return self.access.client_env()

    def exec(self, node: str, argv: list[str]) -> int:
        """Run a command inside a node's namespace, with the terminal's stdio."""
        if self.ns(node) not in netns.namespaces(self.prefix):
            raise LabError(f"no node {node!r} in the lab {self.prefix!r} (trafex lab up first)")
        env = {**os.environ, **self.client_env()}
        if node in {n.name for n in self.topology.enforcers}:
            env["TRAFEX_STATE_DIR"] = str(self.nodedir(node))
        return subprocess.call([*netns.exec_prefix(self.ns(node)), *argv], env=env)


def _shq(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"
