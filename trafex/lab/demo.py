"""The talk's two demos, run in the lab and checked: ``trafex lab demo dns | retransmit``.

Each demo drives real traffic, lets the lab's sensor, trafexd and enforcer react on
their own, and checks the outcome on the routers and with traceroute; then it undoes
what it caused, so that it can run again. A demo passes only when the path change was
observed; the report gives every check and the time from the triggering packet (the
sensor's kernel timestamp) to the first packet on the new path (a probe's).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from trafex.lab import frr, netns, procs
from trafex.lab.runner import Lab, LabError, tool
from trafex.lab.topology import End

DNS_NAME = "badhacks.com."
LOSS_TABLE = "trafex_lab_loss"  # the demo's induced loss (nftables: no netem needed)
LOSS_PERCENT = 30
SERVER_PORT = 443
LOCAL_PREF_MAX = 4294967295


@dataclass
class Result:
    demo: str
    ok: bool = True
    checks: list[tuple[str, bool, str]] = field(default_factory=list)
    trigger_to_path_ms: float | None = None
    outputs: dict[str, str] = field(default_factory=dict)

    def check(self, name: str, ok: bool, detail: str = "") -> bool:
        self.checks.append((name, ok, detail))
        self.ok = self.ok and ok
        return ok

    def as_dict(self) -> dict[str, Any]:
        return {
            "demo": self.demo,
            "ok": self.ok,
            "trigger_to_path_ms": self.trigger_to_path_ms,
            "checks": [{"check": n, "ok": ok, "detail": d} for n, ok, d in self.checks],
            "outputs": self.outputs,
        }

    def report(self) -> str:
        lines = [f"demo {self.demo}: {'PASSED' if self.ok else 'FAILED'}"]
        for name, ok, detail in self.checks:
            lines.append(f"  [{'ok' if ok else 'FAIL'}] {name}{': ' + detail if detail else ''}")
        if self.trigger_to_path_ms is not None:
            lines.append(
                f"  trigger -> first packet on the new path: {self.trigger_to_path_ms:.0f} ms"
            )
        for title, text in self.outputs.items():
            lines.append(f"--- {title}")
            lines += [f"  {line}" for line in text.rstrip().splitlines()]
        return "\n".join(lines)


class Driver:
    """Commands in the lab's nodes, for the demos."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.topo = lab.topology

    def run(
        self, node: str, argv: list[str], timeout: float = 20.0, stdin: str | None = None
    ) -> str:
        env = {**os.environ, **self.lab.client_env()}  # trafex-ctl: the lab's CA and token
        if node in {n.name for n in self.topo.enforcers}:
            env["TRAFEX_STATE_DIR"] = str(self.lab.nodedir(node))
        done = subprocess.run(
            [*netns.exec_prefix(self.lab.ns(node)), *argv],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            input=stdin,
            env=env,
        )
        return done.stdout + done.stderr

    def popen(self, node: str, argv: list[str]) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [*netns.exec_prefix(self.lab.ns(node)), *argv],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            start_new_session=True,
        )

    def ctl(self, *argv: str) -> str:
        return self.run(self.topo.controller.name, [tool("trafex-ctl"), *argv])

    def traceroute(self, source: str, destination: str) -> tuple[list[str | None], str]:
        """Hop addresses (None for a hop that did not answer) and the raw output."""
        node = self._host_of(source)
        text = self.run(
            node,
            ["traceroute", "-6", "-n", "-q", "1", "-w", "1", "-m", "6", "-s", source, destination],
        )
        hops: list[str | None] = []
        for line in text.splitlines()[1:]:
            words = line.split()
            if words and words[0].isdigit():
                hops.append(None if len(words) < 2 or words[1] == "*" else words[1])
        return hops, text

    def _host_of(self, address: str) -> str:
        for node in self.topo.nodes:
            if any(str(a.ip) == address for a in self.topo.addresses(node.name)):
                return node.name
        raise LabError(f"no lab node has {address}")

    def wait_hop(self, source: str, destination: str, hop: int, want: str, timeout: float) -> str:
        """Traceroute until hop number ``hop`` is ``want``; the last output."""
        deadline = time.monotonic() + timeout
        while True:
            hops, text = self.traceroute(source, destination)
            if len(hops) >= hop and hops[hop - 1] == want:
                return text
            if time.monotonic() > deadline:
                raise LabError(f"hop {hop} from {source} to {destination} is not {want}:\n{text}")
            time.sleep(0.3)

    def end(self, node: str, neighbor: str) -> End:
        """``node``'s end of its link to ``neighbor``."""
        for link in self.topo.links:
            ends = {link.a.node: link.a, link.b.node: link.b}
            if node in ends and neighbor in ends:
                return ends[node]
        raise LabError(f"no link between {node} and {neighbor}")

    def router_hop(self, router: str, neighbor: str) -> str:
        """``router``'s address on its link to ``neighbor`` (what traceroute shows)."""
        return str(self.end(router, neighbor).addresses[0].ip)

    def probe(self, node: str, interface: str, src: str, dst: str) -> subprocess.Popen[str]:
        argv = [sys.executable, "-m", "trafex.lab.probe", "--interface", interface]
        process = self.popen(node, [*argv, "--src", src, "--dst", dst, "--timeout", "20"])
        assert process.stdout is not None
        if process.stdout.readline().strip() != "ready":
            raise LabError(f"the probe on {node}:{interface} did not start")
        return process

    def detections(self) -> list[dict[str, Any]]:
        out = []
        try:
            text = self.lab.sensor_output().read_text()
        except OSError:
            return []
        for line in text.splitlines():
            try:
                item = json.loads(line)
            except ValueError:
                continue
            if isinstance(item, dict) and "detector" in item:
                out.append(item)
        return out

    def wait_detection(
        self, since: int, accept: Callable[[dict[str, Any]], bool]
    ) -> dict[str, Any]:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            for item in self.detections()[since:]:
                if accept(item):
                    return item
            time.sleep(0.05)
        raise LabError("the sensor reported no detection in 20 s")


def _probe_time(process: subprocess.Popen[str]) -> float | None:
    try:
        out, _ = process.communicate(timeout=25)
    except subprocess.TimeoutExpired:
        process.kill()
        return None
    for line in out.splitlines():
        if line.startswith("{"):
            ts: float = json.loads(line)["ts"]
            return ts
    return None


def _daemons_alive(lab: Lab, result: Result) -> None:
    dead = [f"{p.node}/{p.name}" for p in lab.procs() if not procs.alive(p)]
    result.check(
        "every lab daemon still alive (FRR, trafexd, enforcer, sensor)",
        not dead,
        ", ".join(dead) or f"{len(lab.procs())} processes",
    )


def run(lab: Lab, name: str) -> Result:
    if not lab.is_up():
        raise LabError(f"the lab {lab.prefix!r} is not up: run 'trafex lab up' first")
    result = Result(name)
    try:
        (demo_dns if name == "dns" else demo_retransmit)(Driver(lab), result)
    except (LabError, frr.FrrError, subprocess.TimeoutExpired) as error:
        result.check("demo completed", False, str(error))
    _daemons_alive(lab, result)
    return result


# -- demo 1: a DNS answer for a blocklisted name -------------------------------------------


def _bgp_path(driver: Driver, router: str, prefix: str) -> dict[str, Any] | None:
    data = frr.vtysh_json(driver.lab.nodedir(router), f"show bgp ipv6 unicast {prefix} json")
    paths = data.get("paths", []) if isinstance(data, dict) else []
    best = [p for p in paths if p.get("bestpath", {}).get("overall")]
    return best[0] if best else None


def demo_dns(driver: Driver, result: Result) -> None:
    topo = driver.topo
    bad = next(a for n, a in (topo.resolver.dns if topo.resolver else ()) if n == DNS_NAME)
    target = str(bad)
    prefix = f"{target}/128"
    host = str(topo.address("host1"))
    controller = topo.controller
    driver.ctl("del-route", prefix)  # a previous run's
    normal = driver.router_hop("router3", "router1")
    result.outputs["traceroute before"] = driver.wait_hop(host, target, 2, normal, 15)
    result.check(f"steady state: host1 -> {target} via router3", True, f"hop 2 {normal}")

    segment = driver.end("router2", controller.name).ifname
    probe = driver.probe("router2", segment, host, target)
    pinger = driver.popen("host1", ["ping", "-6", "-n", "-i", "0.02", "-I", host, target])
    try:
        seen = len(driver.detections())
        answer = driver.run("host1", ["getent", "ahostsv6", DNS_NAME.rstrip(".")])
        result.check(f"host1 resolves {DNS_NAME}", target in answer, answer.split("\n")[0])
        detection = driver.wait_detection(seen, lambda d: d.get("detector") == "dns")
        result.check("the sensor flags the DNS answer", True, json.dumps(detection)[:160])
        first = _probe_time(probe)
    finally:
        pinger.terminate()
        pinger.wait(5)
    if result.check(
        "traffic to it reaches the controller's segment via router2", first is not None
    ):
        assert first is not None
        result.trigger_to_path_ms = (first - float(detection["ts"])) * 1000
    for router in ("router1", "router4"):

        def learned(router: str = router) -> dict[str, Any] | None:
            return _bgp_path(driver, router, prefix)

        path = frr.wait_for(learned, 10, f"{prefix} on {router}")
        assert isinstance(path, dict)
        aspath = str(path.get("aspath", {}).get("string", path.get("path", "")))
        locpref = path.get("locPrf")
        result.check(
            f"{router} has {prefix} from AS {controller.asn}, local-preference {LOCAL_PREF_MAX}",
            locpref == LOCAL_PREF_MAX and str(controller.asn) in aspath,
            f"localpref {locpref}, AS path {aspath}",
        )
    redirected = driver.router_hop("router2", "router1")
    result.outputs["traceroute after"] = driver.wait_hop(host, target, 2, redirected, 10)
    result.check(f"host1 -> {target} now via router2", True, f"hop 2 {redirected}")
    result.outputs["router4: show bgp ipv6 unicast"] = frr.vtysh(
        driver.lab.nodedir("router4"), f"show bgp ipv6 unicast {prefix}"
    )
    driver.ctl("del-route", prefix)
    driver.wait_hop(host, target, 2, normal, 15)
    result.check("after del-route the path is back via router3", True)


# -- demo 2: a TCP flow with retransmissions -------------------------------------------------


def _loss(driver: Driver, interface: str, src: str, dst: str, on: bool) -> None:
    router = "router1"
    if not on:
        driver.run(router, ["nft", "delete", "table", "inet", LOSS_TABLE])
        return
    rules = (
        f"table inet {LOSS_TABLE} {{\n chain forward {{\n"
        "  type filter hook forward priority 0;\n"
        f'  oifname "{interface}" ip6 saddr {src} ip6 daddr {dst} tcp dport {SERVER_PORT}'
        f" tcp flags & syn == 0 numgen random mod 100 < {LOSS_PERCENT} counter drop\n"
        " }\n}\n"
    )
    out = driver.run(router, ["nft", "-f", "-"], stdin=rules)
    if out.strip():
        raise LabError(f"could not induce loss: {out.strip()}")


_SERVER = (
    "import socket,sys\n"
    "s=socket.socket(socket.AF_INET6);s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
    "s.bind((sys.argv[1],int(sys.argv[2])));s.listen(4);print('ready',flush=True)\n"
    "while True:\n c,_=s.accept()\n while c.recv(65536):pass\n c.close()\n"
)
_CLIENT = (
    "import socket,sys,time\n"
    "c=socket.create_connection((sys.argv[2],int(sys.argv[3])),source_address=(sys.argv[1],0))\n"
    "end=time.monotonic()+float(sys.argv[4])\n"
    "while time.monotonic()<end:\n c.sendall(b'x'*16384);time.sleep(0.005)\n"
    "c.close()\n"
)


def _rules_text(src: str, dst: str) -> str:
    return f"source {src}/128 destination {dst}/128"


def demo_retransmit(driver: Driver, result: Result) -> None:
    topo = driver.topo
    flow_src, other_src = (str(a.ip) for a in topo.addresses("host1")[:2])
    dst = str(topo.address("host4"))
    for a, b in ((flow_src, dst), (dst, flow_src)):
        driver.ctl("del-flow", _rules_text(a, b))  # a previous run's
    normal = driver.router_hop("router3", "router1")
    redirected = driver.router_hop("router2", "router1")
    before = driver.wait_hop(flow_src, dst, 2, normal, 15)
    result.outputs["traceroute -s ::10 before"] = before
    result.check(f"steady state: {flow_src} -> {dst} via router3", True, f"hop 2 {normal}")

    to_r2 = driver.end("router1", "router2").ifname
    to_r3 = driver.end("router1", "router3").ifname
    server = driver.popen("host4", [sys.executable, "-c", _SERVER, dst, str(SERVER_PORT)])
    try:
        assert server.stdout is not None
        if server.stdout.readline().strip() != "ready":
            raise LabError("the TCP server on host4 did not start")
        _loss(driver, to_r3, flow_src, dst, on=True)
        probe = driver.probe("router1", to_r2, flow_src, dst)
        seen = len(driver.detections())
        client = driver.popen(
            "host1", [sys.executable, "-c", _CLIENT, flow_src, dst, str(SERVER_PORT), "3"]
        )
        detection = driver.wait_detection(seen, lambda d: d.get("detector") == "retransmit")
        result.check("the sensor flags the retransmitting flow", True, json.dumps(detection)[:200])
        first = _probe_time(probe)
        client.wait(30)
    finally:
        _loss(driver, to_r3, flow_src, dst, on=False)
        server.terminate()
        server.wait(5)
    if result.check(
        f"the flow's packets leave router1 towards router2 ({to_r2})", first is not None
    ):
        assert first is not None
        result.trigger_to_path_ms = (first - float(detection["ts"])) * 1000
    flows = driver.ctl("list-flows")
    result.outputs["trafex-ctl list-flows"] = flows
    for a, b in ((flow_src, dst), (dst, flow_src)):
        result.check(
            f"trafexd announces {_rules_text(a, b)} redirect 6:302",
            f"destination {b}/128 source {a}/128" in flows and "redirect 6:302" in flows,
        )
    after = driver.wait_hop(flow_src, dst, 2, redirected, 10)
    result.outputs["traceroute -s ::10 after"] = after
    result.check(f"{flow_src} -> {dst} now via router2", True, f"hop 2 {redirected}")
    other = driver.wait_hop(other_src, dst, 2, normal, 10)
    result.outputs["traceroute -s ::20 after"] = other
    result.check(f"{other_src} -> {dst} still via router3", True, f"hop 2 {normal}")
    _check_enforcer_counts(driver, result, flow_src)
    for a, b in ((flow_src, dst), (dst, flow_src)):
        driver.ctl("del-flow", _rules_text(a, b))
    back = driver.wait_hop(flow_src, dst, 2, normal, 15)
    result.outputs["traceroute -s ::10 after withdraw"] = back
    result.check(f"after the withdraw {flow_src} -> {dst} is back via router3", True)


def _check_enforcer_counts(driver: Driver, result: Result, flow_src: str) -> None:
    """The enforcer's rule for the flow counts its packets (``trafex enforce status``)."""
    enforcer = driver.topo.enforcers[0]
    enforce_status = [tool("trafex"), "enforce", "status", "--config", str(enforcer.enforce)]
    status = json.loads(driver.run(enforcer.name, [*enforce_status, "--json"]))
    forward = [r for r in status["rules"] if f"source {flow_src}/128" in r["text"]]
    counted = bool(forward) and forward[0]["packets"] > 0
    result.check(
        "the enforcer counts the rule's packets",
        counted,
        f"{forward[0]['packets']} packets, {forward[0]['bytes']} bytes" if forward else "no rule",
    )
    result.outputs["router1: trafex enforce status"] = driver.run(enforcer.name, enforce_status)
