"""trafex's gRPC servicer: validate, map errors to status codes, delegate.

Each RPC parses its request into model values (:mod:`trafex.api.rpc`; a bad part is a
``ValidationError``), hands them to the controller, and translates the answer. Errors
map to status codes in one place, :func:`_abort`:

======================================  =====================================================
``ValidationError``                     INVALID_ARGUMENT (a bad rule, route, option; a guardrail)
``NotFoundError``                       NOT_FOUND (no intent with that id, match or prefix)
:class:`WrongKindError`                 FAILED_PRECONDITION (a route's id to DeleteFlow, ...)
``SidecarError``, sidecar unavailable   UNAVAILABLE + outcome DEFERRED (stored, not announced)
``GuardError`` (a guard refused)        FAILED_PRECONDITION (guard protected, breadth, origin,
                                        caps, rate)
``SidecarError``, sidecar refused       FAILED_PRECONDITION + outcome DEFERRED (stored)
``StoreError``                          INTERNAL (the store cannot be written)
======================================  =====================================================

A dry run is no error: the controller raises ``DryRunError`` with the would-be intents,
and the servicer answers them as usual with the outcome DRY_RUN.
"""

from __future__ import annotations

import queue
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, NoReturn, Protocol, TypeVar

import grpc
import structlog

from trafex.api import rpc
from trafex.api.adapter import family_from_proto
from trafex.api.stubs import trafex_pb2_grpc
from trafex.bgp.client import SidecarError
from trafex.control.controller import DryRunError, IntentOptions, NotFoundError
from trafex.control.events import EventBus
from trafex.control.guardrails import GuardError
from trafex.control.status import Status
from trafex.control.store import StoreError
from trafex.model.errors import TrafexError, ValidationError
from trafex.model.flowspec import FlowMatch, FlowRule
from trafex.model.intent import FlowIntent, Intent, RouteIntent
from trafex.model.route import UnicastRoute

log = structlog.get_logger("trafex.api")
T = TypeVar("T")
IntentT = TypeVar("IntentT", FlowIntent, RouteIntent)


class WrongKindError(TrafexError):
    """An id names an intent of the other kind (a route's id given to DeleteFlow)."""


class IntentController(Protocol):
    """What the servicer needs of trafexd's controller
    (:class:`~trafex.control.controller.Controller`, or a fake in the tests)."""

    def add(
        self, items: Sequence[tuple[FlowRule | UnicastRoute, IntentOptions]]
    ) -> list[tuple[Intent, bool]]: ...

    def remove(self, intents: Iterable[Intent]) -> list[Intent]: ...

    def remove_ids(self, ids: Iterable[str]) -> tuple[list[Intent], list[str]]: ...

    def by_id(self, ident: str) -> Intent: ...

    def by_key(self, key: str) -> Intent: ...

    def flows(self) -> list[FlowIntent]: ...

    def routes(self) -> list[RouteIntent]: ...


_CODES: tuple[tuple[type[Exception], grpc.StatusCode], ...] = (
    (ValidationError, grpc.StatusCode.INVALID_ARGUMENT),
    (NotFoundError, grpc.StatusCode.NOT_FOUND),
    (WrongKindError, grpc.StatusCode.FAILED_PRECONDITION),
    (GuardError, grpc.StatusCode.FAILED_PRECONDITION),
    (StoreError, grpc.StatusCode.INTERNAL),
)
_KIND_NAMES = {FlowIntent: "a FlowSpec rule", RouteIntent: "a route"}
_KIND_NOUNS = {FlowIntent: "flow rule", RouteIntent: "route"}


def status_of(error: Exception) -> tuple[grpc.StatusCode, str] | None:
    """The status code and message of a call's error (the table above); None for an
    error that is a bug. A SidecarError is a change stored but not announced."""
    if isinstance(error, SidecarError):  # raised after the change was stored
        unavailable = error.unavailable
        code = grpc.StatusCode.UNAVAILABLE if unavailable else grpc.StatusCode.FAILED_PRECONDITION
        return code, f"{rpc.NOT_ANNOUNCED}: {error}"
    for kind, code in _CODES:
        if isinstance(error, kind):
            return code, str(error)
    return None


def _abort(context: grpc.ServicerContext, error: Exception) -> NoReturn:
    if isinstance(error, SidecarError):
        context.set_trailing_metadata(rpc.deferred_metadata(str(error)))
    status = status_of(error)
    if status is not None:
        context.abort(*status)
    # A bug: log it with its traceback, tell the client no more than needed.
    log.error("api.bug", error=repr(error), exc_info=error)
    context.abort(grpc.StatusCode.INTERNAL, f"internal error: {type(error).__name__}")


def _call(context: grpc.ServicerContext, function: Callable[[], T]) -> T:
    try:
        return function()
    except Exception as error:  # every error of a call ends here, mapped to a status
        _abort(context, error)


def _only(
    intents: Iterable[tuple[Intent, bool]], kind: type[IntentT]
) -> list[tuple[IntentT, bool]]:
    out = []
    for intent, created in intents:
        assert isinstance(intent, kind)  # the controller answers in the order it was asked
        out.append((intent, created))
    return out


class TrafexServicer(trafex_pb2_grpc.TrafexServicer):  # type: ignore[misc]
    """trafex.v1's ``Trafex`` service over a controller, an event bus, and ``status``
    (the daemon's snapshot of itself: the servicer never calls GoBGP)."""

    def __init__(
        self, controller: IntentController, events: EventBus, status: Callable[[], Status]
    ) -> None:
        self.controller = controller
        self.events = events
        self.status = status

    def _find(self, selector: str | FlowMatch | UnicastRoute, kind: type[IntentT]) -> IntentT:
        """The intent an id or a match/prefix names, which must be of ``kind``."""
        if isinstance(selector, str):
            try:
                intent = self.controller.by_id(selector)
            except NotFoundError:
                raise NotFoundError(f"no {_KIND_NOUNS[kind]} with id {selector}") from None
        else:
            intent = self.controller.by_key(selector.key)
        if not isinstance(intent, kind):
            raise WrongKindError(
                f"{intent.meta.id} is {_KIND_NAMES[type(intent)]}, not {_KIND_NAMES[kind]}"
            )
        return intent

    def _add(
        self, items: Sequence[tuple[FlowRule | UnicastRoute, IntentOptions]]
    ) -> tuple[list[tuple[Intent, bool]], bool]:
        """The controller's answer to an add, and whether it was a dry run."""
        try:
            return self.controller.add(items), False
        except DryRunError as dry:
            return list(dry.answer), True

    def _remove(self, selector: str | FlowMatch | UnicastRoute, kind: type[IntentT]) -> IntentT:
        intent = self._find(selector, kind)
        self.controller.remove([intent])
        return intent

    # -- flows --------------------------------------------------------------------------

    def AddFlow(self, request: Any, context: grpc.ServicerContext) -> Any:
        def add() -> Any:
            answer, dry_run = self._add(rpc.flow_requests_from_proto([request]))
            ((intent, created),) = _only(answer, FlowIntent)
            return rpc.add_flow_response(intent, created, dry_run=dry_run)

        return _call(context, add)

    def AddFlows(self, request: Any, context: grpc.ServicerContext) -> Any:
        def add() -> Any:
            answer, dry_run = self._add(rpc.flow_requests_from_proto(list(request.flows)))
            return rpc.add_flows_response(_only(answer, FlowIntent), dry_run=dry_run)

        return _call(context, add)

    def DeleteFlow(self, request: Any, context: grpc.ServicerContext) -> Any:
        def delete() -> Any:
            return rpc.delete_flow_response(self._remove(rpc.flow_selector(request), FlowIntent))

        return _call(context, delete)

    def DeleteFlows(self, request: Any, context: grpc.ServicerContext) -> Any:
        def delete() -> Any:
            return rpc.delete_flows_response(*self.controller.remove_ids(request.ids))

        return _call(context, delete)

    def ListFlows(self, request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        family = family_from_proto(request.family)
        for intent in sorted(self.controller.flows(), key=lambda i: i.meta.created_at):
            if family is None or intent.rule.family is family:
                yield rpc.list_flows_response(intent)

    # -- routes -------------------------------------------------------------------------

    def AddRoute(self, request: Any, context: grpc.ServicerContext) -> Any:
        def add() -> Any:
            answer, dry_run = self._add([rpc.route_request_from_proto(request)])
            ((intent, created),) = _only(answer, RouteIntent)
            return rpc.add_route_response(intent, created, dry_run=dry_run)

        return _call(context, add)

    def DeleteRoute(self, request: Any, context: grpc.ServicerContext) -> Any:
        def delete() -> Any:
            selector = rpc.route_selector(request)
            return rpc.delete_route_response(self._remove(selector, RouteIntent))

        return _call(context, delete)

    def ListRoutes(self, request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        for intent in sorted(self.controller.routes(), key=lambda i: i.meta.created_at):
            yield rpc.list_routes_response(intent)

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
                yield rpc.watch_events_response(event)
        finally:
            self.events.unsubscribe(subscriber)

    def GetStatus(self, request: Any, context: grpc.ServicerContext) -> Any:
        return rpc.status_to_proto(self.status())
