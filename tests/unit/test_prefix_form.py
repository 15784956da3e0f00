"""Unit tests for trafex.bgp.prefix_form: IPv6 offset prefixes, RFC 8956 ⇄ GoBGP."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trafex.bgp.attributes import DecodeError
from trafex.bgp.prefix_form import from_gobgp, to_gobgp
from trafex.model.flowspec import Family, FlowMatch
from trafex.model.grammar import parse_match

# destination 2001:db8::/64 offset 8, then source 3001::/32 (no offset) and protocol 58.
RFC = bytes.fromhex("01400801 0db8000000 000220003001000003813a".replace(" ", ""))
GOBGP = bytes.fromhex("0140080001 0db8000000 000220003001000003813a".replace(" ", ""))


def test_known_vector() -> None:
    """RFC 8956 sends the 56 pattern bits after the offset; GoBGP 3.10 and FRR 8.4 send
    the whole /64 (8 octets, the first 8 bits zero). Seen on a real gobgpd."""
    match = parse_match("destination 2001:db8::/64/8 source 3001::/32 protocol =58")
    assert match.encode() == RFC
    assert to_gobgp(Family.IPV6, RFC) == GOBGP
    assert from_gobgp(Family.IPV6, GOBGP) == RFC


@settings(max_examples=500)
@given(st.from_type(FlowMatch))
def test_round_trip(match: FlowMatch) -> None:
    """Any match survives the trip to GoBGP's form and back; without an IPv6 offset
    the two forms are the same bytes."""
    body = match.encode()
    gobgp = to_gobgp(match.family, body)
    assert body == from_gobgp(match.family, gobgp)
    offsets = [p.offset for p in (match.destination, match.source) if p is not None]
    if not any(offsets):
        assert body == gobgp


def test_ipv4_is_never_converted() -> None:
    body = bytes.fromhex("0118c00002")
    assert body == to_gobgp(Family.IPV4, body) == from_gobgp(Family.IPV4, body)


@pytest.mark.parametrize("body", ["014008", "0140080001", "01810801"])
def test_truncated_or_impossible_prefixes(body: str) -> None:
    with pytest.raises(DecodeError):
        from_gobgp(Family.IPV6, bytes.fromhex(body))
