"""Network namespaces, veth links and addresses for the lab, through netlink (pyroute2).

The only module of the lab that changes the kernel's network configuration. Every
name it creates carries the lab's prefix, so that :func:`remove_all` can find what a
crashed run left behind, and so that several labs (a user's and a test's) coexist.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path

from pyroute2 import IPRoute, NetNS, netns
from pyroute2.netlink.exceptions import NetlinkError

from trafex.model.errors import TrafexError

IFA_F_NODAD = 0x02  # the lab's addresses are unique by construction: no DAD wait
NETNS_ETC = Path("/etc/netns")  # `ip netns exec` bind-mounts /etc/netns/NS/* over /etc


class NetnsError(TrafexError):
    """A namespace, link or address could not be made or removed."""


def exec_prefix(namespace: str) -> list[str]:
    """The argv prefix that runs a command inside ``namespace`` (and execs it: the
    process keeps the PID that Popen returns)."""
    return ["ip", "netns", "exec", namespace]


def namespaces(prefix: str) -> list[str]:
    """The namespaces whose name starts with ``prefix``."""
    return sorted(n for n in netns.listnetns() if n.startswith(prefix))


def create(namespace: str, sysctls: dict[str, str]) -> None:
    """A new namespace with ``lo`` up and ``sysctls`` set (before any link is moved in,
    so that ``default`` values apply to the links)."""
    if namespace in netns.listnetns():
        raise NetnsError(f"namespace {namespace} exists already")
    try:
        netns.create(namespace)
        with NetNS(namespace) as ns:
            ns.link("set", index=ns.link_lookup(ifname="lo")[0], state="up")
    except (NetlinkError, OSError) as error:
        raise NetnsError(f"namespace {namespace}: {error}") from None
    if sysctls:
        run_in(namespace, ["sysctl", "-q", "-w", *(f"{k}={v}" for k, v in sysctls.items())])


def command(argv: Sequence[str], what: str, error: type[TrafexError], timeout: float = 10.0) -> str:
    """Run a short command; its stdout, or ``error`` naming ``what`` and the last line
    the command printed."""
    try:
        done = subprocess.run(
            list(argv), capture_output=True, text=True, timeout=timeout, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise error(f"{what}: {exc}") from None
    if done.returncode != 0:
        why = (done.stderr or done.stdout).strip().splitlines()
        raise error(f"{what}: {why[-1] if why else f'exit {done.returncode}'}")
    return done.stdout


def run_in(namespace: str, argv: Sequence[str], timeout: float = 10.0) -> str:
    """Run a short command inside ``namespace``; its stdout, or :class:`NetnsError`."""
    what = f"{namespace}: {' '.join(argv)}"
    return command([*exec_prefix(namespace), *argv], what, NetnsError, timeout)


def veth(
    ends: tuple[tuple[str, str], tuple[str, str]], temp_names: tuple[str, str], up: bool = True
) -> None:
    """A veth pair between two namespaces: ``((ns_a, ifname_a), (ns_b, ifname_b))``.

    Made in the root namespace under ``temp_names`` (prefixed, so a crash leaves
    nothing :func:`remove_all` cannot find), moved, then renamed inside.
    """
    (ns_a, if_a), (ns_b, if_b) = ends
    temp_a, temp_b = temp_names
    try:
        with IPRoute() as ipr:
            ipr.link("add", ifname=temp_a, kind="veth", peer={"ifname": temp_b, "net_ns_fd": ns_b})
            ipr.link("set", index=ipr.link_lookup(ifname=temp_a)[0], net_ns_fd=ns_a)
        for namespace, temp, ifname in ((ns_a, temp_a, if_a), (ns_b, temp_b, if_b)):
            with NetNS(namespace) as ns:
                index = ns.link_lookup(ifname=temp)[0]
                ns.link("set", index=index, ifname=ifname)
                if up:
                    ns.link("set", index=index, state="up")
    except (NetlinkError, OSError, IndexError) as error:
        raise NetnsError(f"veth {ns_a}:{if_a} -- {ns_b}:{if_b}: {error}") from None


def _family(address: ipaddress.IPv4Interface | ipaddress.IPv6Interface) -> int:
    return socket.AF_INET if address.version == 4 else socket.AF_INET6


def add_addresses(
    namespace: str,
    ifname: str,
    addresses: Iterable[ipaddress.IPv4Interface | ipaddress.IPv6Interface],
) -> None:
    try:
        with NetNS(namespace) as ns:
            index = ns.link_lookup(ifname=ifname)[0]
            for address in addresses:
                ns.addr(
                    "add",
                    index=index,
                    address=str(address.ip),
                    prefixlen=address.network.prefixlen,
                    family=_family(address),
                    flags=IFA_F_NODAD,
                )
    except (NetlinkError, OSError, IndexError) as error:
        raise NetnsError(f"{namespace}:{ifname}: address: {error}") from None


def default_route(namespace: str, gateway: ipaddress.IPv4Address | ipaddress.IPv6Address) -> None:
    family = socket.AF_INET if gateway.version == 4 else socket.AF_INET6
    try:
        with NetNS(namespace) as ns:
            ns.route(
                "replace",
                dst="0.0.0.0/0" if family == socket.AF_INET else "::/0",
                gateway=str(gateway),
                family=family,
            )
    except (NetlinkError, OSError) as error:
        raise NetnsError(f"{namespace}: default route via {gateway}: {error}") from None


def write_etc(namespace: str, name: str, text: str) -> None:
    """A file that ``ip netns exec`` shows at /etc/NAME inside ``namespace`` (its own
    resolv.conf, say)."""
    directory = NETNS_ETC / namespace
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_text(text)


def root_links(prefix: str) -> list[str]:
    """Links of the root namespace named with ``prefix`` (a veth a crash left)."""
    with IPRoute() as ipr:
        names = [link.get("ifname") or "" for link in ipr.get_links()]
    return [name for name in names if name.startswith(prefix)]


def remove_all(prefix: str) -> list[str]:
    """Delete every namespace and root-namespace link named with ``prefix``, and their
    /etc/netns directories. Returns what could not be removed."""
    problems = []
    for namespace in namespaces(prefix):
        try:
            netns.remove(namespace)
        except OSError as error:
            problems.append(f"namespace {namespace}: {error}")
    try:
        with IPRoute() as ipr:
            for link in ipr.get_links():
                name = link.get("ifname") or ""
                if name.startswith(prefix):
                    ipr.link("del", index=link["index"])
    except NetlinkError as error:
        problems.append(f"links: {error}")
    if NETNS_ETC.is_dir():
        for directory in NETNS_ETC.iterdir():
            if directory.name.startswith(prefix):
                for child in directory.iterdir():
                    child.unlink()
                directory.rmdir()
    return problems


def pids_in(namespace: str) -> list[int]:
    """Processes whose network namespace is ``namespace`` (``ip netns pids``)."""
    try:
        return sorted(int(p) for p in netns.ns_pids().get(namespace, []))
    except (OSError, ValueError):
        return []


def is_root() -> bool:
    return os.geteuid() == 0
