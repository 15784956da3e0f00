"""Network namespaces joined to the root namespace by a veth pair, for integration tests.

One :class:`VethNamespace` is one namespace (``tfx<pid%100000>-<n>``), one veth pair
(``<namespace>h`` in the root namespace, ``<namespace>r`` inside), and one point-to-point
subnet per address family:

* IPv4: a /31 from 198.18.0.0/15 (RFC 2544 benchmarking range, never routed publicly):
  slot ``i`` is ``198.18.0.0 + 2*i`` (root side) and ``+ 1`` (namespace side).
* IPv6: a /64 from the ULA fd00:7466:7800::/48 (``7466:78`` is "tfx"): slot ``i`` is
  ``fd00:7466:7800:<i>::1`` (root side) and ``::2`` (namespace side), added with
  ``nodad`` so both are usable at once.

Slots and names are chosen under an exclusive ``flock`` after looking at the addresses
and namespaces that already exist, so concurrent test runs on one host never collide.
Every ``ip`` command that fails raises :class:`NetnsError` with the command and its
output; :meth:`VethNamespace.destroy` removes whatever :meth:`VethNamespace.create`
managed to build, even when it failed halfway.
"""

from __future__ import annotations

import fcntl
import ipaddress
import itertools
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

__all__ = [
    "IPV4_POOL",
    "IPV6_POOL",
    "NAME_PREFIX",
    "NetnsError",
    "VethNamespace",
    "ip_binary",
    "link_exists",
    "list_namespaces",
    "namespace_exists",
    "run_ip",
]

IPV4_POOL: Final = ipaddress.IPv4Network("198.18.0.0/15")
IPV6_POOL: Final = ipaddress.IPv6Network("fd00:7466:7800::/48")
NAME_PREFIX: Final = "tfx"
SLOTS: Final = 65536  # /31s in the IPv4 pool == /64s in the IPv6 pool
IFNAMSIZ: Final = 15  # Linux interface names: at most 15 characters
IP_TIMEOUT: Final = 20.0

_counter = itertools.count(1)


class NetnsError(Exception):
    """An ``ip`` command failed, or no free name or subnet was left."""


def ip_binary() -> str | None:
    """Path of the ``ip`` tool (iproute2), or None when it is not installed."""
    return shutil.which("ip") or next(
        (p for p in ("/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip") if os.access(p, os.X_OK)), None
    )


def run_ip(*args: str, namespace: str | None = None, check: bool = True) -> str:
    """Run ``ip [-n NAMESPACE] ARGS...`` and return its stdout.

    Raises :class:`NetnsError` (with the command line and stderr) when ``check`` is true
    and the command exits non-zero.
    """
    ip = ip_binary()
    if ip is None:
        raise NetnsError("the ip tool (iproute2) is not installed")
    cmd = [ip, *(("-n", namespace) if namespace else ()), *args]
    try:
        proc = subprocess.run(
            cmd,
            check=False,
            capture_output=True,
            text=True,
            timeout=IP_TIMEOUT,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as exc:
        raise NetnsError(f"{' '.join(cmd)}: no answer within {IP_TIMEOUT:.0f} s") from exc
    if check and proc.returncode != 0:
        raise NetnsError(
            f"{' '.join(cmd)} exited {proc.returncode}: {(proc.stderr or proc.stdout).strip()}"
        )
    return proc.stdout


def list_namespaces() -> list[str]:
    """Names of the named network namespaces (``ip netns list``)."""
    return [line.split()[0] for line in run_ip("netns", "list").splitlines() if line.strip()]


def namespace_exists(name: str) -> bool:
    """Whether a named network namespace ``name`` exists."""
    return name in list_namespaces()


def link_exists(ifname: str, namespace: str | None = None) -> bool:
    """Whether interface ``ifname`` exists (in the root namespace unless ``namespace``)."""
    ip = ip_binary()
    if ip is None:
        return False
    cmd = [ip, *(("-n", namespace) if namespace else ()), "link", "show", "dev", ifname]
    return (
        subprocess.run(
            cmd, check=False, capture_output=True, timeout=IP_TIMEOUT, stdin=subprocess.DEVNULL
        ).returncode
        == 0
    )


@contextmanager
def _allocation_lock() -> Iterator[None]:
    """Serialise slot and name allocation among all harness instances on this host."""
    lock_dir = Path("/run/lock")
    if not (lock_dir.is_dir() and os.access(lock_dir, os.W_OK)):
        lock_dir = Path(tempfile.gettempdir())
    with open(lock_dir / "trafex-netns-harness.lock", "a+b") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


def _used_slots() -> set[int]:
    """Slots whose root-side address is already configured on some root-namespace link."""
    used: set[int] = set()
    links: list[dict[str, Any]] = json.loads(run_ip("-j", "addr", "show") or "[]")
    for link in links:
        for info in link.get("addr_info", []):
            try:
                addr = ipaddress.ip_address(info.get("local", ""))
            except ValueError:
                continue
            if isinstance(addr, ipaddress.IPv4Address) and addr in IPV4_POOL:
                used.add((int(addr) - int(IPV4_POOL.network_address)) // 2)
            elif isinstance(addr, ipaddress.IPv6Address) and addr in IPV6_POOL:
                used.add((int(addr) >> 64) & 0xFFFF)
    return used


class VethNamespace:
    """A network namespace with a veth pair to the root namespace and one subnet per family.

    Attributes are filled in by :meth:`create`; :meth:`destroy` is idempotent and removes
    only what this instance created.
    """

    def __init__(self) -> None:
        self.namespace = ""
        self.host_ifname = ""
        self.router_ifname = ""
        self.slot = -1
        self.host_v4 = ""
        self.router_v4 = ""
        self.host_v6 = ""
        self.router_v6 = ""
        self.v4_prefixlen = 31
        self.v6_prefixlen = 64
        self._created_namespace = False
        self._created_link = False

    def __repr__(self) -> str:
        return (
            f"VethNamespace(namespace={self.namespace!r}, host={self.host_v4}/{self.host_v6}, "
            f"router={self.router_v4}/{self.router_v6})"
        )

    def create(self) -> None:
        """Allocate a free name and slot, then build the namespace, veth pair and addresses.

        On failure raises :class:`NetnsError`; call :meth:`destroy` afterwards to remove
        whatever was already built.
        """
        if self._created_namespace:
            raise NetnsError(f"{self.namespace} was already created")
        with _allocation_lock():
            existing = set(list_namespaces())
            pid_part = os.getpid() % 100000
            for _ in range(1000):
                name = f"{NAME_PREFIX}{pid_part}-{next(_counter)}"
                if len(name) + 1 > IFNAMSIZ:
                    raise NetnsError(f"ran out of short namespace names ({name})")
                if name not in existing and not link_exists(name + "h"):
                    break
            else:  # pragma: no cover - a thousand live namespaces of this pid
                raise NetnsError("no free namespace name")
            used = _used_slots()
            start = (os.getpid() * 131 + int(name.rsplit("-", 1)[1])) % SLOTS
            slot = next(
                (s for s in ((start + k) % SLOTS for k in range(SLOTS)) if s not in used), None
            )
            if slot is None:  # pragma: no cover
                raise NetnsError("no free /31 in 198.18.0.0/15")
            self.namespace = name
            self.host_ifname = name + "h"
            self.router_ifname = name + "r"
            self.slot = slot
            v4 = IPV4_POOL.network_address + 2 * slot
            self.host_v4, self.router_v4 = str(v4), str(v4 + 1)
            v6 = IPV6_POOL.network_address + (slot << 64)
            self.host_v6, self.router_v6 = str(v6 + 1), str(v6 + 2)

            run_ip("netns", "add", self.namespace)
            self._created_namespace = True
            run_ip(
                "link",
                "add",
                self.host_ifname,
                "type",
                "veth",
                "peer",
                "name",
                self.router_ifname,
                "netns",
                self.namespace,
            )
            self._created_link = True
            # The host-side addresses go on before the lock is released: they are what
            # other instances look at to find a free slot.
            self._configure(None, self.host_ifname, self.host_v4, self.host_v6)
        run_ip("link", "set", "lo", "up", namespace=self.namespace)
        self._configure(self.namespace, self.router_ifname, self.router_v4, self.router_v6)

    def _configure(self, namespace: str | None, ifname: str, v4: str, v6: str) -> None:
        run_ip("addr", "add", f"{v4}/{self.v4_prefixlen}", "dev", ifname, namespace=namespace)
        run_ip(
            "-6",
            "addr",
            "add",
            f"{v6}/{self.v6_prefixlen}",
            "dev",
            ifname,
            "nodad",
            namespace=namespace,
        )
        run_ip("link", "set", ifname, "up", namespace=namespace)

    def exec_prefix(self) -> Sequence[str]:
        """The argv prefix that runs a command inside the namespace."""
        ip = ip_binary()
        if ip is None:
            raise NetnsError("the ip tool (iproute2) is not installed")
        return (ip, "netns", "exec", self.namespace)

    def destroy(self) -> None:
        """Delete the veth pair and the namespace this instance created (idempotent).

        Raises :class:`NetnsError` only when something it created is still there afterwards.
        """
        errors: list[str] = []
        if self._created_link:
            if link_exists(self.host_ifname):
                try:
                    run_ip("link", "del", self.host_ifname)
                except NetnsError as exc:
                    errors.append(str(exc))
            self._created_link = link_exists(self.host_ifname)
        if self._created_namespace:
            if namespace_exists(self.namespace):
                try:
                    run_ip("netns", "del", self.namespace)
                except NetnsError as exc:
                    errors.append(str(exc))
            self._created_namespace = namespace_exists(self.namespace)
        if self._created_link or self._created_namespace:
            raise NetnsError(f"could not remove {self!r}: {'; '.join(errors) or 'still present'}")
