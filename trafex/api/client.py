"""A typed client of trafexd's API: model values in, model values out, narrow errors.

``trafex-ctl`` and the sensor's trigger sender both use :class:`TrafexClient`; neither
sees a protobuf message or a gRPC status. Every failed call raises an
:class:`ApiError` subclass that says what happened:

- :class:`RefusedError`: trafexd refuses the rule, route or option (INVALID_ARGUMENT;
  the message names the bad part). Nothing was changed.
- :class:`NoSuchIntentError`: no intent with that id, match or prefix (NOT_FOUND).
- :class:`PreconditionError`: the request cannot apply (FAILED_PRECONDITION: an id
  of the other kind, e.g. a route's id given to :meth:`TrafexClient.delete_flow`).
- :class:`NotAnnouncedError`: the change **is stored**, not yet announced (trafexd
  says so in the answer, typed: the sidecar is down; it is announced when it is back).
- :class:`UnreachableError`: trafexd cannot be reached (UNAVAILABLE, nothing stored).
- :class:`DeadlineError`: no answer within the client's timeout.
- :class:`InternalError`: trafexd failed (INTERNAL, e.g. its store cannot be written).
- :class:`UnauthenticatedError`: trafexd refused the token (UNAUTHENTICATED).
- :class:`ExhaustedError`: a limit of trafexd's (RESOURCE_EXHAUSTED: the message is
  too large, too many calls or watchers at once). Nothing was done.

A dry run (``IntentOptions(dry_run=True)``, or trafexd's ``[guard] dry_run``) is no
error: the add returns the would-be intents with :attr:`Added.dry_run` set (nothing
was stored or announced).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Generic, TypeVar, cast

import grpc

from trafex.api import rpc
from trafex.api.adapter import flow_from_proto, route_intent_from_proto
from trafex.api.security import channel_credentials
from trafex.api.stubs import trafex_pb2 as pb
from trafex.api.stubs import trafex_pb2_grpc
from trafex.control.controller import IntentOptions
from trafex.control.events import Event
from trafex.control.status import Status
from trafex.model.errors import TrafexError
from trafex.model.flowspec import Family, FlowMatch, FlowRule
from trafex.model.intent import FlowIntent, RouteIntent
from trafex.model.route import IPNetwork, UnicastRoute

__all__ = [
    "Added",
    "ApiError",
    "DeadlineError",
    "Deleted",
    "ExhaustedError",
    "IntentOptions",
    "InternalError",
    "NoSuchIntentError",
    "NotAnnouncedError",
    "PreconditionError",
    "RefusedError",
    "TrafexClient",
    "UnauthenticatedError",
    "UnreachableError",
]

IntentT = TypeVar("IntentT", FlowIntent, RouteIntent)
_CHANNEL_OPTIONS = [
    # Come back quickly when trafexd restarts (gRPC's default backoff grows to 120 s).
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
    ("grpc.max_receive_message_length", rpc.MAX_MESSAGE),
]


class ApiError(TrafexError):
    """trafexd answered with an error, or could not be reached. ``code`` is the gRPC
    status's name (``"INVALID_ARGUMENT"``), ``details`` trafexd's one-line message."""

    def __init__(self, details: str, code: str) -> None:
        super().__init__(details)
        self.details = details
        self.code = code


class RefusedError(ApiError):
    """trafexd refuses the rule, route or option; the message names the bad part."""


class NoSuchIntentError(ApiError):
    """No intent with that id, match or prefix."""


class PreconditionError(ApiError):
    """The request cannot apply as it is (an id of the other kind of intent; a guard
    refused it: the details start ``guard NAME:``)."""

    @property
    def guard(self) -> str | None:
        """The name of the guard that refused the request, or None."""
        if not self.details.startswith("guard "):
            return None
        return self.details[len("guard ") :].split(":", 1)[0]


class NotAnnouncedError(ApiError):
    """The change is stored, not yet announced: ``reason`` says why (``gobgpd is
    down``). trafexd announces it when its sidecar is back."""

    def __init__(self, details: str, code: str, reason: str) -> None:
        super().__init__(details, code)
        self.reason = reason


class UnreachableError(ApiError):
    """trafexd cannot be reached (nothing was stored)."""


class DeadlineError(ApiError):
    """trafexd did not answer within the client's timeout."""


class InternalError(ApiError):
    """trafexd failed to do it (its store cannot be written, or a bug)."""


class UnauthenticatedError(ApiError):
    """trafexd refused the call's token (missing or wrong); nothing was done."""


class ExhaustedError(ApiError):
    """trafexd refused the call at one of its limits (a message too large, too many
    calls or watchers at once); nothing was done."""


_ERRORS: dict[grpc.StatusCode, type[ApiError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: RefusedError,
    grpc.StatusCode.NOT_FOUND: NoSuchIntentError,
    grpc.StatusCode.FAILED_PRECONDITION: PreconditionError,
    grpc.StatusCode.UNAVAILABLE: UnreachableError,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineError,
    grpc.StatusCode.INTERNAL: InternalError,
    grpc.StatusCode.UNAUTHENTICATED: UnauthenticatedError,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ExhaustedError,
}


def _error(error: grpc.RpcError) -> ApiError:
    call = cast(grpc.Call, error)  # what a stub raises is both
    code, details = call.code(), call.details() or ""
    reason = rpc.deferred_reason(call.trailing_metadata())
    if reason is not None:
        return NotAnnouncedError(details, code.name, reason)
    return _ERRORS.get(code, ApiError)(details, code.name)


@dataclass(frozen=True, slots=True)
class Added(Generic[IntentT]):
    """An intent as trafexd stored it; ``created`` False: the intent with the same match
    (or prefix) was updated. ``dry_run``: trafexd stored nothing; this is what it would
    have stored (a new intent's id is one it would have given)."""

    intent: IntentT
    created: bool
    dry_run: bool = False


@dataclass(frozen=True, slots=True)
class Deleted:
    count: int
    not_found: tuple[str, ...]


class TrafexClient:
    """trafexd's API at ``target`` (``HOST:PORT``). ``timeout``: seconds per call (and
    per list); None waits as long as it takes. Watching events never times out."""

    def __init__(
        self,
        target: str,
        *,
        timeout: float | None = 30.0,
        tls_ca: bytes | None = None,
        token: str | None = None,
        client_cert: bytes | None = None,
        client_key: bytes | None = None,
    ) -> None:
        """TLS when ``tls_ca`` (PEM) is given, mTLS with ``client_cert``/``client_key``
        (PEM); ``token`` is sent with every call, over TLS or to a loopback target
        (:func:`~trafex.api.security.channel_credentials`; read the files with
        :func:`~trafex.api.security.read_pem` and :func:`~trafex.api.security.read_token`).
        A token for another target without TLS is a ``SecurityError``."""
        self.target = target
        self.timeout = timeout
        credentials = channel_credentials(
            target, tls_ca=tls_ca, token=token, client_cert=client_cert, client_key=client_key
        )
        if credentials is None:
            self._channel = grpc.insecure_channel(target, options=_CHANNEL_OPTIONS)
        else:
            self._channel = grpc.secure_channel(target, credentials, options=_CHANNEL_OPTIONS)
        self._stub: Any = trafex_pb2_grpc.TrafexStub(self._channel)

    def connect(self, timeout: float) -> bool:
        """Open the connection now (False: not within ``timeout`` seconds)."""
        try:
            grpc.channel_ready_future(self._channel).result(timeout=timeout)
        except grpc.FutureTimeoutError:
            return False
        return True

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> TrafexClient:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # -- calls --------------------------------------------------------------------------

    def _unary(self, method: Callable[..., Any], request: Any) -> Any:
        try:
            return method(request, timeout=self.timeout)
        except grpc.RpcError as error:
            raise _error(error) from None

    def _change(self, method: Callable[..., Any], request: Any) -> Any:
        """A call that changes the store: its answer also says whether it is announced."""
        response = self._unary(method, request)
        reason = rpc.response_deferred(response)
        if reason is not None:
            raise NotAnnouncedError(f"{rpc.NOT_ANNOUNCED}: {reason}", "OK", reason)
        return response

    def _stream(
        self, method: Callable[..., Any], request: Any, timeout: float | None
    ) -> Iterator[Any]:
        try:
            yield from method(request, timeout=timeout)
        except grpc.RpcError as error:
            raise _error(error) from None

    # -- FlowSpec rules -----------------------------------------------------------------

    def add_flow(self, rule: FlowRule, options: IntentOptions | None = None) -> Added[FlowIntent]:
        """Add ``rule``, or update the actions of the rule with the same match."""
        request = rpc.add_flow_request(rule, options or IntentOptions())
        response = self._change(self._stub.AddFlow, request)
        return Added(
            flow_from_proto(response.rule), response.created, rpc.response_dry_run(response)
        )

    def add_flows(self, items: Sequence[tuple[FlowRule, IntentOptions]]) -> list[Added[FlowIntent]]:
        """Add or update several rules in one call: all are stored, or none."""
        response = self._change(self._stub.AddFlows, rpc.add_flows_request(items))
        dry_run = rpc.response_dry_run(response)
        return [Added(flow_from_proto(r.rule), r.created, dry_run) for r in response.results]

    def delete_flow(self, selector: str | FlowMatch) -> FlowIntent:
        """Withdraw the rule with this id, or with this match; returns it."""
        response = self._change(self._stub.DeleteFlow, rpc.delete_flow_request(selector))
        return flow_from_proto(response.rule)

    def delete_flows(self, ids: Iterable[str]) -> Deleted:
        response = self._change(self._stub.DeleteFlows, pb.DeleteFlowsRequest(ids=list(ids)))
        return Deleted(response.deleted, tuple(response.not_found))

    def list_flows(self, family: Family | None = None) -> list[FlowIntent]:
        """The rules in force (of ``family``, or both), oldest first."""
        responses = self._stream(self._stub.ListFlows, rpc.list_flows_request(family), self.timeout)
        return [flow_from_proto(response.rule) for response in responses]

    # -- routes -------------------------------------------------------------------------

    def add_route(
        self, route: UnicastRoute, options: IntentOptions | None = None
    ) -> Added[RouteIntent]:
        """Add ``route``, or update the route at the same prefix."""
        request = rpc.add_route_request(route, options or IntentOptions())
        response = self._change(self._stub.AddRoute, request)
        dry_run = rpc.response_dry_run(response)
        return Added(route_intent_from_proto(response.route), response.created, dry_run)

    def delete_route(self, selector: str | IPNetwork) -> RouteIntent:
        """Withdraw the route with this id, or at this prefix; returns it."""
        response = self._change(self._stub.DeleteRoute, rpc.delete_route_request(selector))
        return route_intent_from_proto(response.route)

    def list_routes(self) -> list[RouteIntent]:
        """The routes in force, oldest first."""
        responses = self._stream(self._stub.ListRoutes, pb.ListRoutesRequest(), self.timeout)
        return [route_intent_from_proto(response.route) for response in responses]

    # -- events and status --------------------------------------------------------------

    def watch_events(self) -> Iterator[Event]:
        """trafexd's events as they happen, until it stops (no timeout)."""
        for response in self._stream(self._stub.WatchEvents, pb.WatchEventsRequest(), None):
            event = rpc.event_from_proto(response.event)
            if event is not None:  # a kind this version does not know
                yield event

    def status(self) -> Status:
        return rpc.status_from_proto(self._unary(self._stub.GetStatus, pb.GetStatusRequest()))
