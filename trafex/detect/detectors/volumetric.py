"""Volumetric detector: packets/s and bits/s towards one address over a sliding window.

Per destination address, packets and bytes (IP length) are counted in buckets
of ``bucket`` seconds; the rate is the sum over the last ``window`` seconds
(the buckets before plus the current one) divided by ``window``. Each rate is
kept overall and for four kinds of packets: TCP SYN (without ACK), UDP, ICMP
(v4 and v6) and IP fragments. Thresholds come from the host group whose prefix
matches the destination most specifically, else from ``[default]``; a
threshold of 0 (or absent) is off.

Counting every packet is cheap; naming the flood's sources and ports is not,
so a host's sources, ports and protocols are tallied only once one of its
rates passes ``watch_ratio`` of its threshold. A detection fires once per
(host, kind, metric) and re-arms when the rate falls back under the threshold;
while a flood goes on it fires again (``"repeat": true``) every ``repeat_after``
seconds of packet time, so that a trigger policy can refresh its intent
(``repeat_after = 0``: only once).
"""

from __future__ import annotations

import ipaddress
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from operator import add, sub
from typing import Annotated, Any

from trafex.config import Range, Table, number, str_list
from trafex.detect.detection import Detection, IPAddress, JSONValue
from trafex.detect.detectors.base import NOTHING, DetectorBase, Interests
from trafex.detect.detectors.spec import (
    Aim,
    DetectorSpec,
    Target,
    TriggerDefaults,
    equals,
    family_of,
    host_prefix,
)
from trafex.detect.packet import PacketView, ip_of
from trafex.model.components import FRAGMENT_IS
from trafex.model.flowspec import BitmaskTerm, FlowActions, FlowMatch, NumericTerm
from trafex.model.protocols import (
    PROTO_ICMP,
    PROTO_ICMPV6,
    PROTO_TCP,
    PROTO_UDP,
    TCP_ACK,
    TCP_SYN,
    icmp_protocol,
    protocol_name,
)

NAME = "volumetric"
KINDS = ("all", "tcp-syn", "udp", "icmp", "fragment")
_PREFIX = {"all": "", "tcp-syn": "syn_", "udp": "udp_", "icmp": "icmp_", "fragment": "frag_"}
THRESHOLD_KEYS = tuple(f"{_PREFIX[k]}{m}" for k in KINDS for m in ("pps", "bps"))
_INF = float("inf")
# Counter index (in the order of THRESHOLD_KEYS, pps then bps) of each kind that is
# told by the IP protocol alone: UDP, ICMP and ICMPv6 (TCP SYN and fragments are not).
_KIND_OF_PROTO = {PROTO_UDP: 4, PROTO_ICMP: 6, PROTO_ICMPV6: 6}
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
_SYN_ACK = TCP_SYN | TCP_ACK
_PORTED = (PROTO_TCP, PROTO_UDP)  # protocols whose ports the evidence names
_rate = number(Range(0))  # a threshold: packets or bits per second, 0: off


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Rates per kind, in the order of ``THRESHOLD_KEYS``; 0 means off."""

    values: tuple[float, ...] = (0.0,) * len(THRESHOLD_KEYS)

    @classmethod
    def read(cls, table: Table) -> Thresholds:
        """The ``pps``, ``bps``, ``syn_pps``, … keys of ``table`` (absent: 0, off)."""
        return cls(tuple(table.convert(key, _rate, 0.0) for key in THRESHOLD_KEYS))

    def enabled(self) -> bool:
        return any(self.values)


@dataclass(frozen=True, slots=True)
class HostGroup:
    name: str
    prefixes: tuple[IPNetwork, ...]
    thresholds: Thresholds

    @classmethod
    def read(cls, table: Table, index: int) -> HostGroup:
        """One ``[[detect.volumetric.groups]]``: ``name``, ``prefixes`` and thresholds."""
        name = table.take("name", str, f"group{index}")
        prefixes: tuple[IPNetwork, ...] = table.convert("prefixes", _prefixes, ())
        if not prefixes:
            raise table.error("prefixes", "a host group needs at least one prefix")
        group = cls(name, prefixes, Thresholds.read(table))
        table.done()
        return group


def _prefixes(value: Any) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(text, strict=False) for text in str_list(value))


@dataclass(frozen=True, slots=True)
class VolumetricConfig:
    """``[detect.volumetric]``; ``default`` and ``groups`` are read by :func:`read_config`."""

    window: Annotated[float, Range(above=0)] = 10.0  # seconds the rates are measured over
    bucket: Annotated[float, Range(above=0)] = 1.0  # seconds per bucket (<= window)
    top: Annotated[int, Range(1)] = 5  # sources and ports named in the evidence
    max_hosts: Annotated[int, Range(1)] = 100_000
    watch_ratio: Annotated[float, Range(above=0, maximum=1)] = 0.5
    repeat_after: Annotated[float, Range(0)] = 60.0  # 0: report a flood once
    default: Thresholds = field(default_factory=Thresholds)
    groups: tuple[HostGroup, ...] = ()


def read_config(table: Table) -> VolumetricConfig:
    """``[detect.volumetric]`` with its ``[default]`` thresholds and ``[[groups]]``."""
    default_table = table.table("default")
    default = Thresholds.read(default_table)
    default_table.done()
    groups = tuple(HostGroup.read(t, i) for i, t in enumerate(table.tables("groups")))
    config = table.read(VolumetricConfig, default=default, groups=groups)
    if config.window < config.bucket:
        raise table.error("bucket", "must be no longer than the window")
    return config


@dataclass(frozen=True, slots=True)
class VolumetricEvidence:
    group: str
    kind: str
    metric: str
    rate: float
    threshold: float
    window: float
    ip_proto: int | None  # the most frequent IP protocol of the flood
    top_sources: tuple[tuple[IPAddress, int], ...]  # (source, packets)
    top_dst_ports: tuple[tuple[int, int, int], ...]  # (protocol, port, packets)
    top_src_ports: tuple[tuple[int, int, int], ...]
    repeat: bool = False  # fired before; the flood goes on

    def to_dict(self) -> dict[str, JSONValue]:
        return {
            "repeat": self.repeat,
            "group": self.group,
            "kind": self.kind,
            "metric": self.metric,
            "rate": round(self.rate, 3),
            "threshold": self.threshold,
            "window": self.window,
            "ip_proto": protocol_name(self.ip_proto) if self.ip_proto is not None else None,
            "top_sources": [{"src": str(s), "packets": n} for s, n in self.top_sources],
            "top_dst_ports": _ports_json(self.top_dst_ports),
            "top_src_ports": _ports_json(self.top_src_ports),
        }


def _ports_json(ports: tuple[tuple[int, int, int], ...]) -> list[JSONValue]:
    return [{"proto": protocol_name(p), "port": port, "packets": n} for p, port, n in ports]


class _Detail:
    __slots__ = ("dports", "protos", "sources", "sports")

    def __init__(self) -> None:
        self.sources: Counter[bytes] = Counter()
        self.dports: Counter[tuple[int, int]] = Counter()
        self.sports: Counter[tuple[int, int]] = Counter()
        self.protos: Counter[int] = Counter()


class _Host:
    __slots__ = (
        "cur",
        "detail",
        "fired",
        "fired_at",
        "group",
        "limits",
        "repeat",
        "ring",
        "watch",
        "win",
    )

    def __init__(self, group: str, limits: list[float], watch: list[float]) -> None:
        self.group = group
        self.limits = limits
        self.watch = watch
        self.cur = [0] * 10
        self.win = [0] * 10
        self.ring: deque[list[int]] = deque()
        self.fired = 0
        self.fired_at = 0  # packet time (ns) of the first detection since the last re-arm
        self.repeat = False  # re-armed by repeat_after: the next detections are repeats
        self.detail: _Detail | None = None


# get()'s default for a destination not in the host table yet (None: one not monitored).
_UNKNOWN = _Host("", [], [])


class VolumetricDetector(DetectorBase):
    name = NAME
    interests = Interests(packets=True)

    def __init__(self, config: VolumetricConfig) -> None:
        self.config = config
        self._hosts: dict[bytes, _Host | None] = {}
        self._bucket_ns = int(config.bucket * 1e9)
        self._repeat_ns = int(config.repeat_after * 1e9)
        self._buckets = max(1, round(config.window / config.bucket))
        self._next_rotate = 0
        self._groups = [(net, g) for g in config.groups for net in g.prefixes]
        self._groups.sort(key=lambda ng: -ng[0].prefixlen)

    def _limits(self, thresholds: Thresholds) -> tuple[list[float], list[float]]:
        w = self.config.window
        limits = []
        for i, rate in enumerate(thresholds.values):
            per_window = rate * w / 8 if i % 2 else rate * w  # bytes for bps, packets for pps
            limits.append(per_window if rate else _INF)
        return limits, [x * self.config.watch_ratio for x in limits]

    def _new_host(self, dst: bytes) -> _Host | None:
        if len(self._hosts) >= self.config.max_hosts:
            self._evict_idle(force=True)
        addr = ipaddress.ip_address(dst)
        group_name = "default"
        thresholds = self.config.default
        for net, group in self._groups:
            if addr.version == net.version and addr in net:
                group_name, thresholds = group.name, group.thresholds
                break
        if not thresholds.enabled():
            return None
        limits, watch = self._limits(thresholds)
        return _Host(group_name, limits, watch)

    def on_packet(self, pkt: PacketView) -> Sequence[Detection]:
        ts = pkt.ts
        if ts >= self._next_rotate:
            self._rotate(ts)
        dst = pkt.dst
        host = self._hosts.get(dst, _UNKNOWN)
        if host is _UNKNOWN:
            host = self._hosts[dst] = self._new_host(bytes(dst))
        if host is None:
            return NOTHING
        n = pkt.length
        proto = pkt.proto
        if pkt.fragment:
            k = 8
        elif proto == PROTO_TCP:
            k = 2 if pkt.tcp_flags & _SYN_ACK == TCP_SYN else 0
        else:
            k = _KIND_OF_PROTO.get(proto, 0)
        c = host.cur
        w = host.win
        c[0] += 1
        c[1] += n
        if k:
            c[k] += 1
            c[k + 1] += n
        detail = host.detail
        if detail is None:
            # Not watched yet. The watch levels are at most the thresholds, so a host
            # under all of them cannot fire: nothing more to do for this packet.
            watch = host.watch
            if not (
                w[0] + c[0] > watch[0]
                or w[1] + c[1] > watch[1]
                or (k and (w[k] + c[k] > watch[k] or w[k + 1] + c[k + 1] > watch[k + 1]))
            ):
                return NOTHING
            detail = host.detail = _Detail()
        detail.sources[bytes(pkt.src)] += 1
        detail.protos[proto] += 1
        if not pkt.fragment and proto in _PORTED:
            detail.dports[(proto, pkt.dport)] += 1
            detail.sports[(proto, pkt.sport)] += 1
        lim = host.limits
        if (
            w[0] + c[0] > lim[0]
            or w[1] + c[1] > lim[1]
            or (k and (w[k] + c[k] > lim[k] or w[k + 1] + c[k + 1] > lim[k + 1]))
        ):
            return self._fire(pkt, host, k)
        return NOTHING

    def _fire(self, pkt: PacketView, host: _Host, k: int) -> Sequence[Detection]:
        out: list[Detection] = []
        for i in (0, 1, k, k + 1) if k else (0, 1):
            bit = 1 << i
            total = host.win[i] + host.cur[i]
            if total <= host.limits[i] or host.fired & bit:
                continue
            if not host.fired:
                host.fired_at = pkt.ts
            host.fired |= bit
            out.append(self._detection(pkt, host, i, total))
        return out

    def _detection(self, pkt: PacketView, host: _Host, i: int, total: int) -> Detection:
        cfg = self.config
        kind = KINDS[i // 2]
        metric = "bps" if i % 2 else "pps"
        rate = total * (8 if i % 2 else 1) / cfg.window
        threshold = host.limits[i] * (8 if i % 2 else 1) / cfg.window
        detail = host.detail or _Detail()
        top = cfg.top
        proto_top = detail.protos.most_common(1)
        evidence = VolumetricEvidence(
            group=host.group,
            kind=kind,
            metric=metric,
            rate=rate,
            threshold=threshold,
            window=cfg.window,
            ip_proto=proto_top[0][0] if proto_top else None,
            top_sources=tuple((ip_of(s), n) for s, n in detail.sources.most_common(top)),
            top_dst_ports=tuple((p, port, n) for (p, port), n in detail.dports.most_common(top)),
            top_src_ports=tuple((p, port, n) for (p, port), n in detail.sports.most_common(top)),
            repeat=host.repeat,
        )
        return Detection(NAME, pkt.ts / 1e9, evidence, host=ip_of(pkt.dst))

    def on_tick(self, now_ns: int) -> Sequence[Detection]:
        if now_ns >= self._next_rotate:
            self._rotate(now_ns)
        return NOTHING

    def _rotate(self, ts: int) -> None:
        if self._next_rotate == 0:
            self._next_rotate = ts - ts % self._bucket_ns + self._bucket_ns
            return
        steps = (ts - self._next_rotate) // self._bucket_ns + 1
        self._next_rotate += steps * self._bucket_ns
        keep = self._buckets - 1
        for _ in range(min(steps, self._buckets + 1)):
            for host in self._hosts.values():
                if host is None:
                    continue
                # map() sums the ten counters in C: this loop runs for every host.
                cur = host.cur
                win = list(map(add, host.win, cur))  # now a whole window's worth
                ring = host.ring
                ring.append(cur)
                host.cur = [0] * 10
                # Re-arm what fell under its threshold; after repeat_after, re-arm all
                # so that a flood still going on is reported again.
                if host.fired:
                    if self._repeat_ns and ts - host.fired_at >= self._repeat_ns:
                        host.fired = 0
                        host.repeat = True
                    for i in range(10):
                        if host.fired & (1 << i) and win[i] <= host.limits[i]:
                            host.fired &= ~(1 << i)
                if host.repeat and all(win[i] <= host.limits[i] for i in range(10)):
                    host.repeat = False  # the flood ended: the next one is new
                if (
                    host.detail is not None
                    and not host.fired
                    and all(win[i] <= host.watch[i] for i in range(10))
                ):
                    host.detail = None
                while len(ring) > keep:
                    win = list(map(sub, win, ring.popleft()))
                host.win = win
        self._evict_idle(force=False)

    def _evict_idle(self, force: bool) -> None:
        hosts = self._hosts
        idle = [
            dst
            for dst, h in hosts.items()
            if h is None or (not h.fired and not any(h.win) and not any(h.cur))
        ]
        if force and not idle:
            idle = list(hosts)[: max(1, len(hosts) // 10)]
        for dst in idle:
            del hosts[dst]

    @property
    def hosts(self) -> int:
        return len(self._hosts)


# -- what a flood's detection aims at -------------------------------------------------------


def targets(detection: Detection, aim: Aim) -> list[Target]:
    """The flood's target: its host route (RTBH with a blackhole community), or a rule
    towards it made precise with what ``aim.match`` takes from the evidence: the
    protocol of the flood's kind, its top destination or source port, one rule per top
    source (``source``)."""
    host, evidence = detection.host, detection.evidence
    if host is None or not isinstance(evidence, VolumetricEvidence):
        return []
    reason = (
        f"volumetric: {evidence.kind} {evidence.metric} {evidence.rate:.0f} > "
        f"{evidence.threshold:.0f} towards {host} (group {evidence.group})"
    )
    if aim.route:
        return [Target(host, reason)]
    kind = _Kind.of(evidence, host) if "protocol" in aim.match else _Kind()

    def top_port(choice: str, top: tuple[tuple[int, int, int], ...]) -> tuple[NumericTerm, ...]:
        # The top port counts only when it belongs to the flood's protocol.
        usable = choice in aim.match and top and evidence.kind != "fragment"
        return equals(top[0][1]) if usable and kind.protocol in (None, top[0][0]) else ()

    sources: list[IPAddress | None] = [None]
    if "source" in aim.match:
        sources = [s for s, _ in evidence.top_sources if s.version == host.version] or sources
    out = []
    for source in sources:
        match = FlowMatch(
            family_of(host),
            destination=host_prefix(host),
            source=host_prefix(source) if source is not None else None,
            protocol=equals(kind.protocol) if kind.protocol is not None else (),
            tcp_flags=kind.tcp_flags,
            fragment=kind.fragment,
            destination_port=top_port("destination-port", evidence.top_dst_ports),
            source_port=top_port("source-port", evidence.top_src_ports),
        )
        out.append(Target(match, reason if source is None else f"{reason}, source {source}"))
    return out


@dataclass(frozen=True, slots=True)
class _Kind:
    """The components that say a flood's kind: its protocol, SYN without ACK, fragments."""

    protocol: int | None = None
    tcp_flags: tuple[BitmaskTerm, ...] = ()
    fragment: tuple[BitmaskTerm, ...] = ()

    @classmethod
    def of(cls, evidence: VolumetricEvidence, host: IPAddress) -> _Kind:
        kind = evidence.kind
        if kind == "tcp-syn":
            syn = (BitmaskTerm(TCP_SYN, match=True), BitmaskTerm(TCP_ACK, not_=True, and_=True))
            return cls(PROTO_TCP, tcp_flags=syn)
        if kind == "udp":
            return cls(PROTO_UDP)
        if kind == "icmp":
            return cls(icmp_protocol(host.version))
        if kind == "fragment":
            return cls(fragment=(BitmaskTerm(FRAGMENT_IS),))
        return cls(evidence.ip_proto)


SPEC = DetectorSpec(
    name=NAME,
    read=read_config,
    build=VolumetricDetector,
    trigger=TriggerDefaults(
        action="flowspec",
        ttl=300.0,
        flow_actions=FlowActions(rate=0.0),  # discard towards the host
        match=("protocol",),
        match_choices=frozenset({"protocol", "destination-port", "source-port", "source"}),
    ),
    targets=targets,
)
