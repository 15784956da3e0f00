"""Each trafex.v1 RPC's requests and answers ⇄ the model, and the outcome of a change.

The values inside (rules, routes, stored intents) go through :mod:`trafex.api.adapter`.
The outcome of a change travels typed, as a ``ChangeOutcome``: QUEUED in every
change's answer, DRY_RUN in the answer to a dry run (nothing stored or announced);
DEFERRED ("stored, not yet announced", and why) in the trailing metadata
:data:`OUTCOME_KEY` of an answer that failed after the change was stored.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from google.protobuf.message import DecodeError

from trafex.api.adapter import (
    family_to_proto,
    flow_to_proto,
    from_timestamp,
    match_to_proto,
    route_from_proto,
    route_intent_to_proto,
    route_to_spec,
    rule_from_proto,
    rule_match_from_proto,
    rule_to_spec,
    timestamp,
)
from trafex.api.stubs import trafex_pb2 as pb
from trafex.control.controller import IntentOptions
from trafex.control.events import Event, EventKind
from trafex.control.status import PeerInfo, SidecarStatus, Status
from trafex.model.errors import ValidationError
from trafex.model.flowspec import Family, FlowMatch, FlowRule
from trafex.model.intent import ORIGIN_API, FlowIntent, Intent, RouteIntent
from trafex.model.route import IPNetwork, UnicastRoute, parse_prefix

MAX_MESSAGE = 64 * 1024 * 1024  # an AddFlows of many thousand rules, and its answer
OUTCOME_KEY = "trafex-outcome-bin"  # trailing metadata: a ChangeOutcome, serialized
NOT_ANNOUNCED = "stored, not yet announced"  # the words of a DEFERRED outcome
_EVENTS = {kind: getattr(pb, "EVENT_KIND_" + kind.name) for kind in EventKind}
_EVENT_KINDS = {v: k for k, v in _EVENTS.items()}


# -- requests ---------------------------------------------------------------------------


def options_to_proto(options: IntentOptions) -> Any:
    """The wire carries whole seconds (0: no expiry); a TTL under a second is one."""
    return pb.IntentOptions(
        ttl_seconds=max(1, round(options.ttl)) if options.ttl else 0,
        reason=options.reason,
        origin=options.origin,
        force=options.force,
        dry_run=options.dry_run,
    )


def options_from_proto(message: Any) -> IntentOptions:
    return IntentOptions(
        ttl=float(message.ttl_seconds) if message.ttl_seconds else None,
        reason=message.reason,
        origin=message.origin or ORIGIN_API,
        force=message.force,
        dry_run=message.dry_run,
    )


def add_flow_request(rule: FlowRule, options: IntentOptions) -> Any:
    return pb.AddFlowRequest(flow=rule_to_spec(rule), options=options_to_proto(options))


def add_flows_request(items: Iterable[tuple[FlowRule, IntentOptions]]) -> Any:
    return pb.AddFlowsRequest(flows=[add_flow_request(rule, options) for rule, options in items])


def delete_flow_request(selector: str | FlowMatch) -> Any:
    """By id, or by the match of the rule."""
    if isinstance(selector, str):
        return pb.DeleteFlowRequest(id=selector)
    return pb.DeleteFlowRequest(flow=pb.FlowSpec(match=match_to_proto(selector)))


def list_flows_request(family: Family | None) -> Any:
    return pb.ListFlowsRequest(family=family_to_proto(family))


def add_route_request(route: UnicastRoute, options: IntentOptions) -> Any:
    return pb.AddRouteRequest(route=route_to_spec(route), options=options_to_proto(options))


def delete_route_request(selector: str | IPNetwork) -> Any:
    """By id, or by the route's prefix."""
    if isinstance(selector, str):
        return pb.DeleteRouteRequest(id=selector)
    return pb.DeleteRouteRequest(prefix=str(selector))


def flow_requests_from_proto(requests: Sequence[Any]) -> list[tuple[FlowRule, IntentOptions]]:
    """The rules of ``AddFlow``/``AddFlows`` requests; in a batch, an error names the
    index of the bad rule."""
    items = []
    for index, request in enumerate(requests):
        try:
            items.append((rule_from_proto(request.flow), options_from_proto(request.options)))
        except ValidationError as error:
            if len(requests) > 1:
                raise ValidationError(f"flow {index}: {error}") from None
            raise
    return items


def route_request_from_proto(request: Any) -> tuple[UnicastRoute, IntentOptions]:
    """The route of an ``AddRoute`` request, and its options."""
    return route_from_proto(request.route), options_from_proto(request.options)


def flow_selector(request: Any) -> str | FlowMatch:
    """What a ``DeleteFlowRequest`` names: an id, or the match of the rule."""
    selector = request.WhichOneof("selector")
    if selector == "id":
        return str(request.id)
    if selector == "flow":
        return rule_match_from_proto(request.flow)
    raise ValidationError("give the id or the match of the rule to delete")


def route_selector(request: Any) -> str | UnicastRoute:
    """What a ``DeleteRouteRequest`` names: an id, or the route at a prefix."""
    selector = request.WhichOneof("selector")
    if selector == "id":
        return str(request.id)
    if selector == "prefix":
        return UnicastRoute(parse_prefix(request.prefix))
    raise ValidationError("give the id or the prefix of the route to delete")


# -- answers and their outcome ----------------------------------------------------------


def _queued(response: Any, dry_run: bool = False) -> Any:
    """Mark a change's answer QUEUED, or DRY_RUN (nothing was stored)."""
    announcement = pb.ANNOUNCEMENT_DRY_RUN if dry_run else pb.ANNOUNCEMENT_QUEUED
    response.outcome.announcement = announcement
    return response


def add_flow_response(intent: FlowIntent, created: bool, *, dry_run: bool = False) -> Any:
    response = pb.AddFlowResponse(created=created)
    flow_to_proto(intent, response.rule)
    return _queued(response, dry_run)


def add_flows_response(results: Iterable[tuple[FlowIntent, bool]], *, dry_run: bool = False) -> Any:
    response = pb.AddFlowsResponse()
    for intent, created in results:
        # Built in place: a thousand rules copied into the answer would cost more than
        # building them.
        flow_to_proto(intent, response.results.add(created=created).rule)
    return _queued(response, dry_run)


def delete_flow_response(intent: FlowIntent) -> Any:
    return _queued(pb.DeleteFlowResponse(rule=flow_to_proto(intent)))


def delete_flows_response(deleted: Sequence[Intent], not_found: Sequence[str]) -> Any:
    return _queued(pb.DeleteFlowsResponse(deleted=len(deleted), not_found=not_found))


def list_flows_response(intent: FlowIntent) -> Any:
    return pb.ListFlowsResponse(rule=flow_to_proto(intent))


def add_route_response(intent: RouteIntent, created: bool, *, dry_run: bool = False) -> Any:
    response = pb.AddRouteResponse(route=route_intent_to_proto(intent), created=created)
    return _queued(response, dry_run)


def delete_route_response(intent: RouteIntent) -> Any:
    return _queued(pb.DeleteRouteResponse(route=route_intent_to_proto(intent)))


def list_routes_response(intent: RouteIntent) -> Any:
    return pb.ListRoutesResponse(route=route_intent_to_proto(intent))


def deferred_metadata(reason: str) -> tuple[tuple[str, bytes]]:
    """The trailing metadata of an answer to a change that is stored, not announced."""
    outcome = pb.ChangeOutcome(announcement=pb.ANNOUNCEMENT_DEFERRED, reason=reason)
    return ((OUTCOME_KEY, outcome.SerializeToString()),)


def deferred_reason(metadata: Iterable[tuple[str, str | bytes]] | None) -> str | None:
    """Why the change is stored but not announced, from a failed answer's trailing
    metadata; None when it does not say so (then the change was not made)."""
    for key, value in metadata or ():
        if key != OUTCOME_KEY or not isinstance(value, bytes):
            continue
        try:
            outcome = pb.ChangeOutcome.FromString(value)
        except DecodeError:
            return None
        if outcome.announcement == pb.ANNOUNCEMENT_DEFERRED:
            return str(outcome.reason)
    return None


def response_dry_run(response: Any) -> bool:
    """True when a change's answer is that of a dry run: nothing stored or announced."""
    return bool(response.outcome.announcement == pb.ANNOUNCEMENT_DRY_RUN)


def response_deferred(response: Any) -> str | None:
    """Why a change answered without error is not announced yet; None when it is
    queued for the sidecar (or the answer, from an older trafexd, does not say)."""
    if response.outcome.announcement == pb.ANNOUNCEMENT_DEFERRED:
        return str(response.outcome.reason)
    return None


# -- events -----------------------------------------------------------------------------


def event_to_proto(event: Event) -> Any:
    message = pb.Event(
        kind=_EVENTS[event.kind], id=event.id, subject=event.subject, detail=event.detail
    )
    message.time.CopyFrom(timestamp(event.time))
    return message


def watch_events_response(event: Event) -> Any:
    return pb.WatchEventsResponse(event=event_to_proto(event))


def event_from_proto(message: Any) -> Event | None:
    """The event, or None for a kind this version does not know (a newer trafexd)."""
    kind = _EVENT_KINDS.get(message.kind)
    if kind is None:
        return None
    return Event(kind, message.id, message.subject, message.detail, from_timestamp(message.time))


# -- status -----------------------------------------------------------------------------


def _peer_to_proto(peer: PeerInfo) -> Any:
    message = pb.Peer(
        address=peer.address,
        peer_as=peer.peer_as,
        state=peer.state,
        families=list(peer.families),
        received=peer.received,
        advertised=peer.advertised,
    )
    if peer.uptime_since is not None:
        message.uptime_since.CopyFrom(timestamp(peer.uptime_since))
    return message


def _peer_from_proto(message: Any) -> PeerInfo:
    return PeerInfo(
        address=message.address,
        peer_as=message.peer_as,
        state=message.state,
        families=tuple(message.families),
        received=message.received,
        advertised=message.advertised,
        uptime_since=(
            from_timestamp(message.uptime_since) if message.HasField("uptime_since") else None
        ),
    )


def status_to_proto(status: Status) -> Any:
    side = status.sidecar
    response = pb.GetStatusResponse(
        sidecar=pb.SidecarStatus(
            healthy=side.healthy,
            api=side.api,
            version=side.version,
            managed=side.managed,
            pid=side.pid or 0,
            restarts=side.restarts,
            error=side.error,
            send_failures=side.send_failures,
            last_send_error=side.last_send_error,
            queued_paths=side.queued_paths,
        ),
        peers=[_peer_to_proto(peer) for peer in status.peers],
        flows=status.flows,
        routes=status.routes,
        version=status.version,
        asn=status.asn,
        router_id=status.router_id,
    )
    if status.last_reconcile is not None:
        response.last_reconcile.CopyFrom(timestamp(status.last_reconcile))
    return response


def status_from_proto(message: Any) -> Status:
    side = message.sidecar
    return Status(
        version=message.version,
        asn=message.asn,
        router_id=message.router_id,
        flows=message.flows,
        routes=message.routes,
        last_reconcile=(
            from_timestamp(message.last_reconcile) if message.HasField("last_reconcile") else None
        ),
        sidecar=SidecarStatus(
            healthy=side.healthy,
            api=side.api,
            version=side.version,
            managed=side.managed,
            pid=side.pid or None,
            restarts=side.restarts,
            error=side.error,
            send_failures=side.send_failures,
            last_send_error=side.last_send_error,
            queued_paths=side.queued_paths,
        ),
        peers=tuple(_peer_from_proto(peer) for peer in message.peers),
    )
