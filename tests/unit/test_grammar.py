"""Unit tests for trafex.model.grammar: ExaBGP/GoBGP text → model → text."""

from __future__ import annotations

import contextlib
import ipaddress
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tests.unit.helpers import refused
from trafex.model.components import (
    COMPONENTS,
    FRAGMENT_DONT,
    FRAGMENT_FIRST,
    FRAGMENT_IS,
    FRAGMENT_LAST,
    Component,
    ComponentKind,
    Family,
)
from trafex.model.errors import ValidationError
from trafex.model.flowspec import (
    BitmaskTerm,
    FlowActions,
    FlowMatch,
    FlowPrefix,
    FlowRule,
    NumericTerm,
    RouteTarget,
    RouteTargetKind,
)
from trafex.model.grammar import (
    component_texts,
    parse_match,
    parse_rule,
    render_match,
    render_rule,
    rule_dict,
    tokenize,
)

V4 = Family.IPV4
V6 = Family.IPV6


def eq(value: int, *, and_: bool = False) -> NumericTerm:
    return NumericTerm.of("=", value, and_=and_)


def prefix(text: str, offset: int = 0) -> FlowPrefix:
    return FlowPrefix(ipaddress.ip_network(text), offset)


DISCARD = FlowActions(rate=0.0)


TEXT_MATCHES = st.from_type(FlowMatch)
TEXT_RULES = st.builds(FlowRule, TEXT_MATCHES, st.from_type(FlowActions))
RT_6_302 = RouteTarget(RouteTargetKind.AS2, 6, 302)

# ---------------------------------------------------------------------------------------
# Round trips


@settings(max_examples=400)
@given(TEXT_RULES)
def test_rule_round_trip(rule: FlowRule) -> None:
    """parse_rule(render_rule(r)) == r for random valid rules of both families, and the
    rendered text is a fixed point."""
    text = render_rule(rule)
    parsed = parse_rule(text)
    assert rule == parsed
    assert rule.key == parsed.key
    assert text == render_rule(parsed)


@settings(max_examples=200)
@given(TEXT_MATCHES)
def test_match_round_trip(match: FlowMatch) -> None:
    """parse_match(render_match(m)) == m, also with the family given as a hint."""
    text = render_match(match)
    assert match == parse_match(text)
    assert match == parse_match(text, match.family)


@settings(max_examples=200)
@given(TEXT_RULES, st.sampled_from(["exabgp", "block", "named", "gobgp"]))
def test_rule_round_trip_through_other_forms(rule: FlowRule, form: str) -> None:
    """The canonical text wrapped the ExaBGP and GoBGP ways parses to the same rule
    (also a match without a prefix, which starts with its family word)."""
    match_text, actions_text = render_match(rule.match), _actions_text(rule)
    text = {
        "exabgp": f"announce flow route {match_text} {actions_text}",
        "block": f"match {{ {match_text}; }} then {{ {actions_text}; }}",
        "named": f"route r1 {{ match {{ {match_text}; }} then {{ {actions_text}; }} }}",
        "gobgp": f"match {match_text} then {actions_text}",
    }[form]
    assert rule == parse_rule(text)


def _actions_text(rule: FlowRule) -> str:
    return render_rule(rule).removeprefix(render_match(rule.match)).strip()


@pytest.mark.parametrize(
    "text",
    [
        "announce flow route ipv6 protocol =6 discard",
        "route inet6 { match { protocol =6; } then { discard; } }",
    ],
)
def test_route_keyword_does_not_swallow_a_family_word(text: str) -> None:
    """``route`` followed by a family word (the canonical text of a rule without a
    prefix starts with one) keeps the family: an IPv6 rule must not silently become an
    IPv4 one."""
    expected = Family.IPV6
    assert expected == parse_rule(text).family


@pytest.mark.parametrize("op", ["true", "false"])
def test_true_false_terms_with_a_value_round_trip(op: str) -> None:
    """A true/false term carries a value on the wire (NLRI, API); the text round trip
    must keep it, or the rule's key changes when the store reloads it."""
    rule = FlowRule(FlowMatch(V4, packet_length=(NumericTerm.of(op, 5),)), DISCARD)
    assert rule.key == parse_rule(render_rule(rule)).key


# ---------------------------------------------------------------------------------------
# Accepted forms


def _rule(match: FlowMatch, actions: FlowActions = DISCARD) -> FlowRule:
    return FlowRule(match, actions)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "source 3001:1:a::10/128 destination 3001:4:b::10/128 redirect 6:302",
            _rule(
                FlowMatch(
                    V6,
                    destination=prefix("3001:4:b::10/128"),
                    source=prefix("3001:1:a::10/128"),
                ),
                FlowActions(redirect=RT_6_302),
            ),
        ),
        (
            "announce flow route destination 10.0.0.1/32 protocol [ =tcp =udp ] "
            "destination-port >=1024&<=2048 rate-limit 9600",
            _rule(
                FlowMatch(
                    V4,
                    destination=prefix("10.0.0.1/32"),
                    protocol=(eq(6), eq(17)),
                    destination_port=(
                        NumericTerm.of(">=", 1024),
                        NumericTerm.of("<=", 2048, and_=True),
                    ),
                ),
                FlowActions(rate=9600.0),
            ),
        ),
        (
            "match { destination 10.0.0.1/32; tcp-flags [ syn ]; } then { discard; }",
            _rule(FlowMatch(V4, destination=prefix("10.0.0.1/32"), tcp_flags=(BitmaskTerm(2),))),
        ),
        (
            "route block-dns { match { destination 192.0.2.1/32; protocol udp; "
            "source-port =53; } then { rate-limit 1000; action sample; } }",
            _rule(
                FlowMatch(
                    V4,
                    destination=prefix("192.0.2.1/32"),
                    protocol=(eq(17),),
                    source_port=(eq(53),),
                ),
                FlowActions(rate=1000.0, sample=True),
            ),
        ),
        (
            "match destination 2001:db8::/64 8 protocol tcp then action sample-terminal",
            _rule(
                FlowMatch(V6, destination=prefix("1:db8::/64", 8), protocol=(eq(6),)),
                FlowActions(sample=True, terminal=True),
            ),
        ),
        (
            "flow route { match { source 10.0.0.0/8; } then { redirect 192.0.2.1:7; mark 10; } }",
            _rule(
                FlowMatch(V4, source=prefix("10.0.0.0/8")),
                FlowActions(
                    redirect=RouteTarget(
                        RouteTargetKind.IPV4, ipaddress.IPv4Address("192.0.2.1"), 7
                    ),
                    mark=10,
                ),
            ),
        ),
        (
            "destination 10.0.0.1 discard",
            _rule(FlowMatch(V4, destination=prefix("10.0.0.1/32"))),
        ),
        (
            "destination 2001:db8::1 4 discard",
            _rule(FlowMatch(V6, destination=prefix("2001:db8::1/128", 4))),
        ),
        (
            "destination-ipv6 2001:db8::/32 source-ipv6 2001:db8:1::/48 discard",
            _rule(
                FlowMatch(V6, destination=prefix("2001:db8::/32"), source=prefix("2001:db8:1::/48"))
            ),
        ),
        (
            "DESTINATION 10.0.0.1/32 PROTOCOL TCP DISCARD",
            _rule(FlowMatch(V4, destination=prefix("10.0.0.1/32"), protocol=(eq(6),))),
        ),
    ],
)
def test_parse_known_forms(text: str, expected: FlowRule) -> None:
    """ExaBGP's one-line and block forms, named routes and GoBGP's match/then parse to
    the rule they describe."""
    assert expected == parse_rule(text)


@pytest.mark.parametrize(
    ("text", "family", "expected"),
    [
        (
            "protocol icmp icmp-type echo-request",
            None,
            FlowMatch(V4, protocol=(eq(1),), icmp_type=(eq(8),)),
        ),
        ("ipv4 icmp-type echo-reply", None, FlowMatch(V4, icmp_type=(eq(0),))),
        ("ipv6 icmp-type echo-request", None, FlowMatch(V6, icmp_type=(eq(128),))),
        ("icmp-type echo-request", V6, FlowMatch(V6, icmp_type=(eq(128),))),
        (
            "inet6 next-header icmpv6 icmp-type echo-reply",
            None,
            FlowMatch(V6, protocol=(eq(58),), icmp_type=(eq(129),)),
        ),
        ("protocol =udp", None, FlowMatch(V4, protocol=(eq(17),))),
        ("protocol [ !=tcp ]", None, FlowMatch(V4, protocol=(NumericTerm.of("!=", 6),))),
        ("traffic-class =46", None, FlowMatch(V4, dscp=(eq(46),))),
        ("flow-label =5", None, FlowMatch(V6, flow_label=(eq(5),))),
        ("packet-length true", None, FlowMatch(V4, packet_length=(NumericTerm.of("true"),))),
        ("packet-length FALSE", None, FlowMatch(V4, packet_length=(NumericTerm.of("false"),))),
        ("packet-length true:5", None, FlowMatch(V4, packet_length=(NumericTerm.of("true", 5),))),
        ("protocol False:tcp", None, FlowMatch(V4, protocol=(NumericTerm.of("false", 6),))),
        (
            "packet-length >=100&true",
            None,
            FlowMatch(
                V4, packet_length=(NumericTerm.of(">=", 100), NumericTerm.of("true", and_=True))
            ),
        ),
        (
            "destination-port >=1024 &<=2048 =80",
            None,
            FlowMatch(
                V4,
                destination_port=(
                    NumericTerm.of(">=", 1024),
                    NumericTerm.of("<=", 2048, and_=True),
                    eq(80),
                ),
            ),
        ),
        ("port 0x50", None, FlowMatch(V4, port=(eq(80),))),
    ],
)
def test_parse_names_and_operators(text: str, family: Family | None, expected: FlowMatch) -> None:
    """Protocol and ICMP type names (per family), family words, aliases, true/false
    and a separate ``&term`` token parse to the expected terms."""
    assert expected == parse_match(text, family)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("syn", (BitmaskTerm(0x02),)),
        ("syn+ack", (BitmaskTerm(0x12),)),
        ("SA", (BitmaskTerm(0x12),)),
        ("=SA", (BitmaskTerm(0x12, match=True),)),
        ("!A", (BitmaskTerm(0x10, not_=True),)),
        ("!=SA", (BitmaskTerm(0x12, match=True, not_=True),)),
        ("=!SA", (BitmaskTerm(0x12, match=True, not_=True),)),
        ("=S&!A", (BitmaskTerm(0x02, match=True), BitmaskTerm(0x10, not_=True, and_=True))),
        ("[ F R ]", (BitmaskTerm(0x01), BitmaskTerm(0x04))),
        ("fin|push|urg|ece|cwr", (BitmaskTerm(0x01 | 0x08 | 0x20 | 0x40 | 0x80),)),
        ("FSRPAUEC", (BitmaskTerm(0xFF),)),
        ("0x100", (BitmaskTerm(0x100),)),
    ],
)
def test_parse_tcp_flags(text: str, expected: tuple[BitmaskTerm, ...]) -> None:
    """TCP flags as names or GoBGP's letters, with = (all), ! (not) and & (and)."""
    assert expected == parse_match(f"tcp-flags {text}").tcp_flags


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("is-fragment", (BitmaskTerm(FRAGMENT_IS),)),
        ("not-a-fragment", (BitmaskTerm(FRAGMENT_IS, not_=True),)),
        ("dont-fragment", (BitmaskTerm(FRAGMENT_DONT),)),
        (
            "[ first-fragment last-fragment ]",
            (BitmaskTerm(FRAGMENT_FIRST), BitmaskTerm(FRAGMENT_LAST)),
        ),
        ("=isf+lf", (BitmaskTerm(FRAGMENT_IS | FRAGMENT_LAST, match=True),)),
        ("!df", (BitmaskTerm(FRAGMENT_DONT, not_=True),)),
    ],
)
def test_parse_fragment(text: str, expected: tuple[BitmaskTerm, ...]) -> None:
    """Fragment names (ExaBGP's and GoBGP's short ones), not-a-fragment = !is-fragment."""
    assert expected == parse_match(f"fragment {text}", V4).fragment


def test_not_a_fragment_is_accepted_for_ipv6() -> None:
    """not-a-fragment uses the IS bit, which IPv6 has."""
    expected = (BitmaskTerm(FRAGMENT_IS, not_=True),)
    assert expected == parse_match("ipv6 fragment not-a-fragment").fragment


def test_parse_match_ignores_actions() -> None:
    """parse_match reads only the match: the actions (or their absence) do not matter."""
    expected = FlowMatch(V4, destination=prefix("10.0.0.1/32"))
    assert expected == parse_match("destination 10.0.0.1/32 redirect 6:302")
    assert expected == parse_match("destination 10.0.0.1/32")


def test_tokenize() -> None:
    """Braces and semicolons are blanks, brackets are tokens of their own."""
    expected = ["match", "protocol", "[", "=tcp", "]", "then", "discard"]
    assert expected == tokenize("match{protocol [=tcp];}then{discard;}")


# ---------------------------------------------------------------------------------------
# Errors


def test_unknown_keyword() -> None:
    """An unknown word is refused and quoted in the message."""
    error = refused(None, parse_rule, "destination 10.0.0.1/32 bogus discard")
    assert "'bogus'" in error.message


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("protocol =6 protocol =17 discard", "protocol"),
        ("protocol =6 next-header =17 discard", "protocol"),
        ("destination 10.0.0.1/32 destination-ipv4 10.0.0.2/32 discard", "destination"),
        ("source 10.0.0.1/32 source 10.0.0.2/32 discard", "source"),
        ("destination 10.0.0.1/32 discard discard", "discard"),
        ("destination 10.0.0.1/32 redirect 6:302 redirect 6:303", "redirect"),
    ],
)
def test_component_given_twice(text: str, field: str) -> None:
    """A component (or action) given twice is refused, naming it."""
    error = refused(field, parse_rule, text)
    assert "twice" in error.message


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("protocol discard", "protocol"),
        ("destination-port", "destination-port"),
        ("destination", "destination"),
        ("destination 10.0.0.1/32 rate-limit", "rate-limit"),
        ("destination 10.0.0.1/32 redirect discard", "redirect"),
        ("destination 10.0.0.1/32 mark", "mark"),
        ("tcp-flags [ ] discard", "tcp-flags"),
    ],
)
def test_value_missing(text: str, field: str) -> None:
    """A keyword without its value is refused, naming it."""
    refused(field, parse_rule, text)


def test_unclosed_bracket() -> None:
    """A list that is never closed is refused, naming the component."""
    error = refused("protocol", parse_rule, "destination 10.0.0.1/32 protocol [ =6 =17 discard")
    assert "'['" in error.message


def test_accept_is_no_action() -> None:
    """``accept`` is refused with a message saying what to use instead."""
    error = refused(None, parse_rule, "match destination 10.0.0.1/32 then accept")
    assert "accept" in error.message


def test_mixed_families() -> None:
    """IPv4 and IPv6 prefixes in one rule are refused, naming the second prefix."""
    refused("source", parse_rule, "destination 10.0.0.1/32 source 2001:db8::1/128 discard")


@pytest.mark.parametrize(
    ("text", "family"),
    [("ipv6 destination 10.0.0.1/32 discard", None), ("destination 10.0.0.1/32 discard", V6)],
)
def test_family_word_or_hint_against_prefixes(text: str, family: Family | None) -> None:
    """A family word or hint that contradicts the prefixes is refused."""
    expected = "ipv6 rule with ipv4 prefixes"
    assert expected == refused(None, parse_rule, text, family).message


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("destination 10.0.0.1/8 discard", "destination"),  # host bits
        ("destination 10.0.0.0/8 4 discard", "destination"),  # IPv4 offset
        ("source 2001:db8::/64 64 discard", "source"),  # offset not below the length
        ("destination nowhere discard", "destination"),
        ("destination-port =http discard", "destination-port"),
        ("destination-port =70000 discard", "destination-port"),
        ("destination-port &=80 discard", "destination-port"),  # nothing to AND with
        ("destination-port >=1024&& discard", "destination-port"),
        ("packet-length true: discard", "packet-length"),
        ("packet-length false:x discard", "packet-length"),
        ("packet-length true:70000 discard", "packet-length"),
        ("tcp-flags syn+bogus discard", "tcp-flags"),
        ("fragment is-fragment+maybe discard", "fragment"),
        ("ipv6 fragment dont-fragment discard", "fragment"),
        ("flow-label =1 destination 10.0.0.1/32 discard", "flow-label"),
        ("protocol udp tcp-flags syn discard", "protocol"),
        ("protocol =6 rate-limit fast", "rate-limit"),
        ("protocol =6 rate-limit -5", "rate-limit"),
        ("protocol =6 rate-limit nan", "rate-limit"),
        ("protocol =6 mark 64", "mark"),
        ("protocol =6 mark ef", "mark"),
        ("protocol =6 redirect nowhere", "redirect"),
        ("protocol =6 action log", "action"),
        ("protocol =6 discard rate-limit 5", "discard"),
        ("protocol =6 discard redirect 6:302", "discard"),
    ],
)
def test_bad_values_name_the_part(text: str, field: str) -> None:
    """Bad prefixes, terms and actions are refused with the part named."""
    refused(field, parse_rule, text)


def test_no_action() -> None:
    """A rule without an action is refused (parse_match accepts the same text)."""
    error = refused(None, parse_rule, "destination 10.0.0.1/32")
    assert "needs an action" in error.message


WORDS = [
    *("destination", "source", "protocol", "port", "tcp-flags", "fragment", "flow-label"),
    *("icmp-type", "discard", "rate-limit", "redirect", "mark", "action", "route", "match"),
    *("then", "ipv4", "ipv6", "[", "]", "{", "}", ";", "&", "10.0.0.0/8", "2001:db8::/64"),
    *("8", "=6", "=S&!A", "!=", "true", "true:5", "0x10", "not-a-fragment", "sample", "6:302"),
    *("1.2.3.4:5", "-1", "nan", "1e400", "²", "=tcp", ">=1024&<=2048", "accept"),
]


@settings(max_examples=300)
@given(st.lists(st.sampled_from(WORDS) | st.text(max_size=6), max_size=10))
@example(["destination", "²", "discard"])
@example(["rate-limit", "1e400", "protocol", "=6"])
def test_any_text_raises_only_validation_error(words: list[str]) -> None:
    """Whatever the text, parse_rule returns a rule or raises ValidationError: never
    another exception (an API client gets INVALID_ARGUMENT, not a crash)."""
    with contextlib.suppress(ValidationError):
        parse_rule(" ".join(words))


# ---------------------------------------------------------------------------------------
# Rendering


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "announce flow route destination 10.0.0.1/32 protocol [ =tcp =udp ] "
            "destination-port >=1024&<=2048 rate-limit 9600",
            "destination 10.0.0.1/32 protocol [ =tcp =udp ] destination-port >=1024&<=2048 "
            "rate-limit 9600",
        ),
        (
            "match { tcp-flags [ syn ]; protocol 6; destination 10.0.0.1; } then { discard; }",
            "destination 10.0.0.1/32 protocol =tcp tcp-flags S discard",
        ),
        (
            "protocol 47 fragment not-a-fragment rate-limit 1.5",
            "ipv4 protocol =gre fragment !is-fragment rate-limit 1.5",
        ),
        (
            "flow-label =5 redirect 65000L:1 action terminal",
            "ipv6 flow-label =5 redirect 65000L:1 action terminal",
        ),
        (
            "tcp-flags 0 mark 0 action sample-terminal",
            "ipv4 tcp-flags 0x0 mark 0 action sample-terminal",
        ),
        (
            "packet-length [ TRUE:0x10 false:0 >=100&true ] discard",
            # true:v is written <v OR >=v (FRR 8.4 resets the session on lt|gt|eq)
            "ipv4 packet-length [ <16 >=16 false >=100&<0 >=100&>=0 ] discard",
        ),
    ],
)
def test_render_canonical_text(text: str, expected: str) -> None:
    """render_rule writes the canonical form: components in type order, protocol names,
    TCP flag letters, the family word when there is no prefix."""
    assert expected == render_rule(parse_rule(text))


def test_component_texts() -> None:
    """component_texts gives each present component's canonical text by keyword."""
    match = parse_match(
        "destination 2001:db8::/64 8 protocol [ =6 =17 ] tcp-flags =S&!A fragment is-fragment"
    )
    expected: dict[str, Any] = {
        "destination": "1:db8::/64/8",
        "protocol": "[ =tcp =udp ]",
        "tcp-flags": "=S&!A",
        "fragment": "is-fragment",
    }
    assert expected == component_texts(match)


# ---------------------------------------------------------------------------------------
# The component table: every keyword and alias the grammar reads


def _sample(component: Component) -> str:
    """A value the component accepts, as text."""
    if component.kind is ComponentKind.PREFIX:
        return "2001:db8::/64"
    return {"tcp-flags": "=S", "fragment": "is-fragment"}.get(component.keyword, "=1")


@pytest.mark.parametrize(
    ("word", "component"),
    [(word, c) for c in COMPONENTS for word in (c.keyword, *c.aliases)],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_every_keyword_of_the_table_is_read(word: str, component: Component) -> None:
    """Each keyword and alias of the component table parses as its component, which
    renders under its keyword."""
    match = parse_match(f"ipv6 {word} {_sample(component)}")
    assert getattr(match, component.attribute)
    assert [component.keyword] == list(component_texts(match))


def test_rule_dict_shape() -> None:
    """rule_dict gives the stable JSON shape of a rule: family, canonical text, each
    component's text, the actions, the NLRI in hex."""
    rule = parse_rule(
        "destination 192.0.2.1/32 protocol tcp destination-port >=1024&<=2048 "
        "rate-limit 125000 redirect 65000L:7 action sample"
    )
    expected = {
        "family": "ipv4",
        "text": "destination 192.0.2.1/32 protocol =tcp destination-port >=1024&<=2048 "
        "rate-limit 125000 redirect 65000L:7 action sample",
        "match": {
            "destination": "192.0.2.1/32",
            "protocol": "=tcp",
            "destination-port": ">=1024&<=2048",
        },
        "actions": {
            "discard": False,
            "rate_limit": 125000.0,
            "redirect": "65000L:7",
            "mark": None,
            "sample": True,
            "terminal": False,
        },
        "nlri": rule.match.encode().hex(),
    }
    assert expected == rule_dict(rule)
    discard = rule_dict(parse_rule("ipv6 flow-label =5 discard"))["actions"]
    expected_discard = (True, None)
    assert expected_discard == (discard["discard"], discard["rate_limit"])


def test_bad_prefixes_are_named_not_taken_for_a_family_mix() -> None:
    """A /129 and a word where prefixes belong are reported as what they are, both of
    them, naming the first part; not as "mixes IPv4 and IPv6 prefixes"."""
    with pytest.raises(ValidationError) as caught:
        parse_rule("source 3001:1:a::10/129 destination x redirect 6:302")
    assert caught.value.field == "source"
    assert (
        str(caught.value)
        == "source: not a prefix: '3001:1:a::10/129'; destination: not a prefix: 'x'"
    )
