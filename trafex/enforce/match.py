"""A FlowSpec match as nftables match expressions, in disjunctive normal form.

Each component becomes a small DNF (:mod:`trafex.enforce.dnf`); the rule is the AND
of its components (the cartesian product of their branches). Every component is
compiled exactly, never widened:

* Numeric components: the exact set of values they accept (:mod:`trafex.enforce.dnf`).
* Type 4 (port) matches source OR destination port (RFC 8955 §4.2.2.4): two branches.
* The components that only TCP/UDP (ports), ICMP (icmp-type/code) or TCP (tcp-flags)
  packets can match (RFC 8955 §4.2.2.4-9) narrow the protocol: one ``meta l4proto``
  test carries the protocol component intersected with those protocols (empty: the
  rule can match nothing). IPv6's upper-layer protocol (RFC 8956 §3.3) is what
  ``meta l4proto`` holds: the first header after the ones the kernel skips (hop-by-hop,
  routing, fragment, destination options, AH; ESP is reported as 50), and for a
  fragment other than the first, the fragment header's next header.
* The same components "never match" a fragment other than the first (§4.2.2.4-9):
  nft's transport-header loads fail on those, so every transport test excludes them,
  and a component whose terms accept every value still loads its field (a full range).
* Packet length (RFC 8955 §4.2.2.10) is the total IP length including the IP header;
  RFC 8956 §3 keeps type 10 as defined there for IPv6, whose length field is the
  payload only: IPv6 values are compared as ``ip6 length`` + 40.
* tcp-flags terms keep their bitmask semantics (RFC 8955 §4.2.1.2): match bit = all
  bits, else any bit, not bit negates. Values above 0xFF (§4.2.2.9: octets 13-14 of the
  TCP header, data offset read as 0) are tested on ``@th,96,16``; nft's ``tcp flags``
  is one octet.
* Fragment (RFC 8955 §4.2.2.12, RFC 8956 §3.6) is evaluated on every fragment state a
  packet can be in (IPv4: DF, MF, offset zero or not; IPv6: no fragment header, or MF
  and offset of one), and the accepted states are written as fragment-header tests.
  ``exthdr frag missing`` is a branch of its own when a non-fragment is accepted (a
  negated term must still match packets without a fragment header).
* IPv6 prefixes with an offset (RFC 8956 §3.1) compare bits [offset, length) of the
  address as a raw network-header payload (``@nh,64+offset,…`` for the source,
  ``@nh,192+offset,…`` for the destination).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Collection, Sequence
from typing import Any

from trafex.enforce.dnf import (
    FALSE,
    TRUE,
    Branch,
    Dnf,
    Expr,
    Intervals,
    accepted_values,
    cond,
    conjunction,
    disjunction,
    exthdr,
    intersect,
    masked,
    meta,
    payload,
    raw,
    values_dnf,
)
from trafex.model.components import (
    COMPONENT,
    FRAGMENT_DONT,
    FRAGMENT_FIRST,
    FRAGMENT_IS,
    FRAGMENT_LAST,
    Family,
)
from trafex.model.flowspec import BitmaskTerm, FlowMatch, FlowPrefix, evaluate
from trafex.model.protocols import PROTO_TCP, PROTO_UDP, icmp_protocol

IPV6_HEADER = 40
TCP_FLAGS_DATA_OFFSET = 0xF000  # §4.2.2.9: the data offset nibble is read as 0


# ---------------------------------------------------------------------------------------
# Bitmask components


def _cover(accepted: Collection[tuple[int, ...]], width: int) -> list[tuple[int | None, ...]]:
    """Few cubes (tuples of 0, 1 or None = either) whose union is exactly ``accepted``."""
    cubes = [
        cube
        for cube in itertools.product((None, 0, 1), repeat=width)
        if all(state in accepted for state in _states(cube))
    ]
    cubes.sort(key=lambda cube: (-cube.count(None), [(-1 if v is None else v) for v in cube]))
    chosen: list[tuple[int | None, ...]] = []
    left = set(accepted)
    while left:
        best = max(cubes, key=lambda cube: len(left & set(_states(cube))))
        chosen.append(best)
        left -= set(_states(best))
    return chosen


def _states(cube: tuple[int | None, ...]) -> list[tuple[int, ...]]:
    return list(itertools.product(*(((0, 1) if v is None else (v,)) for v in cube)))


def _fragment_bits(mf: int, off: int) -> int:
    """RFC 8955 §4.2.2.12 (RFC 8956 §3.6 for IPv6, same bits, no DF)."""
    bits = FRAGMENT_IS if off else 0
    if mf and not off:
        bits |= FRAGMENT_FIRST
    if off and not mf:
        bits |= FRAGMENT_LAST
    return bits


def fragment_dnf(family: Family, terms: Sequence[BitmaskTerm]) -> Dnf:
    """The fragment states the terms accept, as ``ip frag-off`` / ``frag`` header tests."""
    if family is Family.IPV4:
        accepted = {
            (df, mf, off)
            for df, mf, off in itertools.product((0, 1), repeat=3)
            if evaluate(terms, (FRAGMENT_DONT if df else 0) | _fragment_bits(mf, off))
        }
        if len(accepted) == 8:
            return TRUE
        return [_ipv4_fragment(cube) for cube in _cover(accepted, 3)]
    header = {
        (mf, off)
        for mf, off in itertools.product((0, 1), repeat=2)
        if evaluate(terms, _fragment_bits(mf, off))
    }
    missing = evaluate(terms, 0)
    if missing and len(header) == 4:
        return TRUE
    out: Dnf = [(cond("==", exthdr("frag"), False),)] if missing else []
    for mf, off in _cover(header, 2):
        atoms = []
        if mf is None and off is None:  # (unreachable: (0, 0) has the bits of "missing")
            atoms.append(cond("==", exthdr("frag"), True))
        if mf is not None:
            atoms.append(cond("==", exthdr("frag", "more-fragments"), mf))
        if off is not None:
            atoms.append(cond("!=" if off else "==", exthdr("frag", "frag-off"), 0))
        out.append(tuple(atoms))
    return out


def _ipv4_fragment(cube: tuple[int | None, ...]) -> Branch:
    df, mf, off = cube
    mask = (0x4000 if df is not None else 0) | (0x2000 if mf is not None else 0)
    value = (0x4000 if df else 0) | (0x2000 if mf else 0)
    frag_off = payload("ip", "frag-off")
    if off == 0:  # offset zero joins the flags in one test
        return (cond("==", masked(frag_off, mask | 0x1FFF), value),)
    atoms = [cond("==", masked(frag_off, mask), value)] if mask else []
    if off:
        atoms.append(cond("!=", masked(frag_off, 0x1FFF), 0))
    return tuple(atoms)


def _constant(term: BitmaskTerm) -> bool | None:
    """The term's value when it does not depend on the packet, else None."""
    if term.match and term.value & TCP_FLAGS_DATA_OFFSET:
        return term.not_  # all of its bits, one of which always reads 0
    if not term.value & ~TCP_FLAGS_DATA_OFFSET:
        return term.match != term.not_  # all of no bits: true; any of no bits: false
    return None


def tcp_flags_dnf(terms: Sequence[BitmaskTerm]) -> Dnf:
    """One branch per satisfiable AND-chain; each chain's "all set" and "all clear"
    terms become one masked test (``tcp flags & (syn|ack) == syn``)."""
    chains: list[list[BitmaskTerm]] = []
    for term in terms:
        if term.and_ and chains:
            chains[-1].append(term)
        else:
            chains.append([term])
    relevant = 0
    for term in terms:
        relevant |= term.value & ~TCP_FLAGS_DATA_OFFSET
    bits = [b for b in range(12) if relevant >> b & 1]
    samples = [
        sum(1 << b for b, on in zip(bits, combo, strict=True) if on)
        for combo in itertools.product((0, 1), repeat=len(bits))
    ]
    live = [c for c in chains if any(all(_chain_holds(c, s)) for s in samples)]
    if not live:
        return FALSE
    if all(any(all(_chain_holds(c, s)) for c in live) for s in samples):
        return [(cond("==", payload("tcp", "flags"), {"range": [0, 0xFF]}),)]
    return [_flags_branch(chain) for chain in live]


def _chain_holds(chain: Sequence[BitmaskTerm], bits: int) -> list[bool]:
    out = []
    for term in chain:
        constant = _constant(term)
        out.append(term.matches(bits) if constant is None else constant)
    return out


def _flags_branch(chain: Sequence[BitmaskTerm]) -> Branch:
    must_set = must_clear = 0
    rest: list[tuple[str, int, int]] = []  # (op, mask, value) of "any set" / "not all set"
    for term in chain:
        if _constant(term) is not None:
            continue  # constant true here (the chain is satisfiable)
        value = term.value & ~TCP_FLAGS_DATA_OFFSET
        single = value & (value - 1) == 0
        if term.not_ and (single or not term.match):
            must_clear |= value  # none of the bits (or not the one bit)
        elif not term.not_ and (single or term.match):
            must_set |= value  # all of the bits (or the one bit)
        elif term.not_:
            rest.append(("!=", value, value))  # not all of the bits
        else:
            rest.append(("!=", value, 0))  # any of the bits
    atoms = []
    if must_set | must_clear:
        atoms.append(
            cond("==", masked(_flags_field(must_set | must_clear), must_set | must_clear), must_set)
        )
    atoms.extend(cond(op, masked(_flags_field(mask), mask), value) for op, mask, value in rest)
    return tuple(atoms)


def _flags_field(mask: int) -> Expr:
    return payload("tcp", "flags") if mask <= 0xFF else raw("th", 96, 16)


# ---------------------------------------------------------------------------------------
# Prefixes


def prefix_dnf(family: Family, name: str, prefix: FlowPrefix) -> Dnf:
    """``ip saddr 10.0.0.0/8``; IPv6 with an offset: the raw bits [offset, length)."""
    network = prefix.network
    if network.prefixlen == 0:
        return TRUE
    field = "saddr" if name == "source" else "daddr"
    if not prefix.offset:
        address = str(network.network_address)
        right: Any = address
        if network.prefixlen != network.max_prefixlen:
            right = {"prefix": {"addr": address, "len": network.prefixlen}}
        return [(cond("==", payload(family_name(family), field), right),)]
    base = 64 if field == "saddr" else 192  # bit offset of the address in the IPv6 header
    width = network.prefixlen - prefix.offset
    pattern = int(network.network_address) >> (128 - network.prefixlen) & ((1 << width) - 1)
    value: int | str = pattern if width <= 32 else f"0x{pattern:0{math.ceil(width / 4)}x}"
    return [(cond("==", raw("nh", base + prefix.offset, width), value),)]


def family_name(family: Family) -> str:
    return "ip" if family is Family.IPV4 else "ip6"


# ---------------------------------------------------------------------------------------
# A whole match


def components(match: FlowMatch) -> list[tuple[str, Dnf]]:
    """Each present component's DNF, with the family and protocol tests first (nft needs
    the protocol context before transport-header fields), by keyword."""
    ip = family_name(match.family)
    parts: list[tuple[str, Dnf]] = [
        ("family", [(cond("==", meta("nfproto"), "ipv4" if ip == "ip" else "ipv6"),)])
    ]
    protocol = _protocol_dnf(match)
    if protocol is not None:
        parts.append(("protocol", protocol))
    return parts + _network_parts(match, ip) + _transport_parts(match)


def _protocol_dnf(match: FlowMatch) -> Dnf | None:
    """The ``meta l4proto`` test: the protocol component, narrowed to the protocols that
    the port, ICMP and TCP-flag components can match; None when any protocol will do."""
    protocols: Intervals = ((0, 0xFF),)
    ports = bool(match.port or match.destination_port or match.source_port)
    icmp = icmp_protocol(match.family.version)
    for needed, allowed in (
        (ports, ((PROTO_TCP, PROTO_TCP), (PROTO_UDP, PROTO_UDP))),
        (bool(match.icmp_type or match.icmp_code), ((icmp, icmp),)),
        (bool(match.tcp_flags), ((PROTO_TCP, PROTO_TCP),)),
    ):
        if needed:
            protocols = intersect(protocols, allowed)
    if match.protocol:
        protocols = intersect(protocols, accepted_values(match.protocol, 0, 0xFF))
    if match.protocol or protocols != ((0, 0xFF),):
        return values_dnf(meta("l4proto"), protocols, 0, 0xFF, load=True)
    return None


def _network_parts(match: FlowMatch, ip: str) -> list[tuple[str, Dnf]]:
    """The components read from the IP header: prefixes, length, DSCP, flow label,
    fragment."""
    family = match.family
    parts: list[tuple[str, Dnf]] = []
    if match.destination is not None:
        parts.append(("destination", prefix_dnf(family, "destination", match.destination)))
    if match.source is not None:
        parts.append(("source", prefix_dnf(family, "source", match.source)))
    if match.packet_length:
        lo = IPV6_HEADER if family is Family.IPV6 else 0
        values = accepted_values(match.packet_length, lo, lo + 0xFFFF)
        dnf = values_dnf(payload(ip, "length"), values, lo, lo + 0xFFFF, shift=lo)
        parts.append(("packet-length", dnf))
    for keyword, terms, field in (
        ("dscp", match.dscp, "dscp"),
        ("flow-label", match.flow_label, "flowlabel"),
    ):
        if terms:
            top = COMPONENT[keyword].maximum
            values = accepted_values(terms, 0, top)
            parts.append((keyword, values_dnf(payload(ip, field), values, 0, top)))
    if match.fragment:
        parts.append(("fragment", fragment_dnf(family, match.fragment)))
    return parts


def _transport_parts(match: FlowMatch) -> list[tuple[str, Dnf]]:
    """The components read from the transport header: ports, ICMP type and code, TCP
    flags (the protocol test comes before them)."""
    parts: list[tuple[str, Dnf]] = []
    if match.port:
        values = accepted_values(match.port, 0, 0xFFFF)
        dnf = values_dnf(payload("th", "dport"), values, 0, 0xFFFF, load=True)
        if values != ((0, 0xFFFF),):
            dnf = disjunction(
                [values_dnf(payload("th", "sport"), values, 0, 0xFFFF, load=True), dnf]
            )
        parts.append(("port", dnf))
    icmp = "icmp" if match.family is Family.IPV4 else "icmpv6"
    for keyword, terms, header, field in (
        ("destination-port", match.destination_port, "th", "dport"),
        ("source-port", match.source_port, "th", "sport"),
        ("icmp-type", match.icmp_type, icmp, "type"),
        ("icmp-code", match.icmp_code, icmp, "code"),
    ):
        if terms:
            top = COMPONENT[keyword].maximum
            values = accepted_values(terms, 0, top)
            parts.append((keyword, values_dnf(payload(header, field), values, 0, top, load=True)))
    if match.tcp_flags:
        parts.append(("tcp-flags", tcp_flags_dnf(match.tcp_flags)))
    return parts


def branches(match: FlowMatch) -> Dnf:
    """The whole match: the AND of its components."""
    return conjunction(dnf for _, dnf in components(match))
