"""RFC 8955 §5.1 (and RFC 8956 §4) precedence between FlowSpec rules."""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trafex.model.flowspec import Family, FlowMatch
from trafex.model.grammar import parse_match, parse_rule, render_match
from trafex.model.nlri import decode_nlri
from trafex.model.order import _compare_bytes, compare, ordered, split_components


def first(a: str, b: str) -> str:
    """The text of whichever of the two matches applies first."""
    ma, mb = parse_match(a), parse_match(b)
    assert compare(ma, mb) == -compare(mb, ma)
    return a if compare(ma, mb) < 0 else b


@pytest.mark.parametrize(
    ("winner", "loser"),
    [
        # a component type only one rule has: that rule first
        ("destination 10.0.0.0/8", "ipv4 protocol =6"),
        ("destination 10.0.0.0/8 protocol =6", "destination 10.0.0.0/8"),
        ("ipv4 protocol =1 icmp-type =8", "ipv4 protocol =1 packet-length <100"),
        ("source 10.0.0.0/8", "ipv4 destination-port =80"),
        # prefixes: the more specific one first when one contains the other
        ("destination 10.1.0.0/16", "destination 10.0.0.0/8"),
        ("destination 10.0.0.1/32", "destination 10.0.0.0/31"),
        # otherwise the lower IP value first, whatever the lengths
        ("destination 9.0.0.0/8", "destination 10.1.0.0/16"),
        ("destination 10.0.0.0/16", "destination 10.1.0.0/32"),
        ("source 2001:db8::/32", "source 2001:db9::/48"),
        # equal prefixes: the next component decides
        ("destination 10.0.0.0/8 source 1.0.0.0/8", "destination 10.0.0.0/8 source 2.0.0.0/8"),
        # IPv6 offsets: the lower offset first (it matches more significant bits)
        ("destination ::1:0:0:0/80/32", "destination ::1:0:0/96/64"),
        ("destination ::ff00:0:0:0/72/8", "destination ::1:0:0:0/80/64"),
        # other components: their bytes, lowest first (memcmp)
        ("ipv4 destination-port =80", "ipv4 destination-port =443"),
        ("ipv4 destination-port [ =80 =443 ]", "ipv4 destination-port =80"),
        ("ipv4 protocol =6", "ipv4 protocol =17"),
        ("ipv4 destination-port =80", "ipv4 destination-port >=80"),
    ],
)
def test_precedence(winner: str, loser: str) -> None:
    """The §5.1 examples: type order, longest then lowest prefix, offsets, memcmp."""
    assert first(winner, loser) == winner
    assert first(loser, winner) == winner


def test_longer_component_first_when_one_is_a_prefix_of_the_other() -> None:
    """Byte strings of different lengths: the common part first, then the longer one."""
    assert _compare_bytes(b"\x01\x50", b"\x01\x50\x81\x51") > 0
    assert _compare_bytes(b"\x01\x50\x81\x51", b"\x01\x50") < 0
    assert _compare_bytes(b"\x01\x51", b"\x01\x50\x81\x51") > 0
    assert _compare_bytes(b"\x81\x50", b"\x81\x50") == 0


def test_ipv4_before_ipv6() -> None:
    """The RFCs order rules within a family; a mixed list puts IPv4 first."""
    v6, v4 = parse_match("destination ::/0"), parse_match("ipv4 dscp =1")
    assert ordered([v6, v4]) == [v4, v6]


def test_split_components_keeps_the_bytes_received() -> None:
    """A decoded rule's components are the bytes it arrived with (2-byte value here)."""
    match = decode_nlri(Family.IPV4, bytes.fromhex("0118c000020391000605910050"))
    assert split_components(match) == {
        1: bytes.fromhex("18c00002"),
        3: bytes.fromhex("910006"),
        5: bytes.fromhex("910050"),
    }
    v6 = parse_match("destination 2001:db8::/64/8 source ::1/128")
    assert split_components(v6) == {
        1: bytes.fromhex("4008010db800000000"),
        2: bytes.fromhex("8000" + "00" * 15 + "01"),
    }


def test_equal_precedence_is_ordered_by_nlri() -> None:
    """Two encodings of one prefix (padding bits set) rank equal; their order is still
    the same whatever the input order."""
    a = decode_nlri(Family.IPV6, bytes.fromhex("01040020"))
    b = decode_nlri(Family.IPV6, bytes.fromhex("01040021"))
    assert compare(a, b) == 0
    assert ordered([a, b]) == ordered([b, a]) == [a, b]


def test_ordered_sorts_rules() -> None:
    """``ordered`` takes FlowRules as well as FlowMatches."""
    rules = [parse_rule(t) for t in ("ipv4 dscp =1 discard", "destination 10.0.0.0/8 discard")]
    assert [render_match(r.match) for r in ordered(rules)] == [
        "destination 10.0.0.0/8",
        "ipv4 dscp =1",
    ]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.from_type(FlowMatch), min_size=3, max_size=3))
def test_compare_is_a_total_preorder(matches: list[FlowMatch]) -> None:
    """Antisymmetric and transitive, so sorting is well defined."""
    for a, b in itertools.permutations(matches, 2):
        assert (compare(a, b) > 0) - (compare(a, b) < 0) == -(
            (compare(b, a) > 0) - (compare(b, a) < 0)
        )
    for a, b, c in itertools.permutations(matches, 3):
        if compare(a, b) <= 0 and compare(b, c) <= 0:
            assert compare(a, c) <= 0


@settings(max_examples=100, deadline=None)
@given(st.lists(st.from_type(FlowMatch), max_size=6), st.randoms())
def test_order_does_not_depend_on_arrival(matches: list[FlowMatch], rnd: random.Random) -> None:
    """§5.1: "it does not depend on the arrival order"."""
    shuffled = list(matches)
    rnd.shuffle(shuffled)
    assert ordered(shuffled) == ordered(matches)
