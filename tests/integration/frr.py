"""A real FRR ``bgpd`` in a network namespace, for integration tests that must reach a router.

:class:`FrrRouter` builds a namespace joined to the root namespace by a veth pair (see
:mod:`netns`), writes an ``frr.conf``, starts ``bgpd`` (and ``zebra`` when asked) inside the
namespace, waits until ``vtysh`` answers, and reads back what the router received through
``vtysh --vty_socket DIR -c '... json'``. :meth:`FrrRouter.close` stops only the processes
it started, by PID, and deletes the veth pair and the namespace, even after a failed start.

The controller side (gobgpd) lives in the root namespace on :attr:`FrrRouter.host_v4` and
:attr:`FrrRouter.host_v6`; the router listens on :attr:`FrrRouter.router_v4` and
:attr:`FrrRouter.router_v6`. Neighbors may name the root-side addresses before they are
allocated with :data:`HOST_V4` and :data:`HOST_V6`::

    with FrrRouter(tmp_path, neighbors=[Neighbor(HOST_V4, 65010), Neighbor(HOST_V6, 65010)])
            as router:
        ...  # start a BGP speaker on router.host_v4 / router.host_v6, AS 65010
        router.wait_established(timeout=30)
        entries = router.flowspec("ipv6")

By default ``bgpd`` runs with ``-Z`` (no zebra): FRR 8.4.4's zebra crashes when a FlowSpec
rule with a redirect route-target is announced, withdrawn and announced again, and without
zebra received unicast and FlowSpec paths are still valid and best (bgpd treats next hops
as reachable). FRR never programs FlowSpec into the Linux data plane, with or without zebra.
"""

from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Literal, Protocol, TypeVar, get_args

from netns import NetnsError, VethNamespace, ip_binary

from trafex.lab.frr import privilege_args

__all__ = [
    "ALL_FAMILIES",
    "BGPD",
    "DEFAULT_NEIGHBORS",
    "DEFAULT_PEER_AS",
    "FLOWSPEC_MATCH_KEYS",
    "FRR_DIR",
    "HOST_V4",
    "HOST_V6",
    "ZEBRA",
    "Afi",
    "Family",
    "FrrCommandError",
    "FrrError",
    "FrrFlowEntry",
    "FrrRouter",
    "FrrRouterFactory",
    "FrrStartError",
    "FrrTimeoutError",
    "Neighbor",
    "UnicastPath",
    "decode_json_stream",
    "frr_missing_reason",
    "parse_flowspec",
    "vtysh_binary",
]

Afi = Literal["ipv4", "ipv6"]
Family = Literal["ipv4-unicast", "ipv6-unicast", "ipv4-flowspec", "ipv6-flowspec"]
ALL_FAMILIES: Final[tuple[Family, ...]] = get_args(Family)

#: Stand-ins for the root-side addresses, resolved when the namespace exists.
HOST_V4: Final = "host-v4"
HOST_V6: Final = "host-v6"

FRR_DIR: Final = Path(os.environ.get("TRAFEX_FRR_DIR", "/usr/lib/frr"))
BGPD: Final = FRR_DIR / "bgpd"
ZEBRA: Final = FRR_DIR / "zebra"
#: Where FRR daemons keep per-process crash-log buffers (``NAME.PID``).
FRR_TMPDIR: Final = Path("/var/tmp/frr")

VTYSH_TIMEOUT: Final = 15.0
STOP_TIMEOUT: Final = 5.0
LOG_TAIL_LINES: Final = 150
# sun_path is 108 bytes; FRR appends "/bgpd.vty" etc. to the socket directory.
MAX_SOCKET_DIR: Final = 90

T = TypeVar("T")


def vtysh_binary() -> str | None:
    """Path of ``vtysh``, or None when FRR's vtysh is not installed."""
    return shutil.which("vtysh") or (
        "/usr/bin/vtysh" if os.access("/usr/bin/vtysh", os.X_OK) else None
    )


def frr_missing_reason(with_zebra: bool = False) -> str | None:
    """Why an :class:`FrrRouter` cannot run here (not root, a binary missing), or None."""
    if os.geteuid() != 0:
        return "FRR integration tests need root (network namespaces, veth pairs)"
    needed = [BGPD, *([ZEBRA] if with_zebra else [])]
    for binary in needed:
        if not os.access(binary, os.X_OK):
            return f"{binary} is not installed (Debian package frr)"
    if vtysh_binary() is None:
        return "vtysh is not installed (Debian package frr)"
    if ip_binary() is None:
        return "the ip tool is not installed (Debian package iproute2)"
    return None


class FrrError(Exception):
    """Something about the FRR harness failed; the message carries the daemons' logs."""


class FrrStartError(FrrError):
    """The namespace or a daemon could not be started, or vtysh never answered."""


class FrrTimeoutError(FrrError):
    """A wait (session established, route present) ran past its deadline."""


class FrrCommandError(FrrError):
    """vtysh failed, printed an error (``% ...``) or output that is not the JSON expected."""


@dataclass(frozen=True)
class Neighbor:
    """One BGP session of the router.

    ``address`` is an IP address or :data:`HOST_V4` / :data:`HOST_V6` (the root-side
    address of the veth pair). ``families`` None activates the families of the address's
    own family (IPv4 neighbor: ipv4-unicast and ipv4-flowspec; IPv6: the IPv6 ones);
    a tuple activates exactly those. ``connect_retry`` is FRR's ``timers connect``;
    ``passive`` makes FRR wait for the peer to connect; ``port`` is the peer's TCP port
    when it is not 179 (FRR's ``neighbor X port N``).
    """

    address: str
    remote_as: int
    families: tuple[Family, ...] | None = None
    passive: bool = False
    connect_retry: int = 2
    port: int | None = None

    def resolve(self, host_v4: str, host_v6: str) -> Neighbor:
        """This neighbor with :data:`HOST_V4` / :data:`HOST_V6` replaced and families set."""
        address = {HOST_V4: host_v4, HOST_V6: host_v6}.get(self.address, self.address)
        ip = ipaddress.ip_address(address)
        families = self.families
        if families is None:
            prefix = f"ipv{ip.version}-"
            families = tuple(f for f in ALL_FAMILIES if f.startswith(prefix))
        unknown = [f for f in families if f not in ALL_FAMILIES]
        if unknown:
            raise ValueError(f"unknown address families {unknown} (known: {ALL_FAMILIES})")
        return Neighbor(
            str(ip), self.remote_as, families, self.passive, self.connect_retry, self.port
        )


DEFAULT_PEER_AS: Final = 65010
DEFAULT_NEIGHBORS: Final = (Neighbor(HOST_V4, DEFAULT_PEER_AS), Neighbor(HOST_V6, DEFAULT_PEER_AS))


@dataclass(frozen=True)
class UnicastPath:
    """One path of a unicast prefix, from ``show bgp ipv4|ipv6 unicast PREFIX json``.

    ``communities`` are FRR's spellings: well-known ones by name (``65535:666`` is
    ``"blackhole"``, ``no-export`` is ``"noExport"``), others as ``"ASN:VALUE"``.
    ``local_pref`` is None on eBGP paths (FRR shows ``locPrf`` only when it has one).
    """

    prefix: str
    next_hops: tuple[str, ...]
    communities: tuple[str, ...]
    large_communities: tuple[str, ...]
    extended_communities: str | None
    med: int | None
    local_pref: int | None
    as_path: str
    origin: str
    valid: bool
    best: bool
    peer: str
    raw: dict[str, Any] = field(compare=False, repr=False)

    @classmethod
    def from_frr(cls, prefix: str, path: dict[str, Any]) -> UnicastPath:
        """Build from one element of ``paths`` in FRR's per-prefix JSON."""
        best = path.get("bestpath")
        ext = path.get("extendedCommunity")
        return cls(
            prefix=prefix,
            next_hops=tuple(str(nh["ip"]) for nh in path.get("nexthops", []) if "ip" in nh),
            communities=tuple(path.get("community", {}).get("list", ())),
            large_communities=tuple(path.get("largeCommunity", {}).get("list", ())),
            extended_communities=ext.get("string") if isinstance(ext, dict) else None,
            med=path.get("metric"),
            local_pref=path.get("locPrf", path.get("localpref")),
            as_path=str(path.get("aspath", {}).get("string", "")),
            origin=str(path.get("origin", "")),
            valid=bool(path.get("valid", False)),
            best=bool(best.get("overall")) if isinstance(best, dict) else bool(best),
            peer=str(path.get("peer", {}).get("peerId", "")),
            raw=path,
        )


# FRR's JSON keys for FlowSpec match components (bgpd/bgp_flowspec_util.c), in RFC order.
FLOWSPEC_MATCH_KEYS: Final = (
    "to",  # type 1 destination prefix ("198.51.100.1/32", IPv6 "3001:4:b::10/128/off 0")
    "from",  # type 2 source prefix
    "proto",  # type 3 IP protocol / next header ("= 6 ")
    "port",  # type 4 port, source or destination
    "dstp",  # type 5 destination port
    "srcp",  # type 6 source port
    "type",  # type 7 ICMP type
    "code",  # type 8 ICMP code
    "tcp",  # type 9 TCP flags ("= 2", match bit: "\u220b 2", not: "! 16")
    "pktlen",  # type 10 packet length
    "dscp",  # type 11 DSCP
    "pktfrag",  # type 12 fragment bits
    "flwlbl",  # type 13 IPv6 flow label
)
_PATH_META_KEYS: Final = frozenset(
    {"valid", "bestpath", "selectionReason", "pathFrom", "weight", "peerId", "path", "origin",
     "metric", "locPrf", "multipath", "stale", "removed", "history", "damped", "nexthops"}
)  # fmt: skip
_PREFIX_OFFSET = re.compile(r"^(?P<prefix>\S+?)(?:/off (?P<offset>\d+))?$")


def _strip(value: Any) -> str | None:
    return None if value is None else str(value).strip()


def _split_prefix(value: str | None) -> tuple[str | None, int | None]:
    if value is None:
        return None, None
    m = _PREFIX_OFFSET.match(value)
    if not m:
        return value, None
    offset = m.group("offset")
    return m.group("prefix"), int(offset) if offset is not None else None


@dataclass(frozen=True)
class FrrFlowEntry:
    """One FlowSpec rule as FRR shows it in ``show bgp ipv4|ipv6 flowspec detail json``.

    Match values are FRR's strings with the trailing blanks stripped: ``protocol = "= 6"``,
    ``port = ">= 1024 , <= 2048"`` (a ``,`` separates OR terms), ``tcp_flags = "= 2"``.
    ``destination``/``source`` are prefixes without FRR's IPv6 ``/off N`` suffix, which is in
    ``*_offset``. ``actions`` splits FRR's ``ecomlist`` at each ``FS:``: ``"FS:rate
    1000.000000"``, ``"FS:rate 0.000000"`` (discard), ``"FS:redirect VRF RT:6:302"``,
    ``"FS:marking 10"``, ``"FS:action eval stops"`` (any traffic-action: FRR 8.4.4 reads the
    wrong byte and shows sample and terminal alike). ``valid``/``best``/``peer`` come from
    ``show bgp ... flowspec json`` (the detail JSON lacks them); None if not matched.
    """

    afi: Afi
    match: dict[str, str] = field(hash=False)
    actions: tuple[str, ...]
    destination: str | None = None
    destination_offset: int | None = None
    source: str | None = None
    source_offset: int | None = None
    protocol: str | None = None
    port: str | None = None
    destination_port: str | None = None
    source_port: str | None = None
    icmp_type: str | None = None
    icmp_code: str | None = None
    tcp_flags: str | None = None
    packet_length: str | None = None
    dscp: str | None = None
    fragment: str | None = None
    flow_label: str | None = None
    valid: bool | None = None
    best: bool | None = None
    peer: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    raw: tuple[Any, ...] = field(default=(), hash=False, compare=False, repr=False)

    @property
    def rate(self) -> float | None:
        """The traffic-rate in bytes/s (0.0 for discard), or None."""
        for action in self.actions:
            if action.startswith("FS:rate "):
                return float(action.split()[1])
        return None

    @property
    def discard(self) -> bool:
        """Whether the rule carries traffic-rate 0 (what GoBGP's ``discard`` sends)."""
        return self.rate == 0.0

    @property
    def redirect(self) -> str | None:
        """The redirect route-target (``"6:302"`` from ``FS:redirect VRF RT:6:302``), or None."""
        for action in self.actions:
            if action.startswith("FS:redirect VRF "):
                return action.removeprefix("FS:redirect VRF ").removeprefix("RT:")
        return None

    @property
    def marking(self) -> int | None:
        """The DSCP the traffic-marking action sets, or None."""
        for action in self.actions:
            if action.startswith("FS:marking "):
                return int(action.split()[1])
        return None

    @property
    def traffic_action(self) -> str | None:
        """FRR's text for a traffic-action community (``"eval stops"``), or None."""
        for action in self.actions:
            if action.startswith("FS:action "):
                return action.removeprefix("FS:action ")
        return None

    @classmethod
    def from_frr(cls, afi: Afi, docs: Sequence[Any]) -> FrrFlowEntry:
        """Build from one rule's JSON array ``[match, {"ecomlist": ...}, {"time": ...}]``."""
        match_doc = docs[0] if docs and isinstance(docs[0], dict) else {}
        match = {str(k): str(v).strip() for k, v in match_doc.items()}
        extra: dict[str, Any] = {}
        for doc in docs[1:]:
            if isinstance(doc, dict):
                extra.update(doc)
        ecomlist = str(extra.get("ecomlist", "")).strip()
        actions = tuple(a.strip() for a in re.split(r" (?=FS:)", ecomlist) if a.strip())
        destination, destination_offset = _split_prefix(match.get("to"))
        source, source_offset = _split_prefix(match.get("from"))
        return cls(
            afi=afi,
            match=match,
            actions=actions,
            destination=destination,
            destination_offset=destination_offset,
            source=source,
            source_offset=source_offset,
            protocol=match.get("proto"),
            port=match.get("port"),
            destination_port=match.get("dstp"),
            source_port=match.get("srcp"),
            icmp_type=match.get("type"),
            icmp_code=match.get("code"),
            tcp_flags=match.get("tcp"),
            packet_length=match.get("pktlen"),
            dscp=match.get("dscp"),
            fragment=match.get("pktfrag"),
            flow_label=match.get("flwlbl"),
            extra=extra,
            raw=tuple(docs),
        )

    def match_key(self) -> frozenset[tuple[str, str]]:
        """The match components as a hashable value (to compare rules, or find one)."""
        return frozenset(self.match.items())


def decode_json_stream(text: str) -> list[Any]:
    """Decode a sequence of concatenated JSON documents (what FRR's flowspec detail prints)."""
    decoder = json.JSONDecoder()
    docs: list[Any] = []
    pos, end = 0, len(text)
    while True:
        while pos < end and text[pos].isspace():
            pos += 1
        if pos >= end:
            return docs
        doc, pos = decoder.raw_decode(text, pos)
        docs.append(doc)


def parse_flowspec(
    afi: Afi, detail_text: str, summary: dict[str, Any] | None = None
) -> list[FrrFlowEntry]:
    """Parse ``show bgp AFI flowspec detail json`` output (plus, optionally, the parsed
    ``show bgp AFI flowspec json`` for validity) into :class:`FrrFlowEntry` values."""
    entries: list[FrrFlowEntry] = []
    for doc in decode_json_stream(detail_text):
        if isinstance(doc, list):
            entries.append(FrrFlowEntry.from_frr(afi, doc))
        elif isinstance(doc, dict) and isinstance(doc.get("paths"), list) and doc["paths"]:
            entries.append(FrrFlowEntry.from_frr(afi, doc["paths"]))
    if summary is None:
        return entries
    status: dict[frozenset[tuple[str, str]], list[dict[str, Any]]] = {}
    for paths in (summary.get("routes") or {}).values():
        for path in paths:
            key = frozenset(
                (str(k), str(v).strip()) for k, v in path.items() if k not in _PATH_META_KEYS
            )
            status.setdefault(key, []).append(path)
    joined: list[FrrFlowEntry] = []
    for entry in entries:
        candidates = status.get(entry.match_key())
        if not candidates:
            joined.append(entry)
            continue
        path = candidates.pop(0)
        joined.append(
            dataclasses.replace(
                entry,
                valid=bool(path.get("valid")),
                best=bool(path.get("bestpath")),
                peer=path.get("peerId"),
            )
        )
    return joined


@dataclass
class _Daemon:
    name: str
    argv: list[str]
    log: Path
    output: Path
    pid_file: Path
    process: subprocess.Popen[bytes] | None = None

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


class FrrRouter:
    """An FRR router (bgpd, optionally zebra) in its own network namespace.

    Use as a context manager, or call :meth:`start` and, always, :meth:`close`. All
    readers run ``vtysh --vty_socket SOCKET_DIR -c COMMAND``.
    """

    def __init__(
        self,
        workdir: Path | str,
        *,
        asn: int = 65000,
        router_id: str | None = None,
        neighbors: Iterable[Neighbor] = DEFAULT_NEIGHBORS,
        with_zebra: bool = False,
        extra_config: str = "",
        start_timeout: float = 20.0,
        graceful_restart: bool = False,
    ) -> None:
        self.workdir = Path(workdir)
        self.asn = asn
        self._router_id = router_id
        self._neighbor_specs = tuple(neighbors)
        self.with_zebra = with_zebra
        self.extra_config = extra_config
        self.graceful_restart = graceful_restart  # "bgp graceful-restart" (RFC 4724)
        self.start_timeout = start_timeout
        self.neighbor_config: tuple[Neighbor, ...] = ()
        self.network = VethNamespace()
        self.socket_dir = self.workdir
        self._own_socket_dir = False
        self._daemons: list[_Daemon] = []
        self._started = False
        self._closed = False

    # -- addresses ------------------------------------------------------------------
    @property
    def namespace(self) -> str:
        """Name of the router's network namespace."""
        return self.network.namespace

    @property
    def host_v4(self) -> str:
        """Root-namespace IPv4 address of the veth pair (where the BGP speaker binds)."""
        return self.network.host_v4

    @property
    def host_v6(self) -> str:
        """Root-namespace IPv6 address of the veth pair."""
        return self.network.host_v6

    @property
    def router_v4(self) -> str:
        """The router's IPv4 address (its BGP session endpoint and default router-id)."""
        return self.network.router_v4

    @property
    def router_v6(self) -> str:
        """The router's IPv6 address."""
        return self.network.router_v6

    @property
    def router_id(self) -> str:
        """The BGP router-id: the one given, else :attr:`router_v4`."""
        return self._router_id or self.router_v4

    @property
    def config_path(self) -> Path:
        """The ``frr.conf`` bgpd reads."""
        return self.workdir / "frr.conf"

    @property
    def zebra_config_path(self) -> Path:
        """The config zebra reads (only with ``with_zebra``)."""
        return self.workdir / "zebra.conf"

    def __repr__(self) -> str:
        return (
            f"FrrRouter(namespace={self.namespace!r}, asn={self.asn}, "
            f"router={self.router_v4}/{self.router_v6}, host={self.host_v4}/{self.host_v6})"
        )

    # -- lifecycle --------------------------------------------------------------------
    def __enter__(self) -> FrrRouter:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def start(self) -> FrrRouter:
        """Build the namespace, write ``frr.conf``, start the daemons, wait for vtysh.

        Raises :class:`FrrStartError` with the daemons' logs; the caller must still call
        :meth:`close` (the context manager does).
        """
        if self._started:
            raise FrrStartError(f"{self!r} was already started")
        self._started = True
        reason = frr_missing_reason(self.with_zebra)
        if reason:
            raise FrrStartError(reason)
        self.workdir.mkdir(parents=True, exist_ok=True)
        if len(str(self.workdir)) > MAX_SOCKET_DIR:
            self.socket_dir = Path(tempfile.mkdtemp(prefix="tfxfrr"))
            self._own_socket_dir = True
        try:
            self.network.create()
        except NetnsError as exc:
            raise FrrStartError(f"could not create the router's namespace: {exc}") from exc
        self.neighbor_config = tuple(
            n.resolve(self.host_v4, self.host_v6) for n in self._neighbor_specs
        )
        self.config_path.write_text(self.render_config())
        zserv = self.socket_dir / "zserv.api"
        if self.with_zebra:
            self.zebra_config_path.write_text(self.render_zebra_config())
            zebra = self._spawn(
                "zebra", [str(ZEBRA), "-z", str(zserv)], config=self.zebra_config_path
            )
            self._wait(
                lambda: zserv.exists() or None,
                self.start_timeout,
                f"zebra's socket {zserv}",
                FrrStartError,
                watch=[zebra],
            )
            bgp_args = ["-z", str(zserv)]
        else:
            bgp_args = ["-Z"]
        bgpd = self._spawn("bgpd", [str(BGPD), *bgp_args], config=self.config_path)
        self._wait(
            self._vtysh_ready, self.start_timeout, "vtysh to answer", FrrStartError, watch=[bgpd]
        )
        return self

    def render_config(self) -> str:
        """The ``frr.conf`` for this router (resolved neighbors; call after the network)."""
        lines = [
            "! written by tests/integration/frr.py",
            "frr defaults traditional",
            f"hostname {self.namespace or 'frr'}",
            "log timestamp precision 3",
            "debug bgp neighbor-events",
            "!",
            f"router bgp {self.asn}",
            f" bgp router-id {self.router_id}",
            " no bgp ebgp-requires-policy",
            " no bgp default ipv4-unicast",
            " no bgp network import-check",
        ]
        if self.graceful_restart:
            lines.append(" bgp graceful-restart")
        for n in self.neighbor_config:
            lines.append(f" neighbor {n.address} remote-as {n.remote_as}")
            lines.append(f" neighbor {n.address} timers connect {n.connect_retry}")
            if n.passive:
                lines.append(f" neighbor {n.address} passive")
            if n.port is not None:
                lines.append(f" neighbor {n.address} port {n.port}")
        for family in ALL_FAMILIES:
            members = [n for n in self.neighbor_config if n.families and family in n.families]
            if not members:
                continue
            afi, safi = family.split("-")
            lines.append(f" address-family {afi} {safi}")
            lines.extend(f"  neighbor {n.address} activate" for n in members)
            lines.append(" exit-address-family")
        lines += ["exit", "!"]
        if self.extra_config:
            lines += [self.extra_config.rstrip("\n"), "!"]
        return "\n".join(lines) + "\n"

    def render_zebra_config(self) -> str:
        """zebra's own config (zebra would log every ``router bgp`` line of frr.conf)."""
        return f"! written by tests/integration/frr.py\nhostname {self.namespace}\n!\n"

    def _spawn(self, name: str, argv: list[str], config: Path) -> _Daemon:
        daemon = _Daemon(
            name=name,
            argv=[],
            log=self.workdir / f"{name}.log",
            output=self.workdir / f"{name}.out",
            pid_file=self.workdir / f"{name}.pid",
        )
        daemon.argv = [
            *self.network.exec_prefix(),
            *argv,
            "-f",
            str(config),
            "-i",
            str(daemon.pid_file),
            "--vty_socket",
            str(self.socket_dir),
            *privilege_args(name),
            "--log",
            f"file:{daemon.log}",
            "--log-level",
            "debugging",
        ]
        self._daemons.append(daemon)
        with open(daemon.output, "wb") as out:
            # `ip netns exec` execs the daemon, so the Popen PID is the daemon's PID. A new
            # session keeps a terminal's Ctrl-C from killing it before close() runs.
            daemon.process = subprocess.Popen(
                daemon.argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return daemon

    def _vtysh_ready(self) -> bool | None:
        try:
            summary = self.vtysh_json("show bgp summary json")
        except FrrCommandError:
            return None
        return True if isinstance(summary, dict) else None

    def close(self) -> None:
        """Stop the daemons this router started (SIGTERM, then SIGKILL), delete the veth pair
        and the namespace. Idempotent; safe after a failed or partial :meth:`start`.

        Raises :class:`FrrError` when something it created could not be removed.
        """
        if self._closed:
            return
        self._closed = True
        problems: list[str] = []
        for daemon in reversed(self._daemons):
            problem = _stop(daemon)
            if problem:
                problems.append(problem)
            else:
                self._collect_frr_tmpdir(daemon)
        try:
            self.network.destroy()
        except NetnsError as exc:
            problems.append(str(exc))
        if self._own_socket_dir:
            shutil.rmtree(self.socket_dir, ignore_errors=True)
        if problems:
            raise FrrError(f"{self!r} left something behind: {'; '.join(problems)}")

    def _collect_frr_tmpdir(self, daemon: _Daemon) -> None:
        """Move the daemon's ``/var/tmp/frr/NAME.PID`` (FRR's crash-log buffers; zebra leaves
        it behind even after SIGTERM) into the workdir, so no run clutters the host."""
        if daemon.process is None:
            return
        leftover = FRR_TMPDIR / f"{daemon.name}.{daemon.process.pid}"
        if not leftover.is_dir():
            return
        try:
            shutil.move(leftover, self.workdir / f"{leftover.name}.var-tmp-frr")
        except OSError:
            shutil.rmtree(leftover, ignore_errors=True)

    # -- health ---------------------------------------------------------------------
    def alive(self) -> dict[str, bool]:
        """Whether each daemon this router started is still running (by its PID)."""
        return {d.name: d.running() for d in self._daemons}

    def pids(self) -> dict[str, int]:
        """The PID of each daemon this router started."""
        return {d.name: d.process.pid for d in self._daemons if d.process is not None}

    def logs(self, tail_lines: int = LOG_TAIL_LINES) -> str:
        """The last ``tail_lines`` of each daemon's log file and stdout/stderr, for reports."""
        parts: list[str] = []
        for d in self._daemons:
            state = "running" if d.running() else f"exited {_returncode(d)}"
            pid = d.process.pid if d.process else "-"
            for path in (d.log, d.output):
                parts.append(f"----- {d.name} (pid {pid}, {state}): {path} -----")
                parts.append(_tail(path, tail_lines))
        return "\n".join(parts) if parts else "(no daemon was started)"

    # -- vtysh ----------------------------------------------------------------------
    def vtysh(self, command: str, *more: str, timeout: float = VTYSH_TIMEOUT) -> str:
        """Run vtysh commands (one ``-c`` each, in one session) and return the output.

        Raises :class:`FrrCommandError` when vtysh fails or prints an error line (``% ...``).
        """
        vtysh = vtysh_binary()
        if vtysh is None:
            raise FrrCommandError("vtysh is not installed")
        cmd = [vtysh, "--vty_socket", str(self.socket_dir)]
        for c in (command, *more):
            cmd += ["-c", c]
        command = " / ".join((command, *more))
        try:
            proc = subprocess.run(
                cmd,
                check=False,
                capture_output=True,
                text=True,
                timeout=timeout,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired as exc:
            raise FrrCommandError(f"vtysh -c {command!r}: no answer within {timeout} s") from exc
        errors = [line for line in proc.stdout.splitlines() if line.startswith("% ")]
        if proc.returncode != 0 or errors:
            detail = (proc.stderr + proc.stdout).strip()
            raise FrrCommandError(f"vtysh -c {command!r} exited {proc.returncode}: {detail}")
        return proc.stdout

    def vtysh_json(self, command: str) -> Any:
        """Run a ``... json`` command and decode its one JSON document (``{}`` if empty)."""
        text = self.vtysh(command)
        if not text.strip():
            return {}
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise FrrCommandError(f"vtysh -c {command!r} printed no JSON: {text[:500]!r}") from exc

    def configure(self, *lines: str) -> str:
        """Apply configuration lines at run time (``configure terminal`` then each line), e.g.
        ``router.configure("router bgp 65000", f"neighbor {router.host_v4} shutdown")``.

        Raises :class:`FrrCommandError` when FRR rejects a line.
        """
        return self.vtysh("configure terminal", *lines)

    # -- neighbors ------------------------------------------------------------------
    def neighbors(self) -> dict[str, dict[str, Any]]:
        """``show bgp neighbors json``: address → FRR's neighbor dict (``bgpState`` etc.)."""
        data = self.vtysh_json("show bgp neighbors json")
        return {str(k): v for k, v in data.items() if isinstance(v, dict)}

    def neighbor_state(self, address: str) -> str:
        """FRR's ``bgpState`` of a configured neighbor (``"Established"``, ``"Active"``...).

        Raises :class:`KeyError` when FRR has no such neighbor.
        """
        wanted = ipaddress.ip_address(address)
        for key, value in self.neighbors().items():
            with contextlib.suppress(ValueError):
                if ipaddress.ip_address(key) == wanted:
                    return str(value.get("bgpState", ""))
        raise KeyError(f"{self.namespace} has no BGP neighbor {address}")

    def wait_established(
        self, addresses: Iterable[str] | None = None, timeout: float = 30.0
    ) -> None:
        """Wait until every neighbor in ``addresses`` (default: all configured) is Established.

        Raises :class:`FrrTimeoutError` with the states and logs at the deadline.
        """
        wanted = [str(a) for a in addresses] if addresses is not None else None
        if wanted is None:
            wanted = [n.address for n in self.neighbor_config]

        def states() -> dict[str, str]:
            out: dict[str, str] = {}
            for address in wanted:
                try:
                    out[address] = self.neighbor_state(address)
                except KeyError:
                    out[address] = "(not configured)"
            return out

        last: dict[str, str] = {}

        def check() -> bool | None:
            nonlocal last
            last = states()
            return all(s == "Established" for s in last.values()) or None

        try:
            self.wait_until(check, timeout, "BGP sessions to be Established")
        except FrrTimeoutError as exc:
            raise FrrTimeoutError(f"sessions not Established: {last}\n{exc}") from None

    # -- unicast --------------------------------------------------------------------
    def unicast_routes(self, afi: Afi) -> dict[str, list[dict[str, Any]]]:
        """``show bgp ipv4|ipv6 unicast json``: prefix → FRR's path dicts (``valid``,
        ``bestpath``, ``metric``, ``nexthops``, ``peerId``, ``path``...; no communities)."""
        data = self.vtysh_json(f"show bgp {_afi(afi)} unicast json")
        routes = data.get("routes") or {}
        return {str(prefix): list(paths) for prefix, paths in routes.items()}

    def unicast_route(self, afi: Afi, prefix: str) -> list[UnicastPath]:
        """The paths of one prefix (exact match) with the attributes trafex sets; [] if absent.

        Reads ``show bgp ipv4|ipv6 unicast PREFIX json``.
        """
        data = self.vtysh_json(f"show bgp {_afi(afi)} unicast {prefix} json")
        name = str(data.get("prefix", prefix))
        return [UnicastPath.from_frr(name, p) for p in data.get("paths", [])]

    def wait_unicast(self, afi: Afi, prefix: str, timeout: float = 10.0) -> list[UnicastPath]:
        """Wait until ``prefix`` has a best path (FRR lists a new path a moment before it
        has run best-path selection on it) and return its paths."""

        def check() -> list[UnicastPath] | None:
            paths = self.unicast_route(afi, prefix)
            return paths if any(p.best for p in paths) else None

        return self.wait_until(check, timeout, f"{afi} unicast {prefix} with a best path")

    def unicast_details(self, afi: Afi) -> dict[str, list[UnicastPath]]:
        """:meth:`unicast_route` for every prefix in the table (one vtysh call per prefix)."""
        return {prefix: self.unicast_route(afi, prefix) for prefix in self.unicast_routes(afi)}

    # -- flowspec -------------------------------------------------------------------
    def flowspec(self, afi: Afi) -> list[FrrFlowEntry]:
        """Every FlowSpec rule of ``afi``, from ``show bgp AFI flowspec detail json`` joined
        with ``show bgp AFI flowspec json`` for valid/best/peer."""
        detail = self.vtysh(f"show bgp {_afi(afi)} flowspec detail json")
        summary = self.vtysh_json(f"show bgp {_afi(afi)} flowspec json")
        return parse_flowspec(afi, detail, summary if isinstance(summary, dict) else None)

    def wait_flowspec(self, afi: Afi, count: int, timeout: float = 10.0) -> list[FrrFlowEntry]:
        """Wait until FRR holds exactly ``count`` FlowSpec rules of ``afi``, each valid and
        best, and return them. (A rule is listed a moment before best-path selection.)"""
        last: list[FrrFlowEntry] = []

        def check() -> list[FrrFlowEntry] | None:
            nonlocal last
            last = self.flowspec(afi)
            settled = len(last) == count and all(e.valid and e.best for e in last)
            return last if settled else None

        try:
            return self.wait_until(check, timeout, f"{count} valid, best {afi} FlowSpec rules")
        except FrrTimeoutError as exc:
            seen = "\n".join(f"  {e!r}" for e in last) or "  (none)"
            raise FrrTimeoutError(f"last seen:\n{seen}\n{exc}") from None

    def flowspec_text(self, afi: Afi, detail: bool = False) -> str:
        """``show bgp AFI flowspec [detail]`` as text (status codes ``*>``, "installed in PBR")."""
        return self.vtysh(f"show bgp {_afi(afi)} flowspec{' detail' if detail else ''}")

    # -- waiting --------------------------------------------------------------------
    def wait_until(self, check: Callable[[], T | None], timeout: float, what: str) -> T:
        """Poll ``check`` until it returns something other than None (or False).

        Raises :class:`FrrTimeoutError` naming ``what``, with the logs, at the deadline, and
        :class:`FrrError` at once if a daemon died meanwhile.
        """
        return self._wait(check, timeout, what, FrrTimeoutError, watch=self._daemons)

    def _wait(
        self,
        check: Callable[[], T | None],
        timeout: float,
        what: str,
        error: type[FrrError],
        watch: Sequence[_Daemon],
    ) -> T:
        deadline = time.monotonic() + timeout
        delay = 0.05
        while True:
            result = check()
            if result is not None and result is not False:
                return result
            dead = [d for d in watch if not d.running()]
            if dead:
                names = ", ".join(f"{d.name} (exit {_returncode(d)})" for d in dead)
                raise error(f"{self!r}: {names} died while waiting for {what}\n{self.logs()}")
            if time.monotonic() >= deadline:
                raise error(
                    f"{self!r}: timed out after {timeout:.1f} s waiting for {what}\n{self.logs()}"
                )
            time.sleep(delay)
            delay = min(delay * 2, 0.5)


class FrrRouterFactory(Protocol):
    """The ``frr_router_factory`` fixture: builds and starts a router, closed at teardown."""

    def __call__(
        self,
        neighbors: Iterable[Neighbor] = DEFAULT_NEIGHBORS,
        *,
        asn: int = 65000,
        router_id: str | None = None,
        with_zebra: bool = False,
        extra_config: str = "",
        start_timeout: float = 20.0,
    ) -> FrrRouter: ...


def _afi(afi: Afi) -> str:
    if afi not in ("ipv4", "ipv6"):
        raise ValueError(f"afi must be 'ipv4' or 'ipv6', not {afi!r}")
    return afi


def _returncode(daemon: _Daemon) -> str:
    if daemon.process is None:
        return "not started"
    code = daemon.process.poll()
    if code is None:
        return "running"
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"signal {signal.Signals(-code).name}"
    return str(code)


def _tail(path: Path, lines: int) -> str:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return "(no file)"
    return "\n".join(text.splitlines()[-lines:])


def _stop(daemon: _Daemon) -> str | None:
    """SIGTERM the daemon by PID, SIGKILL it after a deadline; a problem string or None."""
    process = daemon.process
    if process is None or process.poll() is not None:
        return None
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=STOP_TIMEOUT)
        return None
    except subprocess.TimeoutExpired:
        pass
    with contextlib.suppress(ProcessLookupError):
        process.kill()
    try:
        process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        return f"{daemon.name} (pid {process.pid}) survived SIGKILL"
    return None
