"""Hypothesis strategies for trafex's model values, registered by type.

Tests draw random valid values with ``st.from_type(FlowMatch)``, ``st.from_type(FlowRule)``,
``st.from_type(FlowActions)``, ``st.from_type(RouteTarget)`` and
``st.from_type(UnicastRoute)``: both families, random subsets of the components, random
term lists. (Registered here because test modules do not import each other.)

A true/false numeric term keeps a random value (it is on the wire); the text grammar
writes it as ``true:N`` / ``false:N`` (bare when N is 0), so it survives the round trip.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from hypothesis import reject
from hypothesis import strategies as st

from trafex.model.components import COMPONENT, COMPONENTS, FRAGMENT_DONT, Family
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
from trafex.model.route import UnicastRoute

NUMERIC_OPS = ("=", "!=", "<", "<=", ">", ">=", "true", "false")
# keyword: largest value the component accepts (from the model's component table)
NUMERIC_MAXIMUM = {c.keyword: c.maximum for c in COMPONENTS if c.numeric}
BITMASK_MAXIMUM = {c.keyword: c.maximum for c in COMPONENTS if c.bitmask}
U32 = 0xFFFFFFFF


@st.composite
def flow_prefixes(draw: st.DrawFn, family: Family) -> FlowPrefix:
    """A prefix of ``family`` without host bits; IPv6 ones sometimes with an offset."""
    bits = family.bits
    plen = draw(st.integers(0, bits))
    address = draw(st.integers(0, (1 << bits) - 1)) & ~((1 << (bits - plen)) - 1)
    if family is Family.IPV4:
        return FlowPrefix(ipaddress.IPv4Network((address, plen)))
    offset = draw(st.one_of(st.just(0), st.integers(0, plen - 1))) if plen >= 2 else 0
    return FlowPrefix(ipaddress.IPv6Network((address, plen)), offset)


@st.composite
def numeric_terms(draw: st.DrawFn, maximum: int) -> tuple[NumericTerm, ...]:
    """1..4 numeric terms with random operators; any term but the first may be ANDed."""
    return tuple(
        NumericTerm.of(
            draw(st.sampled_from(NUMERIC_OPS)),
            draw(st.integers(0, maximum)),
            and_=index > 0 and draw(st.booleans()),
        )
        for index in range(draw(st.integers(1, 4)))
    )


@st.composite
def bitmask_terms(draw: st.DrawFn, maximum: int, forbidden: int = 0) -> tuple[BitmaskTerm, ...]:
    """1..4 bitmask terms whose values never contain the ``forbidden`` bits."""
    return tuple(
        BitmaskTerm(
            draw(st.integers(0, maximum)) & ~forbidden,
            match=draw(st.booleans()),
            not_=draw(st.booleans()),
            and_=index > 0 and draw(st.booleans()),
        )
        for index in range(draw(st.integers(1, 4)))
    )


@st.composite
def flow_matches(draw: st.DrawFn, family: Family | None = None) -> FlowMatch:
    """A valid match: a random non-empty subset of the components of a random family."""
    fam = family if family is not None else draw(st.sampled_from(Family))
    names = [c.keyword for c in COMPONENTS if fam in c.families]
    chosen = draw(st.sets(st.sampled_from(names), min_size=1, max_size=6))
    kwargs: dict[str, Any] = {}
    for name in chosen:
        if name in ("destination", "source"):
            kwargs[name] = draw(flow_prefixes(fam))
        elif name in NUMERIC_MAXIMUM:
            kwargs[COMPONENT[name].attribute] = draw(numeric_terms(NUMERIC_MAXIMUM[name]))
        else:
            forbidden = FRAGMENT_DONT if name == "fragment" and fam is Family.IPV6 else 0
            kwargs[COMPONENT[name].attribute] = draw(
                bitmask_terms(BITMASK_MAXIMUM[name], forbidden)
            )
    try:
        return FlowMatch(fam, **kwargs)
    except ValidationError:
        reject()  # icmp or tcp-flags against a single "=protocol" of another value


@st.composite
def route_targets(draw: st.DrawFn) -> RouteTarget:
    """Any valid redirect target of the three kinds."""
    kind = draw(st.sampled_from(RouteTargetKind))
    if kind is RouteTargetKind.AS2:
        return RouteTarget(kind, draw(st.integers(0, 0xFFFF)), draw(st.integers(0, U32)))
    if kind is RouteTargetKind.AS4:
        return RouteTarget(kind, draw(st.integers(0, U32)), draw(st.integers(0, 0xFFFF)))
    address = ipaddress.IPv4Address(draw(st.integers(0, U32)))
    return RouteTarget(kind, address, draw(st.integers(0, 0xFFFF)))


@st.composite
def flow_actions(draw: st.DrawFn) -> FlowActions:
    """Valid actions: discard (alone or with sample/terminal) or any mix of the others."""
    rate = draw(st.none() | st.just(0.0) | st.floats(min_value=1.0, max_value=2.0**126, width=32))
    discard = rate == 0.0
    redirect = None if discard else draw(st.none() | route_targets())
    mark = None if discard else draw(st.none() | st.integers(0, 63))
    sample, terminal = draw(st.booleans()), draw(st.booleans())
    if rate is None and redirect is None and mark is None and not sample:
        terminal = True
    return FlowActions(rate=rate, redirect=redirect, mark=mark, sample=sample, terminal=terminal)


@st.composite
def unicast_routes(draw: st.DrawFn) -> UnicastRoute:
    """A valid route of either family, with random optional attributes."""
    bits = draw(st.sampled_from((32, 128)))
    plen = draw(st.integers(0, bits))
    address = draw(st.integers(0, (1 << bits) - 1)) & ~((1 << (bits - plen)) - 1)
    network: ipaddress.IPv4Network | ipaddress.IPv6Network
    next_hop: ipaddress.IPv4Address | ipaddress.IPv6Address | None = None
    if bits == 32:
        network = ipaddress.IPv4Network((address, plen))
        if draw(st.booleans()):
            next_hop = ipaddress.IPv4Address(draw(st.integers(1, U32)))
    else:
        network = ipaddress.IPv6Network((address, plen))
        if draw(st.booleans()):
            next_hop = ipaddress.IPv6Address(draw(st.integers(1, (1 << 128) - 1)))
    u32 = st.integers(0, U32)
    return UnicastRoute(
        prefix=network,
        next_hop=next_hop,
        communities=tuple(draw(st.lists(u32, max_size=4))),
        large_communities=tuple(draw(st.lists(st.tuples(u32, u32, u32), max_size=3))),
        local_preference=draw(st.none() | u32),
        med=draw(st.none() | u32),
    )


st.register_type_strategy(FlowMatch, flow_matches())
st.register_type_strategy(FlowActions, flow_actions())
st.register_type_strategy(
    FlowRule, st.builds(FlowRule, st.from_type(FlowMatch), st.from_type(FlowActions))
)
st.register_type_strategy(RouteTarget, route_targets())
st.register_type_strategy(UnicastRoute, unicast_routes())
