"""trafex's gRPC servicer: validate, map errors to status codes, delegate.

ValidationError → INVALID_ARGUMENT, NotFoundError → NOT_FOUND, a sidecar that cannot
take a change → UNAVAILABLE (the change is stored and the next reconcile sends it),
a store that cannot be written → INTERNAL.
"""

from __future__ import annotations

import queue
from collections.abc import Callable, Iterator
from typing import Any, NoReturn, TypeVar

import grpc
import structlog

from trafex import __version__
from trafex.bgp.client import GobgpClient, SidecarError
from trafex.bgp.sidecar import Sidecar
from trafex.bgp.stubs import trafex_pb2 as pb
from trafex.bgp.stubs import trafex_pb2_grpc
from trafex.control import wire
from trafex.control.config import Config
from trafex.control.controller import Controller, IntentOptions, NotFoundError
from trafex.control.events import EventBus
from trafex.control.store import StoreError
from trafex.model.errors import ValidationError
from trafex.model.flowspec import FlowRule
from trafex.model.intent import ORIGIN_API, FlowIntent, RouteIntent

log = structlog.get_logger("trafex.api")
T = TypeVar("T")


def _abort(context: grpc.ServicerContext, error: Exception) -> NoReturn:
    if isinstance(error, ValidationError):
        code = grpc.StatusCode.INVALID_ARGUMENT
        message = str(error)
    elif isinstance(error, NotFoundError):
        code = grpc.StatusCode.NOT_FOUND
        message = str(error)
    elif isinstance(error, SidecarError):
        code = grpc.StatusCode.UNAVAILABLE
        message = f"stored, not yet announced: {error}"
    elif isinstance(error, StoreError):
        code = grpc.StatusCode.INTERNAL
        message = str(error)
    else:  # pragma: no cover - a bug: log it, tell the client no more than needed
        log.exception("api.bug")
        code, message = grpc.StatusCode.INTERNAL, f"internal error: {type(error).__name__}"
    context.abort(code, message)


def _call(context: grpc.ServicerContext, function: Callable[[], T]) -> T:
    try:
        return function()
    except (ValidationError, NotFoundError, SidecarError, StoreError) as error:
        _abort(context, error)


def _options(message: Any) -> IntentOptions:
    return IntentOptions(
        ttl=float(message.ttl_seconds) if message.ttl_seconds else None,
        reason=message.reason,
        origin=message.origin or ORIGIN_API,
    )


class TrafexServicer(trafex_pb2_grpc.TrafexServicer):  # type: ignore[misc]
    def __init__(
        self,
        config: Config,
        controller: Controller,
        events: EventBus,
        client: GobgpClient,
        sidecar: Sidecar,
    ) -> None:
        self.config = config
        self.controller = controller
        self.events = events
        self.client = client
        self.sidecar = sidecar

    # -- flows --------------------------------------------------------------------------

    def _add_flows(
        self, requests: Any, context: grpc.ServicerContext
    ) -> list[tuple[FlowIntent, bool]]:
        def parse() -> list[tuple[FlowRule, IntentOptions]]:
            items = []
            for index, request in enumerate(requests):
                try:
                    items.append((wire.rule_from_proto(request.flow), _options(request.options)))
                except ValidationError as error:
                    if len(requests) > 1:
                        raise ValidationError(f"flow {index}: {error}") from None
                    raise
            return items

        items = _call(context, parse)
        results = _call(context, lambda: self.controller.add(items))
        out = []
        for intent, created in results:
            assert isinstance(intent, FlowIntent)
            out.append((intent, created))
        return out

    def AddFlow(self, request: Any, context: grpc.ServicerContext) -> Any:
        ((intent, created),) = self._add_flows([request], context)
        response = pb.AddFlowResponse(created=created)
        wire.flow_to_proto(intent, response.rule)
        return response

    def AddFlows(self, request: Any, context: grpc.ServicerContext) -> Any:
        response = pb.AddFlowsResponse()
        for intent, created in self._add_flows(list(request.flows), context):
            # Built in place: a thousand rules copied into the answer would cost more
            # than building them.
            wire.flow_to_proto(intent, response.results.add(created=created).rule)
        return response

    def DeleteFlow(self, request: Any, context: grpc.ServicerContext) -> Any:
        def delete() -> Any:
            if request.WhichOneof("selector") == "id":
                intent = self.controller.by_id(request.id)
                if not isinstance(intent, FlowIntent):
                    raise NotFoundError(f"{request.id} is a route, not a FlowSpec rule")
            elif request.WhichOneof("selector") == "flow":
                match = wire.rule_match_from_proto(request.flow)
                intent = self.controller.by_key(match.key)
            else:
                raise ValidationError("give the id or the match of the rule to delete")
            self.controller.remove([intent])
            assert isinstance(intent, FlowIntent)
            return pb.DeleteFlowResponse(rule=wire.flow_to_proto(intent))

        return _call(context, delete)

    def DeleteFlows(self, request: Any, context: grpc.ServicerContext) -> Any:
        gone, missing = _call(context, lambda: self.controller.remove_ids(request.ids))
        return pb.DeleteFlowsResponse(deleted=len(gone), not_found=missing)

    def ListFlows(self, request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        family = wire.family_from_proto(request.family)
        for intent in sorted(self.controller.flows(), key=lambda i: i.meta.created_at):
            if family is None or intent.rule.family is family:
                yield pb.ListFlowsResponse(rule=wire.flow_to_proto(intent))

    # -- routes -------------------------------------------------------------------------

    def AddRoute(self, request: Any, context: grpc.ServicerContext) -> Any:
        route = _call(context, lambda: wire.route_from_proto(request.route))
        options = _call(context, lambda: _options(request.options))
        ((intent, created),) = _call(context, lambda: self.controller.add([(route, options)]))
        assert isinstance(intent, RouteIntent)
        return pb.AddRouteResponse(route=wire.route_intent_to_proto(intent), created=created)

    def DeleteRoute(self, request: Any, context: grpc.ServicerContext) -> Any:
        def delete() -> Any:
            selector = request.WhichOneof("selector")
            if selector == "id":
                intent = self.controller.by_id(request.id)
                if not isinstance(intent, RouteIntent):
                    raise NotFoundError(f"{request.id} is a FlowSpec rule, not a route")
            elif selector == "prefix":
                prefix = wire.route_from_proto(pb.RouteSpec(prefix=request.prefix)).prefix
                family = "ipv4" if prefix.version == 4 else "ipv6"
                intent = self.controller.by_key(f"{family}:{prefix}")
            else:
                raise ValidationError("give the id or the prefix of the route to delete")
            self.controller.remove([intent])
            assert isinstance(intent, RouteIntent)
            return pb.DeleteRouteResponse(route=wire.route_intent_to_proto(intent))

        return _call(context, delete)

    def ListRoutes(self, request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        for intent in sorted(self.controller.routes(), key=lambda i: i.meta.created_at):
            yield pb.ListRoutesResponse(route=wire.route_intent_to_proto(intent))

    # -- events and status --------------------------------------------------------------

    def WatchEvents(self, request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        subscriber = self.events.subscribe()
        try:
            while context.is_active():
                try:
                    event = subscriber.get(timeout=0.5)
                except queue.Empty:
                    continue
                if event is None:
                    return
                yield pb.WatchEventsResponse(event=wire.event_to_proto(event))
        finally:
            self.events.unsubscribe(subscriber)

    def GetStatus(self, request: Any, context: grpc.ServicerContext) -> Any:
        flows, routes = self.controller.counts()
        sidecar = self.sidecar
        response = pb.GetStatusResponse(
            sidecar=pb.SidecarStatus(
                healthy=sidecar.healthy,
                api=self.config.gobgp.api,
                version=sidecar.version,
                managed=self.config.gobgp.manage,
                pid=sidecar.pid or 0,
                restarts=sidecar.restarts,
                error=sidecar.error,
                send_failures=self.controller.send_failures,
                last_send_error=self.controller.last_send_error,
                queued_paths=self.controller.queued_paths,
            ),
            flows=flows,
            routes=routes,
            version=__version__,
            asn=self.config.bgp.asn,
            router_id=str(self.config.bgp.router_id),
        )
        if self.controller.last_reconcile is not None:
            response.last_reconcile.CopyFrom(wire.timestamp(self.controller.last_reconcile))
        try:
            for peer in self.client.peers():
                message = pb.Peer(
                    address=peer.address,
                    peer_as=peer.peer_as,
                    state=peer.state,
                    families=list(peer.families),
                    received=peer.received,
                    advertised=peer.advertised,
                )
                if peer.uptime_since is not None:
                    message.uptime_since.CopyFrom(wire.timestamp(peer.uptime_since))
                response.peers.append(message)
        except SidecarError as error:
            response.sidecar.healthy = False
            response.sidecar.error = str(error)
        return response
