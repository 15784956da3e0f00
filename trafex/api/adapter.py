"""trafex.v1 API messages ⇄ the model's values: rules, routes, stored intents.

Used by the servicer and the typed client, through :mod:`trafex.api.rpc` (each RPC's
requests and answers) or directly. Parsing a client's message validates it: a bad part
raises :class:`~trafex.model.errors.ValidationError` naming it. Messages are built in
place where an answer is large (``message`` arguments: a field of the message being
built).
"""

from __future__ import annotations

import ipaddress
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from trafex.api.stubs import trafex_pb2 as pb
from trafex.model.components import TERM_COMPONENTS, Family
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
from trafex.model.grammar import parse_match, parse_rule
from trafex.model.intent import FlowIntent, IntentMeta, RouteIntent
from trafex.model.route import UnicastRoute, parse_route, route_dict

_OPS = {
    pb.NUMERIC_OP_EQ: (False, False, True),
    pb.NUMERIC_OP_UNSPECIFIED: (False, False, True),
    pb.NUMERIC_OP_NE: (True, True, False),
    pb.NUMERIC_OP_LT: (True, False, False),
    pb.NUMERIC_OP_LE: (True, False, True),
    pb.NUMERIC_OP_GT: (False, True, False),
    pb.NUMERIC_OP_GE: (False, True, True),
    pb.NUMERIC_OP_TRUE: (True, True, True),
    pb.NUMERIC_OP_FALSE: (False, False, False),
}
_OP_OF_BITS = {bits: op for op, bits in _OPS.items() if op != pb.NUMERIC_OP_UNSPECIFIED}
_FAMILIES: dict[int, Family] = {
    pb.ADDRESS_FAMILY_IPV4: Family.IPV4,
    pb.ADDRESS_FAMILY_IPV6: Family.IPV6,
}
_FAMILY_PB: dict[Family, Any] = {v: k for k, v in _FAMILIES.items()}
_RT_KINDS = {
    pb.ROUTE_TARGET_KIND_AS2: RouteTargetKind.AS2,
    pb.ROUTE_TARGET_KIND_AS4: RouteTargetKind.AS4,
    pb.ROUTE_TARGET_KIND_IPV4: RouteTargetKind.IPV4,
}
_RT_PB = {v: k for k, v in _RT_KINDS.items()}


def timestamp(seconds: float) -> Timestamp:
    ts = Timestamp()
    ts.FromNanoseconds(int(seconds * 1e9))
    return ts


def from_timestamp(ts: Timestamp) -> float:
    return ts.seconds + ts.nanos / 1e9


# -- FlowSpec ---------------------------------------------------------------------------


def family_from_proto(value: int) -> Family | None:
    return _FAMILIES.get(value)


def family_to_proto(family: Family | None) -> Any:
    return pb.ADDRESS_FAMILY_UNSPECIFIED if family is None else _FAMILY_PB[family]


def _prefix_from_proto(message: Any, name: str, family: Family | None) -> FlowPrefix:
    text = message.prefix
    if "/" not in text:
        try:
            bits = ipaddress.ip_address(text).max_prefixlen
        except ValueError:
            raise ValidationError(f"not a prefix: {text!r}", field=name) from None
        text = f"{text}/{bits}"
    prefix = FlowPrefix.parse(text, field_name=name)
    if message.offset:
        try:
            return FlowPrefix(prefix.network, message.offset)
        except ValidationError as error:
            raise ValidationError(error.message, field=name) from None
    return prefix


_COMPONENT_OF_ATTRIBUTE = {c.attribute: c for c in TERM_COMPONENTS}


def match_from_proto(message: Any) -> FlowMatch:
    family = family_from_proto(message.family)
    kwargs: dict[str, Any] = {}
    # ListFields() yields only the fields that are set, in field-number order (the
    # components' type order): one call instead of a getattr per component.
    for descriptor, value in message.ListFields():
        name = descriptor.name
        if name == "family":
            continue
        if name in ("destination", "source"):
            if value.prefix:
                kwargs[name] = _prefix_from_proto(value, name, family)
            continue
        component = _COMPONENT_OF_ATTRIBUTE[name]
        if component.bitmask:
            kwargs[name] = tuple(
                BitmaskTerm(t.value, match=t.match, not_=getattr(t, "not"), and_=getattr(t, "and"))
                for t in value
            )
        else:
            terms = []
            for t in value:
                bits = _OPS.get(t.op)
                if bits is None:
                    raise ValidationError(f"unknown operator {t.op}", field=component.keyword)
                terms.append(NumericTerm(*bits, value=t.value, and_=getattr(t, "and")))
            kwargs[name] = tuple(terms)
    if family is None:
        prefixes = [p for p in (kwargs.get("destination"), kwargs.get("source")) if p]
        if prefixes:
            family = prefixes[0].family
        else:
            family = Family.IPV6 if "flow_label" in kwargs else Family.IPV4
    return FlowMatch(family, **kwargs)


def match_to_proto(match: FlowMatch, message: Any | None = None) -> Any:
    """``match`` as a ``FlowMatch`` message: a new one, or filled into ``message``
    (a field of a message being built: no copy)."""
    if message is None:
        message = pb.FlowMatch()
    message.family = _FAMILY_PB[match.family]
    for name in ("destination", "source"):
        prefix = getattr(match, name)
        if prefix is not None:
            target = getattr(message, name)
            # str(prefix) is cached; the network is the part before an offset.
            target.prefix = str(prefix).rpartition("/")[0] if prefix.offset else str(prefix)
            target.offset = prefix.offset
    for component in TERM_COMPONENTS:
        attribute = component.attribute
        terms = getattr(match, attribute)
        if not terms:
            continue
        items = getattr(message, attribute)
        for term in terms:
            # add(**fields) builds each term in place; "and"/"not" are Python keywords.
            if isinstance(term, BitmaskTerm):
                items.add(
                    **{"value": term.value, "match": term.match, "not": term.not_, "and": term.and_}
                )
            else:
                items.add(
                    **{
                        "op": _OP_OF_BITS[(term.lt, term.gt, term.eq)],
                        "value": term.value,
                        "and": term.and_,
                    }
                )
    return message


def actions_from_proto(message: Any) -> FlowActions:
    rate: float | None = None
    if message.discard:
        if message.HasField("rate_limit"):
            raise ValidationError("discard and rate-limit are both a traffic-rate", "discard")
        rate = 0.0
    elif message.HasField("rate_limit"):
        rate = message.rate_limit
    redirect = None
    if message.HasField("redirect") and message.redirect.kind:
        target = message.redirect
        kind = _RT_KINDS.get(target.kind)
        if kind is None:
            raise ValidationError(f"unknown route-target kind {target.kind}", "redirect")
        try:
            glob: int | ipaddress.IPv4Address = (
                ipaddress.IPv4Address(getattr(target, "global"))
                if kind is RouteTargetKind.IPV4
                else int(getattr(target, "global"))
            )
        except ValueError:
            raise ValidationError(
                f"bad global part {getattr(target, 'global')!r}", "redirect"
            ) from None
        redirect = RouteTarget(kind, glob, target.local)
    mark = message.mark_dscp if message.HasField("mark_dscp") else None
    return FlowActions(
        rate=rate, redirect=redirect, mark=mark, sample=message.sample, terminal=message.terminal
    )


def actions_to_proto(actions: FlowActions, message: Any | None = None) -> Any:
    """``actions`` as a ``FlowActions`` message: a new one, or filled into ``message``."""
    if message is None:
        message = pb.FlowActions()
    message.discard = actions.discard
    message.sample = actions.sample
    message.terminal = actions.terminal
    if actions.rate is not None and not actions.discard:
        message.rate_limit = actions.rate
    if actions.redirect is not None:
        message.redirect.kind = _RT_PB[actions.redirect.kind]
        message.redirect.local = actions.redirect.local_admin
        setattr(message.redirect, "global", str(actions.redirect.global_admin))
    if actions.mark is not None:
        message.mark_dscp = actions.mark
    return message


def _has_structure(spec: Any) -> bool:
    return bool(spec.HasField("match") or spec.HasField("actions"))


def rule_from_proto(spec: Any) -> FlowRule:
    """A client's FlowSpec: the one-line text, or match + actions."""
    if spec.text:
        if _has_structure(spec):
            raise ValidationError("give either text or match/actions, not both")
        return parse_rule(spec.text)
    if not spec.HasField("match"):
        raise ValidationError("a rule needs a match (or text)")
    return FlowRule(match_from_proto(spec.match), actions_from_proto(spec.actions))


def rule_match_from_proto(spec: Any) -> FlowMatch:
    if spec.text:
        return parse_match(spec.text)
    if not spec.HasField("match"):
        raise ValidationError("give the match (or text) of the rule to delete")
    return match_from_proto(spec.match)


def rule_to_spec(rule: FlowRule) -> Any:
    return pb.FlowSpec(match=match_to_proto(rule.match), actions=actions_to_proto(rule.actions))


def meta_to_proto(meta: IntentMeta, message: Any | None = None) -> Any:
    """``meta`` as an ``IntentMeta`` message: a new one, or filled into ``message``."""
    if message is None:
        message = pb.IntentMeta()
    message.id = meta.id
    message.reason = meta.reason
    message.origin = meta.origin
    message.created_at.FromNanoseconds(int(meta.created_at * 1e9))
    message.updated_at.FromNanoseconds(int(meta.updated_at * 1e9))
    if meta.expires_at is not None:
        message.expires_at.FromNanoseconds(int(meta.expires_at * 1e9))
    return message


def meta_from_proto(message: Any) -> IntentMeta:
    return IntentMeta(
        id=message.id,
        reason=message.reason,
        origin=message.origin,
        created_at=from_timestamp(message.created_at),
        updated_at=from_timestamp(message.updated_at),
        expires_at=from_timestamp(message.expires_at) if message.HasField("expires_at") else None,
    )


def flow_to_proto(intent: FlowIntent, message: Any | None = None) -> Any:
    """A stored rule as a ``FlowRule`` message, built in place (``message``: a field of
    the answer being built, such as ``AddFlowResponse.rule``)."""
    if message is None:
        message = pb.FlowRule()
    meta_to_proto(intent.meta, message.meta)
    match_to_proto(intent.rule.match, message.match)
    actions_to_proto(intent.rule.actions, message.actions)
    message.text = intent.text
    message.nlri = intent.rule.match.encode().hex()
    return message


def flow_from_proto(message: Any) -> FlowIntent:
    """A stored rule from trafexd's answer (its text and NLRI follow from the rule)."""
    rule = FlowRule(match_from_proto(message.match), actions_from_proto(message.actions))
    return FlowIntent(meta_from_proto(message.meta), rule)


# -- routes -----------------------------------------------------------------------------


def route_from_proto(spec: Any) -> UnicastRoute:
    return parse_route(
        spec.prefix,
        spec.next_hop,
        spec.communities,
        spec.large_communities,
        spec.local_preference if spec.HasField("local_preference") else None,
        spec.med if spec.HasField("med") else None,
    )


def route_to_spec(route: UnicastRoute) -> Any:
    """The route's parts as text (:func:`~trafex.model.route.route_dict`), in a
    ``RouteSpec``; :func:`route_from_proto` reads them back with ``parse_route``."""
    parts = route_dict(route)
    message = pb.RouteSpec(
        prefix=parts["prefix"],
        next_hop=parts["next_hop"] or "",
        communities=parts["communities"],
        large_communities=parts["large_communities"],
    )
    for name in ("local_preference", "med"):
        if parts[name] is not None:
            setattr(message, name, parts[name])
    return message


def route_intent_to_proto(intent: RouteIntent) -> Any:
    return pb.Route(meta=meta_to_proto(intent.meta), spec=route_to_spec(intent.route))


def route_intent_from_proto(message: Any) -> RouteIntent:
    return RouteIntent(meta_from_proto(message.meta), route_from_proto(message.spec))
