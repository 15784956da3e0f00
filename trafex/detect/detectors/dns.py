"""DNS detector: a response for a blocklisted name yields the addresses it resolves to.

A DNS response (UDP, or TCP with its two-byte length prefix, reassembled per
connection; IPv4 and IPv6) whose question name is on the blocklist (exactly or
as a subdomain) gives one detection with every A and AAAA address of its
answer section reached from the question name through the CNAME chain. The
blocklist file is re-read by :meth:`DnsDetector.reload` (SIGHUP in the CLI).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any

import structlog

from trafex.config import Parse, Range, int_list
from trafex.detect.detection import Detection, FlowDirection, IPAddress, JSONValue
from trafex.detect.detectors.base import NOTHING, DetectorBase, Interests
from trafex.detect.detectors.blocklist import Blocklist
from trafex.detect.detectors.dnsmsg import DnsResponse, parse_response
from trafex.detect.detectors.spec import (
    Aim,
    DetectorSpec,
    Target,
    TriggerDefaults,
    family_of,
    host_prefix,
    read_dataclass,
)
from trafex.detect.packet import PacketView, ip_of
from trafex.model.flowspec import FlowActions, FlowMatch, RouteTarget
from trafex.model.protocols import PROTO_UDP, TCP_FIN, TCP_RST, TCP_SYN

NAME = "dns"
log = structlog.get_logger("trafex.detect.dns")

M32 = 0xFFFFFFFF
MAX_TCP_MESSAGE = 65535 + 2


def _ports(value: Any) -> tuple[int, ...]:
    ports = int_list(value)
    for port in ports:
        if not 0 < port < 65536:
            raise ValueError(f"not a port: {port}")
    return tuple(ports)


@dataclass(frozen=True, slots=True)
class DnsConfig:
    """``[detect.dns]``: a blocklist file and/or names, the ports DNS runs on."""

    blocklist: str | None = None
    ports: Annotated[tuple[int, ...], Parse(_ports)] = (53,)
    max_tcp_streams: Annotated[int, Range(1)] = 10_000
    names: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class DnsEvidence:
    qname: str
    addresses: tuple[IPAddress, ...]
    client: IPAddress
    server: IPAddress
    blocked: str

    def to_dict(self) -> dict[str, JSONValue]:
        return {
            "qname": self.qname,
            "addresses": [str(a) for a in self.addresses],
            "client": str(self.client),
            "server": str(self.server),
            "blocked": self.blocked,
        }


class _Stream:
    """Bytes of one direction of a DNS-over-TCP connection, in sequence order."""

    __slots__ = ("buf", "next_seq", "pending", "ts")

    def __init__(self, next_seq: int, ts: int) -> None:
        self.next_seq = next_seq
        self.buf = b""
        self.pending: dict[int, bytes] = {}
        self.ts = ts


class DnsDetector(DetectorBase):
    name = NAME

    def __init__(self, config: DnsConfig, blocklist: Blocklist | None = None) -> None:
        self.config = config
        ports = frozenset(config.ports)
        self.interests = Interests(udp_ports=ports, tcp_ports=ports)
        self.blocklist = blocklist if blocklist is not None else self._load()
        self._streams: dict[bytes, _Stream] = {}
        self.responses = 0

    def _load(self) -> Blocklist:
        names = list(self.config.names)
        if self.config.blocklist:
            names.extend(Blocklist.from_file(self.config.blocklist).names)
        return Blocklist(names)

    def reload(self) -> None:
        """Re-read the blocklist file; on error keep the current list and log it."""
        try:
            fresh = self._load()
        except Exception as exc:  # the sensor keeps running with the old list
            log.error("blocklist.reload_failed", error=str(exc))
            return
        self.blocklist = fresh
        log.info("blocklist.reloaded", names=len(fresh), path=self.config.blocklist)

    def on_payload(self, pkt: PacketView, payload: bytes) -> Sequence[Detection]:
        if pkt.proto == PROTO_UDP:
            return self._message(pkt, payload)
        return self._tcp(pkt, payload)

    def _message(self, pkt: PacketView, msg: bytes) -> Sequence[Detection]:
        if len(msg) < 12 or not msg[2] & 0x80:
            return NOTHING
        self.responses += 1
        if not len(self.blocklist):
            return NOTHING
        resp = parse_response(msg)
        if resp is None:
            return NOTHING
        return self._judge(pkt, resp)

    def _judge(self, pkt: PacketView, resp: DnsResponse) -> Sequence[Detection]:
        blocked = self.blocklist.match(resp.qname)
        if blocked is None:
            return NOTHING
        addresses = tuple(ipaddress.ip_address(a) for a in resp.chain_addresses())
        if not addresses:
            return NOTHING
        qname = resp.qname if resp.qname.endswith(".") else resp.qname + "."
        client, server = ip_of(pkt.dst), ip_of(pkt.src)
        evidence = DnsEvidence(qname, addresses, client, server, blocked)
        flow = FlowDirection(server, pkt.sport, client, pkt.dport, pkt.proto)
        return (Detection(NAME, pkt.ts / 1e9, evidence, flow=flow, host=client),)

    def _tcp(self, pkt: PacketView, payload: bytes) -> Sequence[Detection]:
        key = pkt.src + pkt.dst + pkt.sport.to_bytes(2, "big") + pkt.dport.to_bytes(2, "big")
        flags = pkt.tcp_flags
        streams = self._streams
        stream = streams.get(key)
        if flags & TCP_SYN:
            stream = _Stream((pkt.seq + 1) & M32, pkt.ts)
            self._add(key, stream)
            return NOTHING
        if stream is None:
            if not payload:
                return NOTHING
            stream = _Stream(pkt.seq, pkt.ts)
            self._add(key, stream)
        stream.ts = pkt.ts
        found: list[Detection] = []
        if payload:
            self._absorb(stream, pkt.seq, payload)
            buf = stream.buf
            while len(buf) >= 2:
                size = (buf[0] << 8) | buf[1]
                if len(buf) < 2 + size:
                    break
                msg = buf[2 : 2 + size]
                buf = buf[2 + size :]
                found.extend(self._message(pkt, msg))
            stream.buf = buf
        if flags & (TCP_FIN | TCP_RST):
            streams.pop(key, None)
        return found or NOTHING

    def _absorb(self, stream: _Stream, seq: int, data: bytes) -> None:
        delta = (seq - stream.next_seq) & M32
        if delta >= 0x80000000:  # starts before what we have: keep only the new part
            skip = (stream.next_seq - seq) & M32
            if skip >= len(data):
                return
            data = data[skip:]
            delta = 0
        if delta:
            if len(stream.pending) < 64:
                stream.pending[seq] = data
            return
        stream.buf += data
        stream.next_seq = (stream.next_seq + len(data)) & M32
        while stream.pending:
            nxt = stream.pending.pop(stream.next_seq, None)
            if nxt is None:
                # Drop segments now entirely behind us, keep the others waiting.
                for s in [s for s in stream.pending if (s - stream.next_seq) & M32 >= 0x80000000]:
                    old = stream.pending.pop(s)
                    skip = (stream.next_seq - s) & M32
                    if skip < len(old):
                        stream.pending[stream.next_seq] = old[skip:]
                if stream.next_seq not in stream.pending:
                    break
                continue
            stream.buf += nxt
            stream.next_seq = (stream.next_seq + len(nxt)) & M32
        if len(stream.buf) > MAX_TCP_MESSAGE * 2:
            stream.buf = b""  # garbage on port 53: resynchronise on the next segment

    def _add(self, key: bytes, stream: _Stream) -> None:
        streams = self._streams
        if key not in streams and len(streams) >= self.config.max_tcp_streams:
            oldest = min(streams, key=lambda k: streams[k].ts)
            del streams[oldest]
        streams[key] = stream


def targets(detection: Detection, aim: Aim) -> list[Target]:
    """Each address of the answer: its host route, or a rule towards it (``aim.both``:
    and one from it)."""
    evidence = detection.evidence
    if not isinstance(evidence, DnsEvidence):
        return []
    out: list[Target] = []
    for address in dict.fromkeys(evidence.addresses):
        reason = (
            f"dns: {evidence.qname} -> {address} "
            f"(blocklisted {evidence.blocked}, client {evidence.client})"
        )
        if aim.route:
            out.append(Target(address, reason))
            continue
        family, prefix = family_of(address), host_prefix(address)
        out.append(Target(FlowMatch(family, destination=prefix), reason))
        if aim.both:
            out.append(Target(FlowMatch(family, source=prefix), reason + " (from the address)"))
    return out


SPEC = DetectorSpec(
    name=NAME,
    read=read_dataclass(DnsConfig),
    build=DnsDetector,
    trigger=TriggerDefaults(
        action="route",  # a /32 or /128 per answer, next-hop self (the talk's DNS demo)
        ttl=3600.0,
        flow_actions=FlowActions(redirect=RouteTarget.parse("6:302")),
        both_with=frozenset({"flowspec"}),
    ),
    targets=targets,
)
