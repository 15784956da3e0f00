"""A model packet, nft's evaluation of the JSON match expressions trafex emits, and
FlowSpec's own semantics (RFC 8955/8956) on the same packet, written independently.

The nft side models what the kernel does and the integration tests confirm: a field
that cannot be loaded (the transport header of a fragment other than the first, a
fragment header that is missing) makes the expression, and so the nft rule, not match,
whatever the operator. Tests compare the two sides on many packets.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from trafex.model.components import (
    FRAGMENT_DONT,
    FRAGMENT_FIRST,
    FRAGMENT_IS,
    FRAGMENT_LAST,
    Family,
)
from trafex.model.flowspec import FlowMatch, FlowPrefix, evaluate
from trafex.model.protocols import PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP

Expr = dict[str, Any]


@dataclass(frozen=True)
class Packet:
    """What the rules can look at. ``transport`` is None for a fragment other than the
    first (its transport header is elsewhere); ``frag6`` is None without an IPv6
    fragment header, else (offset in 8-octet units, more-fragments)."""

    family: Family
    saddr: int
    daddr: int
    l4proto: int
    transport: bytes | None
    length: int  # total IP length, header included
    dscp: int = 0
    flowlabel: int = 0
    frag_off: int = 0  # IPv4: the 16-bit flags + fragment offset field
    frag6: tuple[int, int] | None = None
    iifname: str = "eth0"

    def ipv6_header(self) -> bytes:
        first = 6 << 28 | self.dscp << 22 | self.flowlabel
        return (
            first.to_bytes(4, "big")
            + (self.length - 40).to_bytes(2, "big")
            + bytes([self.l4proto, 64])
            + self.saddr.to_bytes(16, "big")
            + self.daddr.to_bytes(16, "big")
        )


def _bits(data: bytes, offset: int, length: int) -> int:
    value = int.from_bytes(data, "big")
    return value >> (len(data) * 8 - offset - length) & ((1 << length) - 1)


def load(expr: Any, pkt: Packet) -> Any:
    """The value nft loads for ``expr``, or None when the load fails."""
    if "&" in expr:
        left, mask = expr["&"]
        value = load(left, pkt)
        return None if value is None else value & mask
    if "meta" in expr:
        key = expr["meta"]["key"]
        if key == "nfproto":
            return pkt.family.value
        return {"l4proto": pkt.l4proto, "iifname": pkt.iifname}[key]
    if "exthdr" in expr:
        return _load_exthdr(expr["exthdr"], pkt)
    return _load_payload(expr["payload"], pkt)


def _load_exthdr(header: Any, pkt: Packet) -> Any:
    """IPv6's fragment header: present or not, or one of its fields."""
    assert header["name"] == "frag"
    if pkt.family is not Family.IPV6:
        return None
    if "field" not in header:
        return pkt.frag6 is not None
    if pkt.frag6 is None:
        return None
    return {"frag-off": pkt.frag6[0], "more-fragments": pkt.frag6[1]}[header["field"]]


def _load_payload(spec: Any, pkt: Packet) -> Any:
    """A header field by name, or raw bits of the network or transport header."""
    if "base" in spec:
        if spec["base"] == "th":
            data = pkt.transport
        else:
            data = pkt.ipv6_header() if pkt.family is Family.IPV6 else None
        return None if data is None else _bits(data, spec["offset"], spec["len"])
    protocol, field = spec["protocol"], spec["field"]
    if protocol in ("ip", "ip6"):
        if (protocol == "ip") != (pkt.family is Family.IPV4):
            return None
        return {
            "saddr": pkt.saddr,
            "daddr": pkt.daddr,
            "length": pkt.length - (40 if protocol == "ip6" else 0),
            "dscp": pkt.dscp,
            "flowlabel": pkt.flowlabel,
            "frag-off": pkt.frag_off,
        }[field]
    if pkt.transport is None:
        return None
    header = pkt.transport
    return {
        ("th", "sport"): int.from_bytes(header[0:2], "big"),
        ("th", "dport"): int.from_bytes(header[2:4], "big"),
        ("icmp", "type"): header[0],
        ("icmp", "code"): header[1],
        ("icmpv6", "type"): header[0],
        ("icmpv6", "code"): header[1],
        ("tcp", "flags"): header[13],
    }[(protocol, field)]


def _contains(right: Any, value: Any) -> bool:
    if isinstance(right, dict) and "set" in right:
        return any(_contains(element, value) for element in right["set"])
    if isinstance(right, dict) and "range" in right:
        lo, hi = right["range"]
        return bool(lo <= value <= hi)
    if isinstance(right, dict) and "prefix" in right:
        prefix = right["prefix"]
        network = ipaddress.ip_network(f"{prefix['addr']}/{prefix['len']}")
        return bool(int(network.network_address) == value & int(network.netmask))
    if isinstance(right, str) and right.startswith("0x"):
        return bool(int(right, 16) == value)
    if isinstance(right, str) and (":" in right or right.count(".") == 3):
        return bool(int(ipaddress.ip_address(right)) == value)
    return bool(right == value)


def holds(expr: Expr, pkt: Packet) -> bool:
    """One ``match`` expression on the packet."""
    spec = expr["match"]
    value = load(spec["left"], pkt)
    if value is None:
        return False
    op, right = spec["op"], spec["right"]
    if op == "==":
        return _contains(right, value)
    if op == "!=":
        return not _contains(right, value)
    return bool(
        {
            "<": value < right,
            "<=": value <= right,
            ">": value > right,
            ">=": value >= right,
        }[op]
    )


def dnf_holds(branches: Sequence[Sequence[Expr]], pkt: Packet) -> bool:
    return any(all(holds(expr, pkt) for expr in branch) for branch in branches)


# ---------------------------------------------------------------------------------------
# FlowSpec semantics, from the RFCs


def _prefix_holds(prefix: FlowPrefix, address: int) -> bool:
    network = prefix.network
    bits = network.max_prefixlen
    width = network.prefixlen - prefix.offset
    if width <= 0:
        return True
    shift = bits - network.prefixlen
    mask = (1 << width) - 1
    return address >> shift & mask == int(network.network_address) >> shift & mask


def fragment_bits(pkt: Packet) -> int:
    """RFC 8955 §4.2.2.12 / RFC 8956 §3.6 bits of the packet."""
    if pkt.family is Family.IPV4:
        dont, more, offset = pkt.frag_off & 0x4000, pkt.frag_off & 0x2000, pkt.frag_off & 0x1FFF
    else:
        dont = 0
        offset, more = pkt.frag6 if pkt.frag6 is not None else (0, 0)
    bits = FRAGMENT_DONT if dont else 0
    if offset:
        bits |= FRAGMENT_IS
    if not offset and more:
        bits |= FRAGMENT_FIRST
    if offset and not more:
        bits |= FRAGMENT_LAST
    return bits


def flowspec_holds(match: FlowMatch, pkt: Packet) -> bool:
    """Whether the FlowSpec match matches the packet, as the RFCs define it."""
    if match.family is not pkt.family:
        return False
    for prefix, address in ((match.destination, pkt.daddr), (match.source, pkt.saddr)):
        if prefix is not None and not _prefix_holds(prefix, address):
            return False
    if match.protocol and not evaluate(match.protocol, pkt.l4proto):
        return False
    if not _transport_holds(match, pkt):
        return False
    checks = (
        (match.packet_length, pkt.length),
        (match.dscp, pkt.dscp),
        (match.flow_label, pkt.flowlabel),
        (match.fragment, fragment_bits(pkt)),
    )
    return all(not terms or evaluate(terms, value) for terms, value in checks)


def _transport_holds(match: FlowMatch, pkt: Packet) -> bool:
    """The port, ICMP and TCP-flag components: each matches only packets of its
    protocols (RFC 8955 §4.2.2.4-9) that carry the transport header."""
    header = pkt.transport
    sport = dport = 0
    if header is not None:
        sport, dport = int.from_bytes(header[0:2], "big"), int.from_bytes(header[2:4], "big")
    icmp = PROTO_ICMP if pkt.family is Family.IPV4 else PROTO_ICMPV6
    flags = (header[12] & 0x0F) << 8 | header[13] if header is not None else 0  # offset as 0
    components = (
        (match.port, (PROTO_TCP, PROTO_UDP), sport, dport),
        (match.destination_port, (PROTO_TCP, PROTO_UDP), dport, None),
        (match.source_port, (PROTO_TCP, PROTO_UDP), sport, None),
        (match.icmp_type, (icmp,), header[0] if header else 0, None),
        (match.icmp_code, (icmp,), header[1] if header else 0, None),
        (match.tcp_flags, (PROTO_TCP,), flags, None),
    )
    for terms, protocols, value, other in components:
        if not terms:
            continue
        if pkt.l4proto not in protocols or header is None:
            return False
        if not (evaluate(terms, value) or (other is not None and evaluate(terms, other))):
            return False
    return True


# ---------------------------------------------------------------------------------------
# A whole transaction, run on one packet


@dataclass
class Outcome:
    """What the enforcer's table did to a packet: the counters that counted it (in
    order), the log prefixes, the rewrites, and the verdict of the table's base chain
    (None: the base chain ran to its end, policy accept)."""

    counted: list[str]
    logged: list[str]
    dscp: int | None = None
    mark: int | None = None
    verdict: str | None = None


def run(document: dict[str, Any], pkt: Packet, *, over_limit: bool = False) -> Outcome:
    """Evaluate the rules a transaction adds, as nft does: ``jump`` returns to the
    next rule, ``goto`` returns to the chain that jumped, ``accept``/``drop`` end it
    all. ``over_limit``: whether the packet exceeds every rate limit."""
    chains: dict[str, list[list[Expr]]] = {}
    for command in document["nftables"]:
        added = command.get("add", {})
        if "rule" in added:
            chains.setdefault(added["rule"]["chain"], []).append(added["rule"]["expr"])
    outcome = Outcome([], [])

    def chain(name: str) -> str | None:
        for rule in chains.get(name, []):
            ends, verdict = apply(rule)
            if ends:
                return verdict
        return None

    def apply(rule: list[Expr]) -> tuple[bool, str | None]:
        """Run one rule: (whether its chain ends here, the verdict)."""
        for expr in rule:
            (kind,) = expr  # each expression is {kind: arguments}
            if (kind == "match" and not holds(expr, pkt)) or (kind == "limit" and not over_limit):
                return False, None  # the next rule
            if kind in ("counter", "log", "mangle"):
                _record(expr, outcome)
            elif kind == "jump":
                verdict = chain(expr["jump"]["target"])
                if verdict is not None:
                    return True, verdict
            elif kind == "goto":
                return True, chain(expr["goto"]["target"])
            elif kind == "return":
                return True, None
            elif kind not in ("match", "limit"):
                return True, str(kind)  # accept, drop
        return False, None

    outcome.verdict = chain("prerouting")
    return outcome


def _record(expr: Expr, outcome: Outcome) -> None:
    """What a counter, log or mangle expression leaves on the outcome."""
    if "counter" in expr:
        outcome.counted.append(expr["counter"])
    elif "log" in expr:
        outcome.logged.append(expr["log"]["prefix"])
    elif "meta" in expr["mangle"]["key"]:
        outcome.mark = expr["mangle"]["value"]
    else:
        outcome.dscp = expr["mangle"]["value"]
