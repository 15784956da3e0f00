"""trafex enforce fed by a real trafexd over BGP, enforcing in a network namespace.

trafexd (root namespace, its own gobgpd) peers with the enforcer's gobgpd inside a
namespace; rules added through trafex-ctl must appear in the enforcer's nftables table,
count real packets sent into the namespace, disappear exactly when withdrawn, and a
restart of the enforcer after a crash must rebuild the table from BGP alone, with no
stale rule. Every process is ended by PID and the namespace removed, even on failure.
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from netns import NetnsError, VethNamespace, run_ip
from trafexd import Trafexd, free_port, wait_for

from trafex.lab.netns import pids_in
from trafex.lab.procs import kill_pid

pytestmark = pytest.mark.integration


@dataclass
class Rig:
    ns: VethNamespace
    trafexd: Trafexd
    config: Path
    workdir: Path
    target6: str  # a second address in the namespace: the neighbor itself is protected
    enforcer: subprocess.Popen[bytes] | None = None

    def logs(self) -> str:
        try:
            text = (self.workdir / "enforce.log").read_text(errors="replace")
        except OSError:
            text = ""
        return "--- enforce.log\n" + "\n".join(text.splitlines()[-30:]) + "\n" + self.trafexd.logs()

    def start_enforcer(self) -> None:
        with (self.workdir / "enforce.log").open("ab") as log:
            self.enforcer = subprocess.Popen(
                [
                    *self.ns.exec_prefix(),
                    sys.executable,
                    "-m",
                    "trafex.cli.main",
                    "enforce",
                    "run",
                    "--config",
                    str(self.config),
                    "--log-format",
                    "json",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def status(self) -> dict[str, Any]:
        done = subprocess.run(
            [
                *self.ns.exec_prefix(),
                sys.executable,
                "-m",
                "trafex.cli.main",
                "enforce",
                "status",
                "--json",
                "--config",
                str(self.config),
            ],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
        try:
            data: dict[str, Any] = json.loads(done.stdout)
        except ValueError:
            return {}
        return data

    def ctl(self, *argv: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "trafex.cli.ctl", "--target", self.trafexd.api, *argv],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    def rules(self) -> dict[str, dict[str, Any]]:
        """The installed rules by their text."""
        return {r["text"]: r for r in self.status().get("rules", []) if not r["refused"]}

    def wait_rules(self, texts: set[str], timeout: float = 15) -> dict[str, dict[str, Any]]:
        def check() -> dict[str, dict[str, Any]] | None:
            rules = self.rules()
            return rules if set(rules) == texts else None

        return wait_for(check, timeout, f"the enforcer's rules to be {sorted(texts)}", self.logs)

    def crash_enforcer(self) -> None:
        """SIGKILL the enforcer: nothing cleans up after it, and its gobgpd (in a session
        of its own) keeps running with the old session and paths."""
        assert self.enforcer is not None
        os.kill(self.enforcer.pid, signal.SIGKILL)
        self.enforcer.wait(timeout=10)
        self.enforcer = None

    def stop_enforcer(self) -> None:
        if self.enforcer is not None and self.enforcer.poll() is None:
            self.enforcer.send_signal(signal.SIGTERM)
            try:
                self.enforcer.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.enforcer.kill()
                self.enforcer.wait(timeout=5)
        self.enforcer = None


def _skip_unless_possible() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root for network namespaces and nftables")
    for binary in ("nft", "gobgpd", "ip"):
        if shutil.which(binary) is None:
            pytest.skip(f"{binary} is not installed (make setup)")


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    _skip_unless_possible()
    ns = VethNamespace()
    trafexd: Trafexd | None = None
    rig: Rig | None = None
    try:
        ns.create()
        target6 = str(ipaddress.IPv6Address(ns.router_v6) + 16)
        run_ip(
            "-6",
            "addr",
            "add",
            f"{target6}/64",
            "dev",
            ns.router_ifname,
            "nodad",
            namespace=ns.namespace,
        )
        trafexd = Trafexd(
            tmp_path / "trafexd",
            [(ns.router_v6, 65000, ns.host_v6, ["ipv6-flowspec", "ipv4-flowspec"])],
        ).start()
        config = tmp_path / "enforce.toml"
        config.write_text(
            '[bgp]\nasn = 65000\nrouter_id = "192.0.2.1"\nlisten_port = 179\n'
            f'listen_addresses = ["{ns.router_v6}"]\n'
            "[[bgp.neighbor]]\n"
            f'address = "{ns.host_v6}"\npeer_as = 65010\n'
            'families = ["ipv6-flowspec", "ipv4-flowspec"]\n'
            f'[gobgp]\napi = "127.0.0.1:{free_port()}"\n'
            f'[state]\ndir = "{tmp_path / "enforce"}"\n'
            '[enforce]\ntable = "trafex_test"\n'
        )
        rig = Rig(ns, trafexd, config, tmp_path, target6)
        rig.start_enforcer()

        def established() -> bool | None:
            peers = rig.status().get("peers", []) if rig is not None else []
            return True if peers and peers[0]["state"] == "established" else None

        wait_for(established, 30, "the enforcer's BGP session", rig.logs)
        yield rig
    finally:
        if rig is not None:
            rig.stop_enforcer()
        if trafexd is not None:
            trafexd.close()
        if ns.namespace:
            for pid in pids_in(ns.namespace):
                kill_pid(pid)
        try:
            ns.destroy()
        except NetnsError as error:
            pytest.fail(f"namespace left behind: {error}")


def _send_udp(rig: Rig, address: str, port: int, count: int) -> None:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        for _ in range(count):
            sock.sendto(b"x" * 100, (address, port))


def test_rules_from_bgp_are_enforced_withdrawn_and_rebuilt_after_a_crash(rig: Rig) -> None:
    """Three rules (IPv6 discard, IPv6 rate-limit, IPv4 discard) reach the enforcer over
    BGP and count real packets; a withdraw removes exactly its rule and keeps the others'
    counters; after a crash (the enforcer SIGKILLed, its nftables table and its gobgpd
    left behind) and a withdraw meanwhile, a restart stops the stale gobgpd and holds
    exactly what BGP holds."""
    ns = rig.ns
    discard6 = f"destination {rig.target6}/128 protocol =udp destination-port =5001 discard"
    limit6 = (
        f"destination {rig.target6}/128 source {ns.host_v6}/128 protocol =udp "
        "destination-port =5002 rate-limit 1000"
    )
    discard4 = f"destination {ns.router_v4}/32 protocol =udp destination-port =5003 discard"
    for text in (discard6, limit6, discard4):
        rig.ctl("add-flow", text)
    rules = rig.wait_rules({discard6, limit6, discard4})
    assert rules[discard6]["branches"] == 1

    begin = time.monotonic()
    _send_udp(rig, rig.target6, 5001, 20)
    _send_udp(rig, rig.target6, 5002, 30)
    _send_udp(rig, ns.router_v4, 5003, 10)
    _send_udp(rig, rig.target6, 5009, 10)  # no rule: counted nowhere
    rules = rig.rules()
    assert (
        rules[discard6]["packets"],
        rules[discard4]["packets"],
        rules[limit6]["packets"],
    ) == (20, 10, 30)
    print(f"\ncounters read back {time.monotonic() - begin:.2f} s after sending")

    rig.ctl("del-flow", discard6.removesuffix(" discard"))
    rules = rig.wait_rules({limit6, discard4})
    assert rules[limit6]["packets"] == 30  # kept across the rebuild

    rig.crash_enforcer()
    rig.ctl("del-flow", limit6.removesuffix(" rate-limit 1000"))
    rig.start_enforcer()
    begin = time.monotonic()
    rules = rig.wait_rules({discard4}, timeout=30)
    print(f"rebuilt from BGP {time.monotonic() - begin:.1f} s after the restart")
    assert "sidecar.stale" in rig.logs()
    _send_udp(rig, rig.target6, 5002, 5)
    assert set(rig.rules()) == {discard4}


def test_stop_removes_the_table_and_policy_routing(rig: Rig) -> None:
    """A clean stop (SIGTERM) leaves no nftables table and no trafex ip rule behind."""
    rig.ctl("add-flow", f"destination {rig.target6}/128 discard")
    rig.wait_rules({f"destination {rig.target6}/128 discard"})
    rig.stop_enforcer()
    tables = subprocess.run(
        [*rig.ns.exec_prefix(), "nft", "-j", "list", "tables"],
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    ).stdout
    assert "trafex_test" not in tables
    rules = subprocess.run(
        [*rig.ns.exec_prefix(), "ip", "-6", "rule"],
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    ).stdout
    assert "proto 248" not in rules
