"""Unit tests for trafex.model.flowspec: validation, evaluation, NLRI encoding, identity.

Random valid values come from the strategies registered in conftest.py
(``st.from_type(FlowMatch)``).
"""

from __future__ import annotations

import ipaddress
import math
import struct
from typing import Any

import pytest
from hypothesis import given, reject, settings
from hypothesis import strategies as st

from tests.unit.helpers import refused
from trafex.model.errors import ValidationError
from trafex.model.flowspec import (
    ATTRIBUTE,
    FRAGMENT_DONT,
    FRAGMENT_FIRST,
    FRAGMENT_IS,
    TERM_COMPONENTS,
    BitmaskTerm,
    Component,
    ComponentType,
    Family,
    FlowActions,
    FlowMatch,
    FlowPrefix,
    FlowRule,
    NumericTerm,
    RouteTarget,
    RouteTargetKind,
    evaluate,
    expand_not_equal,
    float32,
    frame_nlri,
    network_text,
    unframe_nlri,
)
from trafex.model.grammar import parse_match, parse_rule

# ---------------------------------------------------------------------------------------
# Helpers

V4 = Family.IPV4
V6 = Family.IPV6


def eq(value: int, *, and_: bool = False) -> NumericTerm:
    return NumericTerm.of("=", value, and_=and_)


def prefix(text: str, offset: int = 0) -> FlowPrefix:
    return FlowPrefix(ipaddress.ip_network(text), offset)


# ---------------------------------------------------------------------------------------
# Value ranges: the error names the component


@pytest.mark.parametrize("component", TERM_COMPONENTS, ids=lambda c: c.keyword)
def test_value_range_names_the_component(component: Component) -> None:
    """A term of the component's largest value is accepted, one past it is refused with
    a ValidationError whose field is the component's keyword."""
    family = component.families[0]

    def term(value: int) -> NumericTerm | BitmaskTerm:
        return NumericTerm.of("=", value) if component.numeric else BitmaskTerm(value)

    good: dict[str, Any] = {component.attribute: (term(component.maximum),)}
    bad: dict[str, Any] = {component.attribute: (term(component.maximum + 1),)}
    assert (term(component.maximum),) == getattr(FlowMatch(family, **good), component.attribute)
    refused(component.keyword, FlowMatch, family, **bad)


def test_negative_value_is_refused() -> None:
    """A negative value is out of every component's range, naming it."""
    refused("source-port", FlowMatch, V4, source_port=(eq(-1),))


def test_flow_label_is_ipv6_only() -> None:
    """flow-label in an IPv4 match is refused, naming flow-label."""
    error = refused("flow-label", FlowMatch, V4, flow_label=(eq(1),))
    assert "ipv6" in error.message


def test_flow_label_is_below_2_to_the_20() -> None:
    """An IPv6 flow-label accepts 2**20 - 1 and refuses 2**20."""
    assert (eq(2**20 - 1),) == FlowMatch(V6, flow_label=(eq(2**20 - 1),)).flow_label
    refused("flow-label", FlowMatch, V6, flow_label=(eq(2**20),))


def test_term_of_the_wrong_kind_is_refused() -> None:
    """A bitmask term in a numeric component (and the reverse) is refused, naming it."""
    refused("protocol", FlowMatch, V4, protocol=(BitmaskTerm(6),))
    refused("tcp-flags", FlowMatch, V4, tcp_flags=(eq(2),))


def test_first_term_cannot_be_anded() -> None:
    """The first term of a component has nothing to AND with: refused, naming it."""
    error = refused("destination-port", FlowMatch, V4, destination_port=(eq(80, and_=True),))
    assert "first term" in error.message


def test_later_terms_may_be_anded() -> None:
    """Only the first term is constrained: the second one may carry AND."""
    terms = (NumericTerm.of(">=", 1024), NumericTerm.of("<=", 2048, and_=True))
    assert terms == FlowMatch(V4, destination_port=terms).destination_port


def test_lists_are_stored_as_tuples() -> None:
    """Components given as lists are kept as tuples, so matches stay hashable."""
    match = FlowMatch(V4, protocol=[eq(6)])  # type: ignore[arg-type]
    assert (eq(6),) == match.protocol
    assert hash(FlowMatch(V4, protocol=(eq(6),))) == hash(match)


def test_empty_match_is_refused() -> None:
    """A match without any component would match every packet: refused."""
    with pytest.raises(ValidationError, match="at least one match component"):
        FlowMatch(V4)


def test_prefix_family_must_match_the_rule() -> None:
    """An IPv6 prefix in an IPv4 match is refused, naming destination or source."""
    refused("destination", FlowMatch, V4, destination=prefix("2001:db8::/32"))
    refused("source", FlowMatch, V6, source=prefix("10.0.0.0/8"))


# ---------------------------------------------------------------------------------------
# Prefixes


def test_ipv4_prefix_with_offset_is_refused() -> None:
    """Offsets only exist for IPv6 (RFC 8956 §3.1)."""
    with pytest.raises(ValidationError, match="only defined for IPv6"):
        prefix("10.0.0.0/8", 4)


@pytest.mark.parametrize("offset", [64, 65, 200])
def test_ipv6_offset_must_be_below_the_prefix_length(offset: int) -> None:
    """An offset equal to or above the prefix length is refused (offset < length)."""
    with pytest.raises(ValidationError, match="below the prefix length 64"):
        prefix("2001:db8::/64", offset)


def test_ipv6_offset_just_below_the_prefix_length() -> None:
    """The largest offset, length - 1, is accepted."""
    expected = 63
    assert expected == prefix("2001:db8::/64", 63).offset


def test_bits_before_the_offset_are_zeroed() -> None:
    """The bits skipped by the offset are not on the wire: two prefixes that differ only
    there are equal, and the stored network has them zeroed."""
    assert prefix("0:db8::/64", 16) == prefix("2001:db8::/64", 16)
    assert ipaddress.ip_network("0:db8::/64") == prefix("2001:db8::/64", 16).network


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10.0.0.0/8", prefix("10.0.0.0/8")),
        ("10.0.0.1", prefix("10.0.0.1/32")),
        ("3001:1:a::10/128", prefix("3001:1:a::10/128")),
        (" 2001:db8::/32 ", prefix("2001:db8::/32")),
        ("2001:db8::/64/8", prefix("1:db8::/64", 8)),
    ],
)
def test_flow_prefix_parse(text: str, expected: FlowPrefix) -> None:
    """FlowPrefix.parse reads prefixes, bare addresses (host prefixes) and IPv6 prefixes
    with an offset as a third part."""
    assert expected == FlowPrefix.parse(text)


def test_flow_prefix_parse_refuses_host_bits() -> None:
    """Host bits set is an error that suggests the network, not a silent fix."""
    error = refused("source", FlowPrefix.parse, "10.0.0.1/8", field_name="source")
    assert "did you mean 10.0.0.0/8" in error.message


@pytest.mark.parametrize("text", ["10.0.0.0/33", "nonsense", "2001:db8::/64/x", ""])
def test_flow_prefix_parse_refuses_junk(text: str) -> None:
    """Text that is not a prefix (or a bad offset) is refused, naming the field given."""
    refused("destination", FlowPrefix.parse, text, field_name="destination")


@pytest.mark.parametrize("text", ["10.0.0.0/8/4", "2001:db8::/64/64"])
def test_flow_prefix_parse_offset_error_names_the_field(text: str) -> None:
    """An offset error from FlowPrefix.parse names the field it was given, like every
    other error of FlowPrefix.parse."""
    refused("source", FlowPrefix.parse, text, field_name="source")


def test_flow_prefix_str() -> None:
    """str() writes the offset as a third part, and nothing when there is none."""
    expected = ["1:db8::/64/8", "10.0.0.0/8"]
    assert expected == [str(prefix("1:db8::/64", 8)), str(prefix("10.0.0.0/8"))]


# ---------------------------------------------------------------------------------------
# Consistency between components


def test_dont_fragment_is_refused_for_ipv6() -> None:
    """IPv6 has no DF bit (RFC 8956): dont-fragment is refused, naming fragment; IPv4
    accepts it, and IPv6 accepts the other fragment bits."""
    refused("fragment", FlowMatch, V6, fragment=(BitmaskTerm(FRAGMENT_IS | FRAGMENT_DONT),))
    df, ff = (BitmaskTerm(FRAGMENT_DONT),), (BitmaskTerm(FRAGMENT_FIRST),)
    assert df == FlowMatch(V4, fragment=df).fragment
    assert ff == FlowMatch(V6, fragment=ff).fragment


def test_icmp_type_with_protocol_tcp_is_refused() -> None:
    """icmp-type needs protocol icmp (1 for IPv4, 58 for IPv6): the error names protocol."""
    refused("protocol", FlowMatch, V4, protocol=(eq(6),), icmp_type=(eq(8),))
    refused("protocol", FlowMatch, V6, protocol=(eq(1),), icmp_code=(eq(0),))


def test_icmp_type_with_the_family_icmp_protocol() -> None:
    """icmp-type is accepted with protocol 1 in IPv4 and 58 in IPv6."""
    assert (eq(8),) == FlowMatch(V4, protocol=(eq(1),), icmp_type=(eq(8),)).icmp_type
    assert (eq(128),) == FlowMatch(V6, protocol=(eq(58),), icmp_type=(eq(128),)).icmp_type


def test_tcp_flags_with_protocol_udp_is_refused() -> None:
    """tcp-flags with protocol =17 can never match: refused, naming protocol."""
    refused("protocol", FlowMatch, V4, protocol=(eq(17),), tcp_flags=(BitmaskTerm(2),))


def test_tcp_flags_with_several_protocols_is_accepted() -> None:
    """The consistency check only applies to a single =protocol term: [ =6 =17 ] may
    carry tcp-flags (the TCP packets can match)."""
    match = FlowMatch(V4, protocol=(eq(6), eq(17)), tcp_flags=(BitmaskTerm(2),))
    assert (BitmaskTerm(2),) == match.tcp_flags


# ---------------------------------------------------------------------------------------
# NLRI size


def _ports(two_byte: int, one_byte: int) -> tuple[NumericTerm, ...]:
    return tuple([eq(1000)] * two_byte + [eq(80)] * one_byte)


def test_nlri_of_4095_bytes_is_accepted() -> None:
    """1 type byte + 1364 two-byte terms (3 bytes) + 1 one-byte term (2 bytes) = 4095,
    the most RFC 8955 allows; wire() writes its length as 0xffff."""
    match = FlowMatch(V4, port=_ports(1364, 1))
    assert b"\xff\xff" + match.encode() == match.wire()


def test_nlri_over_4095_bytes_is_refused() -> None:
    """One byte more (4096) is refused."""
    with pytest.raises(ValidationError, match="4096 bytes"):
        FlowMatch(V4, port=_ports(1365, 0))


def test_wire_uses_one_length_byte_up_to_239() -> None:
    """A 239-byte NLRI has a 1-byte length (0xef)."""
    match = FlowMatch(V4, port=_ports(78, 2))
    assert b"\xef" + match.encode() == match.wire()


def test_wire_uses_two_length_bytes_from_240() -> None:
    """From 240 bytes the length is 2 bytes with the top nibble 0xf (RFC 8955 §4.1)."""
    match = FlowMatch(V4, port=_ports(79, 1))
    assert b"\xf0\xf0" + match.encode() == match.wire()


@pytest.mark.parametrize("size", [0, 1, 239, 240, 4095])
def test_unframe_takes_off_what_frame_puts_on(size: int) -> None:
    body = bytes(range(256)) * 16
    body = body[:size]
    assert body == unframe_nlri(frame_nlri(body))


# ---------------------------------------------------------------------------------------
# Actions


def test_actions_none_is_refused() -> None:
    """A rule without any action is refused."""
    with pytest.raises(ValidationError, match="needs an action"):
        FlowActions()


def test_discard_with_redirect_is_refused() -> None:
    """Discard (rate 0) cannot be combined with redirect: refused, naming discard."""
    refused("discard", FlowActions, rate=0.0, redirect=RouteTarget.parse("6:302"))


def test_discard_with_mark_is_refused() -> None:
    """Discard cannot be combined with mark either."""
    refused("discard", FlowActions, rate=0.0, mark=10)


def test_discard_with_sample_and_terminal_is_accepted() -> None:
    """Discard combines with the traffic-action bits."""
    actions = FlowActions(rate=0.0, sample=True, terminal=True)
    expected = (True, True, True)
    assert expected == (actions.discard, actions.sample, actions.terminal)


@pytest.mark.parametrize("rate", [-1.0, -0.5, math.nan, math.inf, -math.inf, 3.5e38])
def test_bad_rate_is_refused(rate: float) -> None:
    """Negative, NaN, infinite and above-float32 rates are refused, naming rate-limit."""
    refused("rate-limit", FlowActions, rate=rate)


def test_rate_is_stored_as_float32() -> None:
    """The rate is rounded to the float32 the wire carries, so a decoded rule compares
    equal to the one that was sent."""
    actions = FlowActions(rate=1.1)
    expected: float = struct.unpack("!f", struct.pack("!f", 1.1))[0]
    assert expected == actions.rate
    assert actions.rate != 1.1
    assert FlowActions(rate=float32(1.1)) == actions


def test_rate_zero_is_discard() -> None:
    """A rate of 0 is the discard action; any other rate is not."""
    assert FlowActions(rate=0.0).discard
    assert not FlowActions(rate=1.0).discard


@pytest.mark.parametrize("mark", [-1, 64])
def test_mark_out_of_range_is_refused(mark: int) -> None:
    """The DSCP to mark with is 0..63, the error names mark."""
    refused("mark", FlowActions, mark=mark)


# ---------------------------------------------------------------------------------------
# Route targets

RT_ADDRESS = ipaddress.IPv4Address("192.0.2.1")


@pytest.mark.parametrize(
    ("text", "expected", "canonical"),
    [
        ("6:302", RouteTarget(RouteTargetKind.AS2, 6, 302), "6:302"),
        (
            "65535:4294967295",
            RouteTarget(RouteTargetKind.AS2, 65535, 0xFFFFFFFF),
            "65535:4294967295",
        ),
        ("4200000000:5", RouteTarget(RouteTargetKind.AS4, 4200000000, 5), "4200000000:5"),
        ("65000L:5", RouteTarget(RouteTargetKind.AS4, 65000, 5), "65000L:5"),
        ("65000l:5", RouteTarget(RouteTargetKind.AS4, 65000, 5), "65000L:5"),
        ("192.0.2.1:7", RouteTarget(RouteTargetKind.IPV4, RT_ADDRESS, 7), "192.0.2.1:7"),
        ("target:6:302", RouteTarget(RouteTargetKind.AS2, 6, 302), "6:302"),
        ("rt:192.0.2.1:65535", RouteTarget(RouteTargetKind.IPV4, RT_ADDRESS, 65535), None),
    ],
)
def test_route_target_parse(text: str, expected: RouteTarget, canonical: str | None) -> None:
    """RouteTarget.parse reads AS2, AS4 (above 65535 or with an L) and IPv4 targets, and
    str() writes them back so that they parse to the same kind."""
    target = RouteTarget.parse(text)
    assert expected == target
    expected_text = canonical if canonical is not None else text.removeprefix("rt:")
    assert expected_text == str(target)
    assert target == RouteTarget.parse(str(target))


@pytest.mark.parametrize(
    "text",
    [
        "6:4294967296",  # AS2 local part is 32 bits
        "70000:65536",  # AS4 local part is 16 bits
        "65000L:65536",
        "192.0.2.1:65536",  # IPv4 local part is 16 bits
        "4294967296:1",  # no AS that large
        "6:-1",
    ],
)
def test_route_target_out_of_range(text: str) -> None:
    """Local and global parts out of range for the kind are refused, naming redirect."""
    refused("redirect", RouteTarget.parse, text)


@pytest.mark.parametrize("text", ["", "6", ":5", "x:1", "6:x", "1.2.3:4", "300.1.1.1:4", "L:5"])
def test_route_target_junk(text: str) -> None:
    """Text that is not ASN:NN or IPv4:NN is refused, naming redirect."""
    refused("redirect", RouteTarget.parse, text)


def test_route_target_kind_and_global_part_must_agree() -> None:
    """An IPv4 target needs an address and an AS target needs a number."""
    refused("redirect", RouteTarget, RouteTargetKind.IPV4, 5, 1)
    refused("redirect", RouteTarget, RouteTargetKind.AS2, RT_ADDRESS, 1)


# ---------------------------------------------------------------------------------------
# Terms and evaluation


def test_numeric_term_of_operators() -> None:
    """NumericTerm.of maps every operator text onto its lt/gt/eq bits, and == is =."""
    expected = {
        "=": (False, False, True),
        "==": (False, False, True),
        "!=": (True, True, False),
        "<": (True, False, False),
        "<=": (True, False, True),
        ">": (False, True, False),
        ">=": (False, True, True),
        "true": (True, True, True),
        "false": (False, False, False),
    }
    actual = {op: (t.lt, t.gt, t.eq) for op in expected for t in [NumericTerm.of(op, 1)]}
    assert expected == actual
    assert NumericTerm.of("=", 80) == NumericTerm.of("==", 80)


def test_numeric_term_of_unknown_operator() -> None:
    """An operator outside the grammar is refused."""
    with pytest.raises(ValidationError, match="unknown numeric operator"):
        NumericTerm.of("=>", 1)


PORT_RANGE_OR_80 = (
    NumericTerm.of(">=", 1024),
    NumericTerm.of("<=", 2048, and_=True),
    NumericTerm.of("=", 80),
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        *[(80, True), (1024, True), (1500, True), (2048, True)],
        *[(79, False), (81, False), (1023, False), (2049, False), (0, False), (65535, False)],
    ],
)
def test_evaluate_and_chain_or_term(value: int, expected: bool) -> None:
    """``>=1024&<=2048 =80`` is (>=1024 AND <=2048) OR =80."""
    assert expected == evaluate(PORT_RANGE_OR_80, value)


def test_evaluate_or_of_two_and_chains() -> None:
    """``>=10&<=20 >=30&<=40``: a value matches when it is in either range."""
    terms = (
        NumericTerm.of(">=", 10),
        NumericTerm.of("<=", 20, and_=True),
        NumericTerm.of(">=", 30),
        NumericTerm.of("<=", 40, and_=True),
    )
    expected = [False, True, True, False, True, True, False]
    assert expected == [evaluate(terms, v) for v in (9, 10, 20, 25, 30, 40, 41)]


def test_evaluate_special_operators() -> None:
    """true matches every value, false none, != all but one; an empty list matches
    nothing."""
    assert all(evaluate((NumericTerm.of("true"),), v) for v in (0, 5, 65535))
    assert not any(evaluate((NumericTerm.of("false"),), v) for v in (0, 5, 65535))
    expected = [True, False, True]
    assert expected == [evaluate((NumericTerm.of("!=", 5),), v) for v in (4, 5, 6)]
    assert not evaluate((), 0)


def test_evaluate_bitmask_terms() -> None:
    """Bitmask terms: without match any bit suffices; with match all bits are needed;
    not negates; ``=S&!A`` matches a SYN without ACK only."""
    syn, ack = 0x02, 0x10
    any_sa = (BitmaskTerm(syn | ack),)
    all_sa = (BitmaskTerm(syn | ack, match=True),)
    not_all_sa = (BitmaskTerm(syn | ack, match=True, not_=True),)
    syn_no_ack = (BitmaskTerm(syn, match=True), BitmaskTerm(ack, not_=True, and_=True))
    packets = (0, syn, ack, syn | ack)
    expected = {
        "any": [False, True, True, True],
        "all": [False, False, False, True],
        "not all": [True, True, True, False],
        "syn, no ack": [False, True, False, False],
    }
    actual = {
        name: [evaluate(terms, p) for p in packets]
        for name, terms in (
            ("any", any_sa),
            ("all", all_sa),
            ("not all", not_all_sa),
            ("syn, no ack", syn_no_ack),
        )
    }
    assert expected == actual


# ---------------------------------------------------------------------------------------
# != written as < OR > (FRR 8.4 resets the session on the lt|gt operator)


def test_not_equal_is_written_as_less_or_greater() -> None:
    """A match keeps ``!=80`` as ``<80 >80``: same packets, an operator every receiver
    accepts; both forms are the same rule."""
    expected = (NumericTerm.of("<", 80), NumericTerm.of(">", 80))
    match = FlowMatch(V4, destination_port=(NumericTerm.of("!=", 80),))
    assert expected == match.destination_port
    assert FlowMatch(V4, destination_port=expected).key == match.key


def test_not_equal_is_distributed_over_and_chains() -> None:
    """``>=1&!=80 =443`` becomes ``>=1&<80 >=1&>80 =443``."""
    terms = (NumericTerm.of(">=", 1), NumericTerm.of("!=", 80, and_=True), eq(443))
    expected = (
        NumericTerm.of(">=", 1),
        NumericTerm.of("<", 80, and_=True),
        NumericTerm.of(">=", 1),
        NumericTerm.of(">", 80, and_=True),
        eq(443),
    )
    assert expected == expand_not_equal(terms)
    assert expected == FlowMatch(V4, port=terms).port


def test_too_many_not_equal_terms() -> None:
    """Five != in one AND-chain would need 32 chains of 5 terms: refused, naming the
    component and the limit; three (8 chains of 3 terms) are accepted."""
    three = (NumericTerm.of("!=", 1), *[NumericTerm.of("!=", v, and_=True) for v in (2, 3)])
    five = (*three, *[NumericTerm.of("!=", v, and_=True) for v in (4, 5)])
    expected_terms = 8 * 3
    assert expected_terms == len(FlowMatch(V4, packet_length=three).packet_length)
    error = refused("packet-length", FlowMatch, V4, packet_length=five)
    expected = (
        "too many != (or true) terms in one AND-chain: 5, at most 4 "
        "(each doubles the branches it is written as, with < and >)"
    )
    assert expected == error.message


def test_not_equal_limit_is_per_chain() -> None:
    """The limit holds per AND-chain: two chains of four != each are accepted (16
    branches each), and the count is checked before the branches are built."""
    four = (NumericTerm.of("!=", 1), *[NumericTerm.of("!=", v, and_=True) for v in (2, 3, 4)])
    terms = FlowMatch(V4, packet_length=(*four, *four)).packet_length
    expected_branches = 2 * 16
    assert expected_branches == sum(1 for t in terms if not t.and_)
    many = (NumericTerm.of("!=", 0), *[NumericTerm.of("!=", v, and_=True) for v in range(1, 40)])
    refused("packet-length", FlowMatch, V4, packet_length=many)  # not 2**40 branches


def test_four_not_equal_terms_per_chain_are_accepted() -> None:
    """The error says "at most 4 per chain" (MAX_NE_BRANCHES = 16 = 2**4): a chain of
    four != is accepted, as 16 branches (64 terms, which a limit on the number of terms
    would wrongly refuse)."""
    four = (NumericTerm.of("!=", 1), *[NumericTerm.of("!=", v, and_=True) for v in (2, 3, 4)])
    expected_branches = 16
    terms = FlowMatch(V4, packet_length=four).packet_length
    assert expected_branches == sum(1 for t in terms if not t.and_)


NUMERIC_TERM_LISTS = st.lists(
    st.tuples(
        st.sampled_from(("=", "!=", "<", "<=", ">", ">=", "true", "false")),
        st.integers(0, 20),
        st.booleans(),
    ),
    min_size=1,
    max_size=5,
).map(
    lambda spec: tuple(NumericTerm.of(op, v, and_=a and i > 0) for i, (op, v, a) in enumerate(spec))
)


@settings(max_examples=200)
@given(NUMERIC_TERM_LISTS)
def test_expand_not_equal_matches_the_same_values(terms: tuple[NumericTerm, ...]) -> None:
    """The rewritten list matches exactly the values the original matched, and contains
    no != term."""
    try:
        expanded = expand_not_equal(terms)
    except ValidationError:
        reject()  # above the expansion limit, tested on its own
    expected = [evaluate(terms, v) for v in range(-1, 23)]
    assert expected == [evaluate(expanded, v) for v in range(-1, 23)]
    assert not any(t.lt and t.gt and not t.eq for t in expanded)


def test_first_term_cannot_be_anded_with_not_equal_in_the_list() -> None:
    """The first-term check holds whatever the other terms are: a != later in the list
    must not make an ANDed first term acceptable (expand_not_equal clears the AND bit
    of each chain's first term, so the terms are checked before it runs)."""
    terms = (eq(80, and_=True), NumericTerm.of("!=", 5))
    refused("port", FlowMatch, V4, port=terms)


# ---------------------------------------------------------------------------------------
# NLRI encoding (RFC 8955 §4.2, RFC 8956 §3), bytes computed by hand


@pytest.mark.parametrize(
    ("match", "expected"),
    [
        # type 1, length 32, 10.0.0.1
        (FlowMatch(V4, destination=prefix("10.0.0.1/32")), "01 20 0a000001"),
        # only the significant bytes of the prefix: /9 needs 2
        (FlowMatch(V4, source=prefix("10.128.0.0/9")), "02 09 0a80"),
        (FlowMatch(V4, destination=prefix("0.0.0.0/0")), "01 00"),
        # =6: end-of-list 0x80 | 1-byte length 0x00 | eq 0x01
        (FlowMatch(V4, protocol=(eq(6),)), "03 81 06"),
        # 2-byte value: length bits 0x10
        (FlowMatch(V4, destination_port=(eq(8080),)), "05 91 1f90"),
        # 4-byte value: length bits 0x20
        (FlowMatch(V6, flow_label=(eq(0x12345),)), "0d a1 00012345"),
        # >=1024 (gt|eq 0x03 | 0x10), &<=2048 (AND 0x40 | 0x10 | lt|eq 0x05), =80 (end)
        (FlowMatch(V4, destination_port=PORT_RANGE_OR_80), "05 13 0400 55 0800 81 50"),
        # =S (match 0x01, value 0x02), &!A (end | AND | not 0x02, value 0x10)
        (
            FlowMatch(
                V4,
                tcp_flags=(
                    BitmaskTerm(0x02, match=True),
                    BitmaskTerm(0x10, not_=True, and_=True),
                ),
            ),
            "09 01 02 c2 10",
        ),
        # a tcp-flags value above 0xff takes 2 bytes
        (FlowMatch(V4, tcp_flags=(BitmaskTerm(0x100),)), "09 90 0100"),
        # true (lt|gt|eq, which resets FRR 8.4's session) goes as <0 OR >=0
        (FlowMatch(V4, packet_length=(NumericTerm.of("true"),)), "0a 04 00 83 00"),
        # IPv6 destination without offset: type, length, offset 0, pattern
        (FlowMatch(V6, destination=prefix("2001:db8::/32")), "01 20 00 20010db8"),
        (FlowMatch(V6, destination=prefix("::/0")), "01 00 00"),
    ],
)
def test_encode_known_components(match: FlowMatch, expected: str) -> None:
    """The component bytes equal the hand-computed RFC 8955/8956 encoding."""
    assert bytes.fromhex(expected) == match.encode()


def test_encode_rfc8955_example_tcp_port_25() -> None:
    """RFC 8955 §4.2.3, first example: packets to 192.0.2.0/24 and TCP port 25."""
    match = FlowMatch(V4, destination=prefix("192.0.2.0/24"), protocol=(eq(6),), port=(eq(25),))
    assert bytes.fromhex("0b 01 18 c00002 03 81 06 04 81 19") == match.wire()


def test_encode_rfc8955_example_port_range_or_8080() -> None:
    """RFC 8955 §4.2.3, second example: to 192.0.2.0/24 from 203.0.113.0/24 and port
    [137, 139] or 8080."""
    match = FlowMatch(
        V4,
        destination=prefix("192.0.2.0/24"),
        source=prefix("203.0.113.0/24"),
        port=(NumericTerm.of(">=", 137), NumericTerm.of("<=", 139, and_=True), eq(8080)),
    )
    expected = bytes.fromhex("12 01 18 c00002 02 18 cb0071 04 03 89 45 8b 91 1f90")
    assert expected == match.wire()


def test_encode_fragment_df_or_ff() -> None:
    """To 192.0.2.1/32 and fragment DF or FF: one term, value 0x05, no match bit."""
    match = FlowMatch(
        V4,
        destination=prefix("192.0.2.1/32"),
        fragment=(BitmaskTerm(FRAGMENT_DONT | FRAGMENT_FIRST),),
    )
    assert bytes.fromhex("09 01 20 c0000201 0c 80 05") == match.wire()


def test_encode_ipv6_offset_pattern_starts_at_the_offset() -> None:
    """RFC 8956 §3.1/§3.8.2: ``::1:1234:5678:9800:0/104`` with offset 60 encodes length
    0x68, offset 0x3c and the 44 bits 60..103 (0x11234567898) left-aligned and padded:
    11 23 45 67 89 80."""
    match = FlowMatch(V6, source=prefix("::1:1234:5678:9800:0/104", 60))
    assert bytes.fromhex("02 68 3c 112345678980") == match.encode()


def test_encode_ipv6_offset_on_a_byte_boundary() -> None:
    """``::1234:5678:9a00:0/104`` offset 64: the pattern is bits 64..103, 5 bytes."""
    match = FlowMatch(V6, destination=prefix("::1234:5678:9a00:0/104", 64))
    assert bytes.fromhex("01 68 40 123456789a") == match.encode()


def test_encode_end_of_list_bit_only_on_the_last_term() -> None:
    """In a list of terms only the last operator byte has 0x80 set."""
    data = FlowMatch(V4, protocol=(eq(6), eq(17), eq(1))).encode()
    expected = [0x01, 0x01, 0x81]
    assert expected == [data[1], data[3], data[5]]


def test_encode_components_in_type_order() -> None:
    """Components are written in type order whatever order they were given in."""
    match = FlowMatch(V4, dscp=(eq(1),), destination=prefix("10.0.0.0/8"), protocol=(eq(6),))
    expected = [ComponentType.DESTINATION, ComponentType.PROTOCOL, ComponentType.DSCP]
    assert expected == [ctype for ctype, _ in match.components()]
    assert bytes.fromhex("01 08 0a 03 81 06 0b 81 01") == match.encode()


# ---------------------------------------------------------------------------------------
# Identity


def test_key_is_family_and_nlri_hex() -> None:
    """A match's key is its family and canonical NLRI in hex."""
    match = FlowMatch(V4, destination=prefix("10.0.0.1/32"))
    expected = "ipv4:01200a000001"
    assert expected == match.key
    assert match.key == FlowRule(match, FlowActions(rate=0.0)).key


def test_same_bytes_in_both_families_are_different_keys() -> None:
    """The family is part of the identity: =6 in IPv4 and in IPv6 are two rules."""
    assert FlowMatch(V4, protocol=(eq(6),)).key != FlowMatch(V6, protocol=(eq(6),)).key


@pytest.mark.parametrize(
    "texts",
    [
        ("destination-port ==80", "destination-port =80", "destination-port 80"),
        ("protocol [ =tcp ]", "protocol =6", "protocol tcp", "protocol ==6", "protocol [ 6 ]"),
        (
            "destination 10.0.0.1/32 protocol =6 destination-port =80",
            "destination-port =80 protocol =6 destination 10.0.0.1/32",
            "protocol tcp destination-port 80 destination 10.0.0.1",
        ),
        ("tcp-flags syn+ack", "tcp-flags SA", "tcp-flags AS", "tcp-flags 0x12"),
        ("port !=80", "port [ <80 >80 ]", "port <80 >80"),
    ],
)
def test_same_match_in_different_texts_has_the_same_key(texts: tuple[str, ...]) -> None:
    """Equal matches written differently (== vs = vs bare, names vs numbers, option
    order) have one key."""
    first = parse_match(texts[0], V4).key
    assert [first] * len(texts) == [parse_match(text, V4).key for text in texts]


def test_key_ignores_actions() -> None:
    """The key is the match only: the same match with other actions is the same rule."""
    first = parse_rule("destination 10.0.0.1/32 discard")
    second = parse_rule("destination 10.0.0.1/32 rate-limit 1000 redirect 6:302")
    assert first.key == second.key


@settings(max_examples=200)
@given(st.from_type(FlowMatch))
def test_key_equals_family_and_encode(match: FlowMatch) -> None:
    """For any valid match, key == family:hex(encode()), and rebuilding the match from
    its fields gives an equal match with the same key."""
    assert f"{match.family.value}:{match.encode().hex()}" == match.key
    fields: dict[str, Any] = {
        name: getattr(match, name) for name in ("destination", "source", *ATTRIBUTE.values())
    }
    rebuilt = FlowMatch(match.family, **fields)
    assert match == rebuilt
    assert match.key == rebuilt.key


@settings(max_examples=2000)
@given(
    st.lists(st.sampled_from([0, 0, 0, 1, 0xFFFF, 0xDB8, 0x3001, 0xA]), min_size=8, max_size=8),
    st.integers(0, 128),
)
def test_network_text_is_str(groups: list[int], plen: int) -> None:
    """network_text() writes exactly what str() of the network writes (zero runs of any
    length and place, IPv4-mapped and -compatible addresses included)."""
    value = int.from_bytes(b"".join(g.to_bytes(2, "big") for g in groups), "big")
    network = ipaddress.IPv6Network((value, plen), strict=False)
    assert str(network) == network_text(network)
    assert str(ipaddress.IPv4Network("10.1.0.0/16")) == network_text(
        ipaddress.IPv4Network("10.1.0.0/16")
    )
