"""Properties of the model, tried on generated rules and routes (hypothesis).

Every component of the component table in both families, every operator, every action:
a rule's text parses back to the same rule, its JSON carries the same rule, its GoBGP
path decodes back to it; and anything the grammar refuses is refused with a
ValidationError, whatever the text. Examples are derandomized (the same cases in every
run, no example database) so that CI sees what a developer saw.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import string
from typing import Any

from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from trafex.bgp.attributes import DecodeError, actions_from_attributes
from trafex.bgp.client import nlri_key
from trafex.bgp.encode import decode_path, flow_path, route_path
from trafex.bgp.stubs import gobgp_pb2
from trafex.model.actions import FlowActions, RouteTarget, RouteTargetKind
from trafex.model.components import COMPONENTS, FRAGMENT_DONT, Component, ComponentKind, Family
from trafex.model.errors import ValidationError
from trafex.model.flowspec import FlowMatch, FlowPrefix, FlowRule
from trafex.model.grammar import ACTION_KEYWORDS, parse_component, parse_match, parse_rule
from trafex.model.nlri import decode_key, decode_nlri
from trafex.model.render import render_rule, rule_dict
from trafex.model.route import (
    WELL_KNOWN_COMMUNITIES,
    UnicastRoute,
    parse_route,
    route_dict,
    route_from_dict,
    route_text,
)
from trafex.model.terms import BitmaskTerm, NumericTerm

PROPERTY = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
FUZZ = settings(PROPERTY, max_examples=500)

NUMERIC_OPS = ("=", "!=", "<", "<=", ">", ">=", "true", "false")


# -- strategies ---------------------------------------------------------------------------


@st.composite
def networks(draw: st.DrawFn, family: Family) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    bits = family.bits
    length = draw(st.integers(0, bits))
    address = draw(st.integers(0, (1 << bits) - 1)) >> (bits - length) << (bits - length)
    if family is Family.IPV4:
        return ipaddress.IPv4Network((address, length))
    return ipaddress.IPv6Network((address, length))


@st.composite
def flow_prefixes(draw: st.DrawFn, family: Family) -> FlowPrefix:
    network = draw(networks(family))
    offset = 0
    if family is Family.IPV6 and network.prefixlen > 1 and draw(st.booleans()):
        offset = draw(st.integers(1, network.prefixlen - 1))
    return FlowPrefix(network, offset)


@st.composite
def numeric_terms(draw: st.DrawFn, maximum: int) -> tuple[NumericTerm, ...]:
    count = draw(st.integers(1, 4))
    terms = []
    for index in range(count):
        op = draw(st.sampled_from(NUMERIC_OPS))
        value = draw(st.one_of(st.integers(0, maximum), st.sampled_from((0, maximum))))
        and_ = index > 0 and draw(st.booleans())
        terms.append(NumericTerm.of(op, value, and_=and_))
    return tuple(terms)


@st.composite
def bitmask_terms(draw: st.DrawFn, maximum: int, family: Family) -> tuple[BitmaskTerm, ...]:
    count = draw(st.integers(1, 3))
    terms = []
    for index in range(count):
        value = draw(st.integers(0, maximum))
        if maximum == 0x0F and family is Family.IPV6:
            value &= ~FRAGMENT_DONT
        terms.append(
            BitmaskTerm(
                value,
                match=draw(st.booleans()),
                not_=draw(st.booleans()),
                and_=index > 0 and draw(st.booleans()),
            )
        )
    return tuple(terms)


def _component_values(component: Component, family: Family) -> st.SearchStrategy[Any]:
    if component.kind is ComponentKind.PREFIX:
        return flow_prefixes(family)
    if component.bitmask:
        return bitmask_terms(component.maximum, family)
    return numeric_terms(component.maximum)


@st.composite
def matches(draw: st.DrawFn, family: Family | None = None) -> FlowMatch:
    """A valid match: any subset (at least one) of the family's components."""
    fam = family or draw(st.sampled_from(Family))
    kwargs: dict[str, Any] = {}
    for component in COMPONENTS:
        if fam in component.families and draw(st.integers(0, 2)) == 0:
            kwargs[component.attribute] = draw(_component_values(component, fam))
    assume(kwargs)
    try:
        return FlowMatch(fam, **kwargs)
    except ValidationError:
        assume(False)  # too many != in a chain, or icmp/tcp-flags with another protocol
        raise


route_targets = st.one_of(
    st.builds(
        RouteTarget,
        st.just(RouteTargetKind.AS2),
        st.integers(0, 0xFFFF),
        st.integers(0, 0xFFFFFFFF),
    ),
    st.builds(
        RouteTarget,
        st.just(RouteTargetKind.AS4),
        st.integers(0, 0xFFFFFFFF),
        st.integers(0, 0xFFFF),
    ),
    st.builds(
        RouteTarget,
        st.just(RouteTargetKind.IPV4),
        st.integers(0, 0xFFFFFFFF).map(ipaddress.IPv4Address),
        st.integers(0, 0xFFFF),
    ),
)


@st.composite
def flow_actions(draw: st.DrawFn) -> FlowActions:
    rate = draw(
        st.one_of(
            st.none(),
            st.just(0.0),
            st.integers(1, 10**12).map(float),
            st.floats(0, 3.4e38, allow_nan=False, allow_infinity=False),
        )
    )
    discard = rate == 0.0
    redirect = None if discard else draw(st.one_of(st.none(), route_targets))
    mark = None if discard else draw(st.one_of(st.none(), st.integers(0, 63)))
    sample, terminal = draw(st.booleans()), draw(st.booleans())
    try:
        return FlowActions(rate, redirect, mark, sample, terminal)
    except ValidationError:
        assume(False)  # no action at all
        raise


rules = st.builds(FlowRule, matches(), flow_actions())


@st.composite
def routes(draw: st.DrawFn) -> UnicastRoute:
    family = draw(st.sampled_from(Family))
    prefix = draw(networks(family))
    hop_bits = draw(st.one_of(st.none(), st.integers(1, (1 << family.bits) - 1)))
    hop: ipaddress.IPv4Address | ipaddress.IPv6Address | None = None
    if hop_bits is not None:
        hop = (
            ipaddress.IPv4Address(hop_bits)
            if prefix.version == 4
            else ipaddress.IPv6Address(hop_bits)
        )
    u32 = st.integers(0, 0xFFFFFFFF)
    return UnicastRoute(
        prefix=prefix,
        next_hop=hop,
        communities=tuple(draw(st.lists(u32, max_size=4))),
        large_communities=tuple(draw(st.lists(st.tuples(u32, u32, u32), max_size=3))),
        local_preference=draw(st.one_of(st.none(), u32)),
        med=draw(st.one_of(st.none(), u32)),
    )


# -- rules: text, JSON, NLRI and the GoBGP path are each the same rule ---------------------


@PROPERTY
@given(rules)
def test_rule_text_parses_back_to_the_rule(rule: FlowRule) -> None:
    """parse_rule(render_rule(r)) == r, and rendering that gives the same text."""
    text = render_rule(rule)
    again = parse_rule(text)
    assert again == rule, text
    assert render_rule(again) == text


@PROPERTY
@given(rules)
def test_rule_json_carries_the_rule(rule: FlowRule) -> None:
    """A rule's JSON (through json.dumps/loads) gives back the same rule three ways: its
    text parses to it, its NLRI decodes to its match, each component's text parses to
    the component's terms."""
    data = json.loads(json.dumps(rule_dict(rule)))
    assert parse_rule(data["text"]) == rule
    family = Family(data["family"])
    assert decode_nlri(family, bytes.fromhex(data["nlri"])) == rule.match
    assert parse_match(f"{family.value} " + " ".join(f"{k} {v}" for k, v in data["match"].items()))
    for keyword, text in data["match"].items():
        if keyword not in ("destination", "source"):
            expected = getattr(rule.match, keyword.replace("-", "_"))
            values = text.strip("[] ").split()
            assert parse_component(keyword, values, family) == expected


@PROPERTY
@given(rules)
def test_rule_key_and_nlri_decode_to_the_match(rule: FlowRule) -> None:
    """decode_nlri(encode(m)) == m, and the key (the store's identity) decodes too."""
    assert decode_nlri(rule.family, rule.match.encode()) == rule.match
    assert decode_key(rule.key) == rule.match


@PROPERTY
@given(rules)
def test_rule_gobgp_path_decodes_to_the_rule(rule: FlowRule) -> None:
    """The GoBGP path trafex announces, serialized and read back as GoBGP's RIB would
    list it, decodes to the same rule; the withdrawal carries the same NLRI."""
    path = _wire(flow_path(rule))
    assert decode_path(path) == rule
    assert flow_path(rule.match, withdraw=True).nlri_binary == path.nlri_binary
    # As GobgpClient.rib() reads GoBGP's RIB (the reconciler's view): key and actions.
    assert nlri_key(rule.family.value, path.nlri_binary) == rule.key
    assert actions_from_attributes(path.pattrs_binary) == rule.actions


# -- routes ---------------------------------------------------------------------------------


@PROPERTY
@given(routes())
def test_route_json_and_text_parts_give_the_route(route: UnicastRoute) -> None:
    """route_from_dict(route_dict(r)) == r (through JSON), and the text names every part."""
    data = json.loads(json.dumps(route_dict(route)))
    assert route_from_dict(data) == route
    assert (
        parse_route(
            data["prefix"],
            data["next_hop"] or "",
            data["communities"],
            data["large_communities"],
            data["local_preference"],
            data["med"],
        )
        == route
    )
    assert route_text(route).startswith(f"{route.prefix} next-hop ")


@PROPERTY
@given(routes())
def test_route_gobgp_path_decodes_to_the_route(route: UnicastRoute) -> None:
    """route_path(r), serialized and read back, decodes to r."""
    assert decode_path(_wire(route_path(route))) == route


# -- anything refused is a ValidationError ---------------------------------------------------

_WORDS = sorted(
    {c.keyword for c in COMPONENTS}
    | {a for c in COMPONENTS for a in c.aliases}
    | set(ACTION_KEYWORDS)
    | {"announce", "withdraw", "flow", "route", "match", "then", "accept", "ipv4", "ipv6"}
    | {"inet", "inet6", "discard", "sample", "terminal", "sample-terminal", "not-a-fragment"}
    | {"is-fragment", "dont-fragment", "first-fragment", "last-fragment", "tcp", "udp", "icmp"}
    | {"syn+ack", "echo-request", "self", "no-export", "blackhole"}
)
_VALUES = (
    "10.0.0.1/32", "10.0.0.1/33", "10.0.0.1/24", "10.0.0.0/8/4", "0.0.0.0/0", "1.2.3.4",
    "3001:1:a::10/128", "3001::/64/8", "3001::/64/300", "3001::/64/-1", "::/0", "fe80::1%eth0",
    "::ffff:1.2.3.4/128", "fe80::/64%eth0", "fe80::1%1/128", "3001::/129", "x", "6:302",
    "65536:1", "65000L:7", "1.2.3.4:5",
    "1.2.3.4:70000", "L:1", ":", "=6", "!=6", ">=1024&<=2048", "&=5", "=5&", "&&", "true",
    "false:7", "true:99999999999", "=SA", "!=S", "=!A", "0x10", "0xffffffffffffffffff",
    "-1", "99999999999999999999", "nan", "inf", "-inf", "1e999", "1e38", "3.5e38", "[",
    "]", "{", "}", ";", "&", "+", "|", ",", "8", "0", "==", "=", "!", "",
)  # fmt: skip
_TOKENS = st.sampled_from((*_WORDS, *_VALUES))
_PHRASE = st.tuples(st.sampled_from(_WORDS), st.lists(st.sampled_from(_VALUES), max_size=2))
# Tokens in any order, and keyword-value phrases (more of them reach the model's checks).
token_soups = st.lists(_TOKENS, max_size=14).map(" ".join) | st.lists(_PHRASE, max_size=6).map(
    lambda phrases: " ".join(f"{word} {' '.join(values)}" for word, values in phrases)
)


def _wire(path: Any) -> Any:
    """A GoBGP path as GoBGP gets it: serialized and parsed."""
    return gobgp_pb2.Path.FromString(path.SerializeToString())


def _refused_or_valid(text: str) -> None:
    """parse_rule and parse_match answer a rule or a ValidationError, nothing else; an
    accepted rule renders and parses back to itself, and its GoBGP path decodes to it."""
    try:
        rule = parse_rule(text)
    except ValidationError as error:
        assert str(error)
    else:
        assert parse_rule(render_rule(rule)) == rule
        assert decode_path(_wire(flow_path(rule))) == rule
    with contextlib.suppress(ValidationError):
        parse_match(text)


@FUZZ
@given(st.text())
def test_any_text_is_a_rule_or_a_validation_error(text: str) -> None:
    """Arbitrary text never raises anything but ValidationError."""
    _refused_or_valid(text)


@FUZZ
@given(token_soups)
@example("destination fe80::1%eth0 discard")
@example("source fe80::/64%eth0 protocol =6 rate-limit 10")
def test_any_token_soup_is_a_rule_or_a_validation_error(text: str) -> None:
    """The grammar's own keywords and values in any order: a rule or a ValidationError."""
    _refused_or_valid(text)


@FUZZ
@given(st.text(alphabet=string.printable, max_size=40))
@example("fe80::1%eth0")
@example("fe80::/64%eth0")
def test_parts_refuse_with_validation_error(text: str) -> None:
    """Every parser of a part (prefix, route-target, route, community) answers a value
    or a ValidationError; a route it accepts goes to GoBGP and back unchanged."""
    for parse in (
        lambda: FlowPrefix.parse(text),
        lambda: RouteTarget.parse(text),
        lambda: parse_route(text),
        lambda: parse_route("10.0.0.0/8", text),
        lambda: parse_route("3001::/64", text),
        lambda: parse_route("10.0.0.0/8", "", [text]),
        lambda: parse_route("10.0.0.0/8", "", [], [text]),
        lambda: decode_key(text),
    ):
        try:
            value = parse()
        except ValidationError:
            continue
        if isinstance(value, UnicastRoute):
            assert decode_path(_wire(route_path(value))) == value
            assert "%" not in route_text(value)
        if isinstance(value, FlowPrefix):
            assert "%" not in str(value)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=8,
)


@FUZZ
@given(
    st.fixed_dictionaries(
        {},
        optional={
            "family": st.sampled_from(["ipv4", "ipv6", "x"]) | _json,
            "prefix": st.sampled_from(["10.0.0.0/8", "3001::/64", "x"]) | _json,
            "next_hop": st.sampled_from(["1.2.3.4", "::1", "self"]) | _json,
            "communities": st.lists(st.sampled_from([*WELL_KNOWN_COMMUNITIES, "1:2"])) | _json,
            "large_communities": st.lists(st.sampled_from(["1:2:3", "x"])) | _json,
            "local_preference": _json,
            "med": _json,
        },
    )
    | _json
)
def test_route_json_refused_with_validation_error(data: Any) -> None:
    """Any JSON value as a route: a route or a ValidationError."""
    with contextlib.suppress(ValidationError):
        route_from_dict(data)


@FUZZ
@given(st.sampled_from(Family), st.binary(max_size=64))
def test_nlri_bytes_decode_or_refuse(family: Family, data: bytes) -> None:
    """Arbitrary NLRI bytes: a match that encodes back to them, or a ValidationError; a
    GoBGP path carrying them: a rule or a DecodeError/ValidationError."""
    try:
        match = decode_nlri(family, data)
    except ValidationError:
        pass
    else:
        assert match.encode() == data
    path = gobgp_pb2.Path(
        family=gobgp_pb2.Family(
            afi=gobgp_pb2.Family.AFI_IP if family is Family.IPV4 else gobgp_pb2.Family.AFI_IP6,
            safi=gobgp_pb2.Family.SAFI_FLOW_SPEC_UNICAST,
        ),
        nlri_binary=bytes([len(data)]) + data if len(data) < 240 else data,
    )
    with contextlib.suppress(DecodeError, ValidationError):
        decode_path(path)
