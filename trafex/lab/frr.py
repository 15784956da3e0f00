"""FRR routers of the lab: daemons started in a router's namespace, read with vtysh.

Each router runs the daemons of ``lab/routers/daemons`` (zebra first), all reading
the router's ``frr.conf``, with their sockets, PID files and logs in the router's run
directory. ``vtysh --vty_socket DIR`` reaches them from any namespace.
"""

from __future__ import annotations

import grp
import json
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from trafex.lab import netns
from trafex.lab.procs import Proc, spawn
from trafex.model.errors import TrafexError

FRR_DIR = Path(os.environ.get("TRAFEX_FRR_DIR", "/usr/lib/frr"))
FRR_TMPDIR = Path("/var/tmp/frr")


class FrrError(TrafexError):
    """A router daemon did not start, or vtysh did not answer."""


def vtysh_binary() -> str | None:
    return shutil.which("vtysh")


def missing() -> str | None:
    """Why FRR cannot run here, or None."""
    if not (FRR_DIR / "zebra").exists() or vtysh_binary() is None:
        return "FRR is not installed (apt-get install frr, or: make setup)"
    return None


def privilege_args(daemon: str) -> list[str]:
    """bgpd has -S (skip dropping privileges); the others want a user and group, and
    refuse root's group because root is not in FRR's vty group (frrvty on Debian)."""
    if daemon == "bgpd":
        return ["-S"]
    try:
        group = grp.getgrnam("frrvty").gr_name
    except KeyError:
        group = "root"
    return ["-u", "root", "-g", group]


def start_router(
    node: str, namespace: str, config: Path, rundir: Path, daemons: tuple[str, ...]
) -> list[Proc]:
    """Start ``daemons`` for one router; returns them as started (zebra's socket is
    waited for, since the others connect to it)."""
    rundir.mkdir(parents=True, exist_ok=True)
    conf = rundir / "frr.conf"
    shutil.copyfile(config, conf)
    zserv = rundir / "zserv.api"
    started = []
    for daemon in daemons:
        argv = [
            str(FRR_DIR / daemon),
            "-f",
            str(conf),
            "-z",
            str(zserv),
            "-i",
            str(rundir / f"{daemon}.pid"),
            "--vty_socket",
            str(rundir),
            "-P",
            "0",  # no TCP vty: vtysh uses the socket directory
            *privilege_args(daemon),
            "--log",
            f"file:{rundir / (daemon + '.log')}",
        ]
        proc = spawn(daemon, node, namespace, argv, rundir / f"{daemon}.out")
        started.append(proc)
        if daemon == "zebra":
            wait_for(lambda: zserv.exists() or None, 10.0, f"{node}: zebra's socket")
    return started


def vtysh(rundir: Path, command: str, timeout: float = 10.0) -> str:
    binary = vtysh_binary()
    if binary is None:
        raise FrrError("vtysh not found")
    argv = [binary, "--vty_socket", str(rundir), "-c", command]
    return netns.command(argv, f"vtysh {command!r}", FrrError, timeout)


def vtysh_json(rundir: Path, command: str) -> Any:
    text = vtysh(rundir, command)
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise FrrError(f"vtysh {command!r}: not JSON: {text[:200]!r}") from None


def bgp_peers(rundir: Path) -> dict[str, str]:
    """Each BGP neighbor's state ("Established", "Active", …) by address."""
    summary = vtysh_json(rundir, "show bgp summary json")
    peers: dict[str, str] = {}
    for family in summary.values():
        if isinstance(family, dict):
            for address, peer in family.get("peers", {}).items():
                peers[address] = peer.get("state", "?")
    return peers


def ospf6_full(rundir: Path) -> set[str]:
    """The interfaces with a Full OSPFv3 adjacency."""
    data = vtysh_json(rundir, "show ipv6 ospf6 neighbor json")
    return {n["interfaceName"] for n in data.get("neighbors", []) if n.get("state") == "Full"}


def ospf6_settled(rundir: Path) -> tuple[bool, int]:
    """Whether no SPF run is pending, and the area's LSA count (equal on every router
    once their databases agree)."""
    data = vtysh_json(rundir, "show ipv6 ospf6 json")
    lsas = sum(a.get("numberOfAreaScopedLsa", 0) for a in data.get("areas", {}).values())
    return not data.get("spfTimerActive", False), lsas


def wait_for(check: Callable[[], object | None], timeout: float, what: str) -> object:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result is not None:
            return result
        if time.monotonic() > deadline:
            raise FrrError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.1)


def remove_tmpdir(proc: Proc) -> None:
    """FRR leaves /var/tmp/frr/NAME.PID (crash-log buffers) behind, even after SIGTERM:
    remove it, so that no lab clutters the host."""
    shutil.rmtree(FRR_TMPDIR / f"{proc.name}.{proc.pid}", ignore_errors=True)
