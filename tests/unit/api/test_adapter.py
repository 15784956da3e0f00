"""Unit tests for trafex.api.adapter: trafex.v1 API messages ⇄ the model's values."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.helpers import refused
from trafex.api import adapter
from trafex.api.stubs import trafex_pb2 as pb
from trafex.model.flowspec import (
    BitmaskTerm,
    Family,
    FlowActions,
    FlowMatch,
    FlowPrefix,
    FlowRule,
    NumericTerm,
    RouteTarget,
    RouteTargetKind,
)
from trafex.model.grammar import parse_rule, render_rule
from trafex.model.intent import FlowIntent, IntentMeta, RouteIntent
from trafex.model.route import UnicastRoute, parse_route

UNKNOWN_ENUM: Any = 99  # an enum value this version of the API does not define
AND: dict[str, Any] = {"and": True}  # "and" is a Python keyword

# ---------------------------------------------------------------------------------------
# FlowSpec round trips


@settings(max_examples=200)
@given(st.from_type(FlowMatch))
def test_match_round_trip(match: FlowMatch) -> None:
    """match_from_proto(match_to_proto(m)) == m, also after serialising the message."""
    message = adapter.match_to_proto(match)
    assert match == adapter.match_from_proto(message)
    assert match == adapter.match_from_proto(pb.FlowMatch.FromString(message.SerializeToString()))


@settings(max_examples=200)
@given(st.from_type(FlowActions))
def test_actions_round_trip(actions: FlowActions) -> None:
    """actions_from_proto(actions_to_proto(a)) == a (the rate is a float32 both sides)."""
    message = pb.FlowActions.FromString(adapter.actions_to_proto(actions).SerializeToString())
    assert actions == adapter.actions_from_proto(message)


@settings(max_examples=200)
@given(st.from_type(FlowRule))
def test_rule_round_trip(rule: FlowRule) -> None:
    """rule_from_proto(rule_to_spec(r)) == r: the structured form carries everything."""
    assert rule == adapter.rule_from_proto(adapter.rule_to_spec(rule))
    assert rule.match == adapter.rule_match_from_proto(adapter.rule_to_spec(rule))


def test_match_to_proto_fields() -> None:
    """Prefixes keep their offset apart, numeric terms get their operator enum, bitmask
    terms their match/not/and bits."""
    rule = parse_rule(
        "destination 2001:db8::/64 8 packet-length >=100&<=200 tcp-flags !=SA discard"
    )
    message = adapter.match_to_proto(rule.match)
    expected: dict[str, Any] = {
        "family": pb.ADDRESS_FAMILY_IPV6,
        "destination": ("1:db8::/64", 8),
        "packet_length": [
            (pb.NUMERIC_OP_GE, 100, False),
            (pb.NUMERIC_OP_LE, 200, True),
        ],
        "tcp_flags": [(0x12, True, True, False)],
    }
    actual = {
        "family": message.family,
        "destination": (message.destination.prefix, message.destination.offset),
        "packet_length": [(t.op, t.value, getattr(t, "and")) for t in message.packet_length],
        "tcp_flags": [
            (t.value, t.match, getattr(t, "not"), getattr(t, "and")) for t in message.tcp_flags
        ],
    }
    assert expected == actual


def test_actions_to_proto_fields() -> None:
    """Discard is a flag without a rate; a rate is rate_limit; redirect keeps its kind and
    its global part as text."""
    discard = adapter.actions_to_proto(FlowActions(rate=0.0, terminal=True))
    assert discard.discard
    assert not discard.HasField("rate_limit")
    limited = adapter.actions_to_proto(
        FlowActions(rate=125000.0, redirect=RouteTarget.parse("192.0.2.1:7"), mark=46)
    )
    expected = (False, 125000.0, pb.ROUTE_TARGET_KIND_IPV4, "192.0.2.1", 7, 46)
    actual = (
        limited.discard,
        limited.rate_limit,
        limited.redirect.kind,
        getattr(limited.redirect, "global"),
        limited.redirect.local,
        limited.mark_dscp,
    )
    assert expected == actual


# ---------------------------------------------------------------------------------------
# From a client's message


def test_rule_from_text() -> None:
    """A FlowSpec given as text is parsed with the grammar."""
    text = "destination 10.0.0.1/32 protocol tcp discard"
    assert parse_rule(text) == adapter.rule_from_proto(pb.FlowSpec(text=text))
    assert parse_rule(text).match == adapter.rule_match_from_proto(pb.FlowSpec(text=text))


def test_rule_from_structure() -> None:
    """A FlowSpec given as match + actions gives the same rule as its text."""
    spec = pb.FlowSpec(
        match=pb.FlowMatch(
            destination=pb.FlowPrefix(prefix="10.0.0.1"),
            protocol=[pb.NumericTerm(op=pb.NUMERIC_OP_EQ, value=6)],
        ),
        actions=pb.FlowActions(discard=True),
    )
    expected = parse_rule("destination 10.0.0.1/32 protocol =6 discard")
    assert expected == adapter.rule_from_proto(spec)


def test_rule_with_text_and_structure_is_refused() -> None:
    """Text and match/actions together are ambiguous: refused."""
    both = pb.FlowSpec(text="protocol =6 discard", actions=pb.FlowActions(discard=True))
    error = refused(None, adapter.rule_from_proto, both)
    assert "either text or match/actions" in error.message


def test_rule_without_match_is_refused() -> None:
    """An empty FlowSpec (or actions alone) is refused; so is deleting by nothing."""
    refused(None, adapter.rule_from_proto, pb.FlowSpec())
    refused(None, adapter.rule_from_proto, pb.FlowSpec(actions=pb.FlowActions(discard=True)))
    refused(None, adapter.rule_match_from_proto, pb.FlowSpec())


@pytest.mark.parametrize(
    ("match", "expected"),
    [
        # family unspecified: from the prefix
        (
            pb.FlowMatch(source=pb.FlowPrefix(prefix="2001:db8::/32")),
            FlowMatch(Family.IPV6, source=FlowPrefix(ipaddress.ip_network("2001:db8::/32"))),
        ),
        # family unspecified and no prefix: IPv6 when there is a flow-label
        (
            pb.FlowMatch(flow_label=[pb.NumericTerm(value=5)]),
            FlowMatch(Family.IPV6, flow_label=(NumericTerm.of("=", 5),)),
        ),
        # else IPv4; an unspecified operator is =
        (
            pb.FlowMatch(dscp=[pb.NumericTerm(value=46)]),
            FlowMatch(Family.IPV4, dscp=(NumericTerm.of("=", 46),)),
        ),
        (
            pb.FlowMatch(family=pb.ADDRESS_FAMILY_IPV6, protocol=[pb.NumericTerm(value=6)]),
            FlowMatch(Family.IPV6, protocol=(NumericTerm.of("=", 6),)),
        ),
        # an empty prefix message is no prefix
        (
            pb.FlowMatch(destination=pb.FlowPrefix(), fragment=[pb.BitmaskTerm(value=2)]),
            FlowMatch(Family.IPV4, fragment=(BitmaskTerm(2),)),
        ),
        (
            pb.FlowMatch(destination=pb.FlowPrefix(prefix="2001:db8::1", offset=64)),
            FlowMatch(
                Family.IPV6,
                destination=FlowPrefix(ipaddress.ip_network("::1/128"), 64),
            ),
        ),
    ],
)
def test_match_from_proto_inference(match: Any, expected: FlowMatch) -> None:
    """The family is inferred when unspecified, bare addresses are host prefixes and an
    unset operator means =."""
    assert expected == adapter.match_from_proto(match)


@pytest.mark.parametrize(
    ("match", "field"),
    [
        (pb.FlowMatch(destination=pb.FlowPrefix(prefix="nowhere")), "destination"),
        (pb.FlowMatch(source=pb.FlowPrefix(prefix="10.0.0.1/8")), "source"),
        (pb.FlowMatch(source=pb.FlowPrefix(prefix="10.0.0.0/8", offset=4)), "source"),
        (pb.FlowMatch(destination=pb.FlowPrefix(prefix="2001:db8::/64", offset=64)), "destination"),
        (
            pb.FlowMatch(family=pb.ADDRESS_FAMILY_IPV4, destination=pb.FlowPrefix(prefix="::1")),
            "destination",
        ),
        (pb.FlowMatch(port=[pb.NumericTerm(op=UNKNOWN_ENUM, value=1)]), "port"),
        (pb.FlowMatch(port=[pb.NumericTerm(value=70000)]), "port"),
        (pb.FlowMatch(dscp=[pb.NumericTerm(value=1, **AND)]), "dscp"),
        (
            pb.FlowMatch(family=pb.ADDRESS_FAMILY_IPV4, flow_label=[pb.NumericTerm(value=1)]),
            "flow-label",
        ),
    ],
)
def test_match_from_proto_errors(match: Any, field: str) -> None:
    """Bad prefixes, offsets, operators and values are refused, naming the component."""
    refused(field, adapter.match_from_proto, match)


def test_empty_match_is_refused() -> None:
    """A match message without any component is refused."""
    refused(None, adapter.match_from_proto, pb.FlowMatch(family=pb.ADDRESS_FAMILY_IPV4))


@pytest.mark.parametrize(
    ("actions", "field"),
    [
        (pb.FlowActions(discard=True, rate_limit=5.0), "discard"),
        (pb.FlowActions(rate_limit=-1.0), "rate-limit"),
        (pb.FlowActions(mark_dscp=64), "mark"),
        (pb.FlowActions(discard=True, mark_dscp=1), "discard"),
        (pb.FlowActions(redirect=pb.RouteTarget(kind=UNKNOWN_ENUM, local=1)), "redirect"),
        (
            pb.FlowActions(
                redirect=pb.RouteTarget(kind=pb.ROUTE_TARGET_KIND_AS2, local=1, **{"global": "x"})
            ),
            "redirect",
        ),
        (
            pb.FlowActions(
                redirect=pb.RouteTarget(
                    kind=pb.ROUTE_TARGET_KIND_IPV4, local=1, **{"global": "1.2.3"}
                )
            ),
            "redirect",
        ),
        (
            pb.FlowActions(
                redirect=pb.RouteTarget(
                    kind=pb.ROUTE_TARGET_KIND_AS2, local=1, **{"global": "70000"}
                )
            ),
            "redirect",
        ),
    ],
)
def test_actions_from_proto_errors(actions: Any, field: str) -> None:
    """Contradictory or out-of-range actions are refused, naming the action."""
    refused(field, adapter.actions_from_proto, actions)


def test_unset_redirect_kind_is_no_redirect() -> None:
    """A redirect message with an unspecified kind is no redirect."""
    actions = pb.FlowActions(terminal=True, redirect=pb.RouteTarget(local=5))
    assert FlowActions(terminal=True) == adapter.actions_from_proto(actions)


def test_redirect_kinds_from_proto() -> None:
    """Each kind reads its global part: an AS number or an IPv4 address."""
    expected = [
        RouteTarget(RouteTargetKind.AS2, 6, 302),
        RouteTarget(RouteTargetKind.AS4, 65000, 5),
        RouteTarget(RouteTargetKind.IPV4, ipaddress.IPv4Address("192.0.2.1"), 7),
    ]
    actual = []
    for kind, glob, local in [
        (pb.ROUTE_TARGET_KIND_AS2, "6", 302),
        (pb.ROUTE_TARGET_KIND_AS4, "65000", 5),
        (pb.ROUTE_TARGET_KIND_IPV4, "192.0.2.1", 7),
    ]:
        target = pb.RouteTarget(kind=kind, local=local)
        setattr(target, "global", glob)
        actual.append(adapter.actions_from_proto(pb.FlowActions(redirect=target)).redirect)
    assert expected == actual


# ---------------------------------------------------------------------------------------
# Intents and routes


def test_flow_to_proto() -> None:
    """A stored rule carries its meta, structure, canonical text and NLRI hex."""
    rule = parse_rule("destination 10.0.0.1/32 protocol tcp discard")
    intent = FlowIntent(IntentMeta("fs-1", "why", "cli", 10.5, 20.25, 30.0), rule)
    message = adapter.flow_to_proto(intent)
    expected = (
        ("fs-1", "why", "cli", 10.5, 20.25, 30.0),
        render_rule(rule),
        rule.match.encode().hex(),
        rule,
    )
    meta = message.meta
    actual = (
        (
            meta.id,
            meta.reason,
            meta.origin,
            adapter.from_timestamp(meta.created_at),
            adapter.from_timestamp(meta.updated_at),
            adapter.from_timestamp(meta.expires_at),
        ),
        message.text,
        message.nlri,
        FlowRule(
            adapter.match_from_proto(message.match), adapter.actions_from_proto(message.actions)
        ),
    )
    assert expected == actual


def test_meta_without_expiry() -> None:
    """An intent without expiry has no expires_at in its message, and reads back as
    None."""
    meta = IntentMeta("rt-1", "", "api", 1.0, 1.0, None)
    message = adapter.meta_to_proto(meta)
    assert not message.HasField("expires_at")
    assert meta == adapter.meta_from_proto(message)


@settings(max_examples=100)
@given(st.from_type(FlowRule))
def test_flow_intent_round_trip(rule: FlowRule) -> None:
    """flow_from_proto(flow_to_proto(i)) == i, also after serialising the message: a
    client reads back the stored rule with its meta (times to the nanosecond)."""
    intent = FlowIntent(IntentMeta("fs-0123456789ab", "why", "retransmit", 10.5, 20.25), rule)
    message = pb.FlowRule.FromString(adapter.flow_to_proto(intent).SerializeToString())
    assert intent == adapter.flow_from_proto(message)


@settings(max_examples=100)
@given(st.from_type(UnicastRoute))
def test_route_intent_round_trip(route: UnicastRoute) -> None:
    """route_intent_from_proto(route_intent_to_proto(i)) == i."""
    intent = RouteIntent(IntentMeta("rt-0123456789ab", "dns: x", "dns", 1.0, 2.0, 3602.0), route)
    message = pb.Route.FromString(adapter.route_intent_to_proto(intent).SerializeToString())
    assert intent == adapter.route_intent_from_proto(message)


def test_parse_route_from_text_parts() -> None:
    """parse_route (what trafex-ctl reads its options with) builds the same route as a
    RouteSpec with those fields; empty parts are left out."""
    expected = adapter.route_from_proto(
        pb.RouteSpec(prefix="192.0.2.1", communities=["no-export"], med=5)
    )
    assert expected == parse_route("192.0.2.1", "", ["no-export"], (), None, 5)


@settings(max_examples=200)
@given(st.from_type(UnicastRoute))
def test_route_round_trip(route: UnicastRoute) -> None:
    """route_from_proto(route_to_spec(r)) == r (communities as text, well-known ones by
    name)."""
    assert route == adapter.route_from_proto(adapter.route_to_spec(route))


def test_route_from_proto() -> None:
    """A RouteSpec from a client: bare address as host route, named communities,
    optional local-preference and MED."""
    spec = pb.RouteSpec(
        prefix="3001:10:66::5",
        next_hop="3001:10::1",
        communities=["65000:666", "no-export", "65000:666"],
        large_communities=["65000:1:2"],
        local_preference=200,
    )
    expected = UnicastRoute(
        ipaddress.ip_network("3001:10:66::5/128"),
        ipaddress.ip_address("3001:10::1"),
        communities=(65000 << 16 | 666, 0xFFFFFF01),
        large_communities=((65000, 1, 2),),
        local_preference=200,
    )
    assert expected == adapter.route_from_proto(spec)


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        (pb.RouteSpec(), "prefix"),
        (pb.RouteSpec(prefix="192.0.2.1/24"), "prefix"),
        (pb.RouteSpec(prefix="nowhere"), "prefix"),
        (pb.RouteSpec(prefix="192.0.2.1", next_hop="gateway"), "next-hop"),
        (pb.RouteSpec(prefix="192.0.2.1", next_hop="2001:db8::1"), "next-hop"),
        (pb.RouteSpec(prefix="192.0.2.1", communities=["65536:1"]), "community"),
        (pb.RouteSpec(prefix="192.0.2.1", large_communities=["1:2"]), "large-community"),
    ],
)
def test_route_from_proto_errors(spec: Any, field: str) -> None:
    """A missing or bad prefix, a bad or foreign next-hop and bad communities are
    refused, naming the field."""
    refused(field, adapter.route_from_proto, spec)


def test_route_intent_to_proto() -> None:
    """A stored route carries its meta and spec; next-hop-self is an empty next_hop."""
    route = UnicastRoute(ipaddress.ip_network("192.0.2.1/32"), communities=(0xFFFF029A,))
    message = adapter.route_intent_to_proto(RouteIntent(IntentMeta("rt-1", "", "cli", 1, 1), route))
    expected = ("rt-1", "192.0.2.1/32", "", ["blackhole"], False)
    actual = (
        message.meta.id,
        message.spec.prefix,
        message.spec.next_hop,
        list(message.spec.communities),
        message.spec.HasField("med"),
    )
    assert expected == actual


@pytest.mark.parametrize("seconds", [0.0, 1.5, 1700000000.25, 1e-9])
def test_timestamp_round_trip(seconds: float) -> None:
    """Seconds survive the trip through a protobuf Timestamp (to the microsecond: a
    float of UNIX seconds has no more precision)."""
    assert pytest.approx(seconds, abs=1e-6) == adapter.from_timestamp(adapter.timestamp(seconds))
