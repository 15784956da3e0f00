"""Hypothesis strategy: packets aimed at a FlowSpec match.

Uniformly random packets almost never match a rule, which would make a comparison of
two matchers vacuous. These packets take their addresses from the rule's prefixes and
their field values from the rule's own operands (and their neighbours, the edges of
every range), so that they land on both sides of every boundary.
"""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import strategies as st

from trafex.model.flowspec import BitmaskTerm, Family, FlowMatch, FlowPrefix, NumericTerm

from .nftmodel import Packet


def _near(draw: st.DrawFn, terms: Sequence[NumericTerm], lo: int, hi: int) -> int:
    edges = sorted({v for t in terms for v in (t.value - 1, t.value, t.value + 1) if lo <= v <= hi})
    use_edge = bool(edges) and draw(st.integers(0, 3)) > 0
    if use_edge:
        return draw(st.sampled_from(edges))
    return draw(st.integers(lo, hi))


def _address(draw: st.DrawFn, prefix: FlowPrefix | None, bits: int) -> int:
    address = draw(st.integers(0, (1 << bits) - 1))
    if prefix is None or not draw(st.integers(0, 3)):
        return address
    network = prefix.network
    width = network.prefixlen - prefix.offset
    shift = bits - network.prefixlen
    mask = ((1 << width) - 1) << shift
    return address & ~mask | int(network.network_address) & mask


def _flags(draw: st.DrawFn, terms: Sequence[BitmaskTerm]) -> int:
    noise = draw(st.integers(0, 0xFFFF))
    if not terms or not draw(st.integers(0, 3)):
        return noise
    chosen = draw(st.lists(st.sampled_from([t.value for t in terms]), max_size=3))
    flags = 0
    for value in chosen:
        flags |= value
    return flags | noise & draw(st.sampled_from((0, 0xF000, 0xFFFF)))


@st.composite
def packets(draw: st.DrawFn, match: FlowMatch) -> Packet:
    """A packet of the match's family (sometimes of the other one)."""
    family = match.family
    if not draw(st.integers(0, 15)):
        family = Family.IPV6 if family is Family.IPV4 else Family.IPV4
    v4 = family is Family.IPV4
    l4proto = draw(
        st.sampled_from((6, 17, 1, 58, *(t.value for t in match.protocol if t.value <= 0xFF)))
        | st.integers(0, 0xFF)
    )
    offset = draw(st.sampled_from((0, 0, 0, 1, 0x1FFF)))
    more = draw(st.integers(0, 1))
    frag_off, frag6 = 0, None
    if v4:
        frag_off = draw(st.integers(0, 1)) << 14 | more << 13 | offset
    elif draw(st.integers(0, 2)):
        frag6 = (offset, more) if draw(st.booleans()) else None
        if frag6 is None:
            offset = 0
    else:
        offset = 0
    transport: bytes | None = None
    if not offset:
        header = bytearray(draw(st.binary(min_size=20, max_size=20)))
        if l4proto in (6, 17):
            header[0:2] = _near(draw, match.source_port + match.port, 0, 0xFFFF).to_bytes(2, "big")
            dport = _near(draw, match.destination_port + match.port, 0, 0xFFFF)
            header[2:4] = dport.to_bytes(2, "big")
        if l4proto in (1, 58):
            header[0] = _near(draw, match.icmp_type, 0, 0xFF)
            header[1] = _near(draw, match.icmp_code, 0, 0xFF)
        if l4proto == 6:
            header[12:14] = _flags(draw, match.tcp_flags).to_bytes(2, "big")
        transport = bytes(header)
    base = 0 if v4 else 40
    bits = 32 if v4 else 128
    return Packet(
        family=family,
        saddr=_address(draw, match.source if family is match.family else None, bits),
        daddr=_address(draw, match.destination if family is match.family else None, bits),
        l4proto=l4proto,
        transport=transport,
        length=_near(draw, match.packet_length, base, base + 0xFFFF),
        dscp=_near(draw, match.dscp, 0, 0x3F),
        flowlabel=0 if v4 else _near(draw, match.flow_label, 0, 0xFFFFF),
        frag_off=frag_off,
        frag6=frag6,
    )
