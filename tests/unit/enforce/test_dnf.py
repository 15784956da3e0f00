"""Numeric components become exactly the set of values their operator list accepts."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from trafex.enforce.dnf import (
    FALSE,
    TRUE,
    Dnf,
    accepted_values,
    cond,
    conjunction,
    disjunction,
    payload,
    values_dnf,
)
from trafex.model.flowspec import Family, NumericTerm, evaluate

from .nftmodel import Packet, dnf_holds

DPORT = payload("th", "dport")
OPS = ("=", "!=", "<", "<=", ">", ">=", "true", "false")


def terms(*spec: tuple[str, int] | tuple[str, int, bool]) -> tuple[NumericTerm, ...]:
    return tuple(NumericTerm.of(s[0], s[1], and_=len(s) > 2 and bool(s[2])) for s in spec)


def dport_test(values: tuple[tuple[int, int], ...]) -> Dnf:
    return values_dnf(DPORT, values, 0, 0xFFFF, load=True)


def test_equal_is_one_value() -> None:
    """``=80`` is the single value 80, written ``th dport 80``."""
    values = accepted_values(terms(("=", 80)), 0, 0xFFFF)
    assert values == ((80, 80),)
    assert dport_test(values) == [(cond("==", DPORT, 80),)]


def test_not_equal_is_one_negated_value() -> None:
    """``!=`` (lt|gt) is everything but the value: ``th dport != 80``, one branch."""
    values = accepted_values(terms(("!=", 80)), 0, 0xFFFF)
    assert values == ((0, 79), (81, 0xFFFF))
    assert dport_test(values) == [(cond("!=", DPORT, 80),)]


def test_and_chain_is_a_range() -> None:
    """``>=1024&<=2048`` is the range 1024-2048."""
    values = accepted_values(terms((">=", 1024), ("<=", 2048, True)), 0, 0xFFFF)
    assert dport_test(values) == [(cond("==", DPORT, {"range": [1024, 2048]}),)]


def test_or_of_chains_is_an_anonymous_set() -> None:
    """Chains that leave gaps are one anonymous set, not one nft rule per chain."""
    values = accepted_values(terms(("=", 22), (">=", 80), ("<=", 90, True), ("=", 443)), 0, 0xFFFF)
    expected = cond("==", DPORT, {"set": [22, {"range": [80, 90]}, 443]})
    assert dport_test(values) == [(expected,)]


def test_few_holes_are_a_negated_set() -> None:
    """Everything but two values is written as the two values, negated."""
    values = accepted_values(terms(("<", 22), (">", 22), ("<", 80, True)) + terms(("<", 80)), 0, 9)
    assert values == ((0, 9),)
    values = accepted_values(terms(("!=", 3), ("!=", 5, True)), 0, 9)
    assert values_dnf(DPORT, values, 0, 9) == [(cond("!=", DPORT, {"set": [3, 5]}),)]


def test_open_intervals_use_less_and_greater() -> None:
    """A set that reaches one end of the domain is ``<=`` or ``>=``."""
    assert dport_test(accepted_values(terms(("<", 1024)), 0, 0xFFFF)) == [
        (cond("<=", DPORT, 1023),)
    ]
    assert dport_test(accepted_values(terms((">", 1024)), 0, 0xFFFF)) == [
        (cond(">=", DPORT, 1025),)
    ]


def test_true_accepts_everything_and_false_nothing() -> None:
    """``true`` matches whatever the value; ``false`` never does, whatever the value."""
    assert accepted_values(terms(("true", 7)), 0, 0xFFFF) == ((0, 0xFFFF),)
    assert accepted_values(terms(("false", 7)), 0, 0xFFFF) == ()
    assert values_dnf(DPORT, (), 0, 0xFFFF) == FALSE


def test_full_domain_is_true_unless_the_field_must_load() -> None:
    """All values: no test for an IP field; a transport field still loads (full range)."""
    assert values_dnf(DPORT, ((0, 0xFFFF),), 0, 0xFFFF) == TRUE
    assert dport_test(((0, 0xFFFF),)) == [(cond("==", DPORT, {"range": [0, 0xFFFF]}),)]


def test_shift_moves_values_to_the_field() -> None:
    """IPv6 length: a total of 100-200 octets is a payload length of 60-160."""
    left = payload("ip6", "length")
    values = accepted_values(terms((">=", 100), ("<=", 200, True)), 40, 40 + 0xFFFF)
    expected = [(cond("==", left, {"range": [60, 160]}),)]
    assert values_dnf(left, values, 40, 40 + 0xFFFF, shift=40) == expected


def test_values_below_the_domain_are_empty() -> None:
    """An IPv6 packet is never shorter than its 40-octet header."""
    assert accepted_values(terms(("<", 40)), 40, 40 + 0xFFFF) == ()
    assert accepted_values(terms(("<=", 40)), 40, 40 + 0xFFFF) == ((40, 40),)


def test_conjunction_and_disjunction() -> None:
    """AND is the product of branches, OR their union without repeats; [] and [()] are
    false and true."""
    a, b, c = ({"a": 1},), ({"b": 2},), ({"c": 3},)
    assert conjunction([[a, b], [c]]) == [a + c, b + c]
    assert conjunction([[a], FALSE]) == FALSE
    assert conjunction([[a], TRUE]) == [a]
    assert disjunction([[a, b], [b, c]]) == [a, b, c]


@st.composite
def numeric_terms(draw: st.DrawFn, maximum: int) -> tuple[NumericTerm, ...]:
    values = st.integers(0, maximum) | st.sampled_from((0, 1, maximum - 1, maximum))
    return tuple(
        NumericTerm.of(
            draw(st.sampled_from(OPS)), draw(values), and_=index > 0 and draw(st.booleans())
        )
        for index in range(draw(st.integers(1, 5)))
    )


def _packet_with_dport(value: int) -> Packet:
    header = bytes(2) + value.to_bytes(2, "big") + bytes(16)
    return Packet(Family.IPV4, 0, 0, 6, header, 40)


@settings(max_examples=300, deadline=None)
@given(numeric_terms(0xFF))
def test_octet_values_agree_with_evaluate(spec: tuple[NumericTerm, ...]) -> None:
    """For every 8-bit value, the compiled test accepts it exactly when ``evaluate`` does."""
    compiled = dport_test(accepted_values(spec, 0, 0xFF))
    for value in range(0x100):
        assert dnf_holds(compiled, _packet_with_dport(value)) == evaluate(spec, value)


@settings(max_examples=300, deadline=None)
@given(numeric_terms(0xFFFF), st.lists(st.integers(0, 0xFFFF), min_size=20, max_size=20))
def test_port_values_agree_with_evaluate(spec: tuple[NumericTerm, ...], sample: list[int]) -> None:
    """For 16-bit values (each operand, its neighbours, random ones), the compiled test
    accepts a value exactly when ``evaluate`` does."""
    compiled = dport_test(accepted_values(spec, 0, 0xFFFF))
    edges = {v for t in spec for v in (t.value - 1, t.value, t.value + 1) if 0 <= v <= 0xFFFF}
    for value in sorted(edges | set(sample) | {0, 0xFFFF}):
        assert dnf_holds(compiled, _packet_with_dport(value)) == evaluate(spec, value)
