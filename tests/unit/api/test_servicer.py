"""Unit tests for trafex.api.servicer: what each RPC answers on the wire, and which
status code each error of a request or of the controller becomes.

The real servicer runs in process over a fake controller (tests/unit/fakeapi.py); the
tests call it with trafex.v1's raw stub, as any gRPC client would.
"""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import grpc
import pytest

from tests.unit.fakeapi import STATUS, Api, FakeController, serve
from trafex.api import rpc
from trafex.api.stubs import trafex_pb2 as pb
from trafex.api.stubs import trafex_pb2_grpc
from trafex.bgp.client import SidecarError
from trafex.control.controller import DryRunError, IntentOptions
from trafex.control.events import Event, EventKind
from trafex.control.guardrails import GuardError
from trafex.control.store import StoreError
from trafex.model.errors import ValidationError
from trafex.model.flowspec import FlowRule
from trafex.model.grammar import parse_rule, render_rule
from trafex.model.intent import FlowIntent, IntentMeta, RouteIntent
from trafex.model.route import UnicastRoute

Code = grpc.StatusCode
RULE = parse_rule("destination 10.0.0.1/32 protocol tcp discard")
OTHER = parse_rule("destination 10.0.0.2/32 discard")
ROUTE = UnicastRoute(ipaddress.ip_network("3001:10:66::5/128"))
ADD_FLOW = rpc.add_flow_request(RULE, IntentOptions())
ADD_ROUTE = rpc.add_route_request(ROUTE, IntentOptions())
OTHER_TEXT = render_rule(OTHER)


@pytest.fixture
def api() -> Iterator[tuple[Api[FakeController], Any]]:
    """The real servicer over a fake controller holding RULE and ROUTE, and a raw stub."""
    with serve(FakeController()) as running:
        running.controller.holding(RULE, ROUTE)
        channel = grpc.insecure_channel(running.target)
        try:
            yield running, trafex_pb2_grpc.TrafexStub(channel)
        finally:
            channel.close()


def ident(api: Api[FakeController], kind: str) -> str:
    """The id of the rule (``fs``) or the route (``rt``) the fake controller holds."""
    intents = api.controller.flows() if kind == "fs" else api.controller.routes()
    return intents[0].meta.id


def failure(call: Callable[[], object]) -> tuple[Code, str, str | None]:
    """(status code, message, deferred reason from the trailer) of a call that fails."""
    with pytest.raises(grpc.RpcError) as info:
        call()
    error: Any = info.value
    return error.code(), error.details(), rpc.deferred_reason(error.trailing_metadata())


# ---------------------------------------------------------------------------------------
# Requests trafexd refuses or cannot find


@pytest.mark.parametrize(
    ("method", "request_", "expected"),
    [
        (
            "AddFlow",
            pb.AddFlowRequest(flow=pb.FlowSpec(text="destination 10.0.0.1/33 discard")),
            (Code.INVALID_ARGUMENT, "destination: "),
        ),
        ("AddFlow", pb.AddFlowRequest(), (Code.INVALID_ARGUMENT, "a rule needs a match")),
        (
            "AddFlows",
            pb.AddFlowsRequest(flows=[ADD_FLOW, pb.AddFlowRequest(flow=pb.FlowSpec(text="x"))]),
            (Code.INVALID_ARGUMENT, "flow 1: "),
        ),
        ("DeleteFlow", pb.DeleteFlowRequest(), (Code.INVALID_ARGUMENT, "give the id or")),
        (
            "DeleteFlow",
            pb.DeleteFlowRequest(id="fs-000000000000"),
            (Code.NOT_FOUND, "no flow rule with id fs-000000000000"),
        ),
        (
            "DeleteFlow",
            pb.DeleteFlowRequest(id="fs-nonexist"),
            (Code.NOT_FOUND, "no flow rule with id fs-nonexist"),
        ),
        (
            "DeleteFlow",
            rpc.delete_flow_request(OTHER.match),
            (Code.NOT_FOUND, "no rule or route with that match"),
        ),
        (
            "AddRoute",
            pb.AddRouteRequest(route=pb.RouteSpec(prefix="192.0.2.1/24")),
            (Code.INVALID_ARGUMENT, "prefix: "),
        ),
        (
            "AddRoute",
            pb.AddRouteRequest(route=pb.RouteSpec(prefix="192.0.2.1", next_hop="gw")),
            (Code.INVALID_ARGUMENT, "next-hop: "),
        ),
        ("DeleteRoute", pb.DeleteRouteRequest(), (Code.INVALID_ARGUMENT, "give the id or")),
        (
            "DeleteRoute",
            pb.DeleteRouteRequest(prefix="192.0.2.1/24"),
            (Code.INVALID_ARGUMENT, "prefix: "),
        ),
        (
            "DeleteRoute",
            pb.DeleteRouteRequest(id="rt-000000000000"),
            (Code.NOT_FOUND, "no route with id rt-000000000000"),
        ),
        ("DeleteRoute", pb.DeleteRouteRequest(prefix="192.0.2.9"), (Code.NOT_FOUND, "no rule")),
    ],
)
def test_bad_or_unknown_requests(
    api: tuple[Api[FakeController], Any], method: str, request_: Any, expected: tuple[Code, str]
) -> None:
    """A malformed request is INVALID_ARGUMENT naming the bad part, an unknown id, match
    or prefix NOT_FOUND; the controller is not asked to change anything."""
    running, stub = api
    code, message, deferred = failure(lambda: getattr(stub, method)(request_, timeout=5))
    assert expected == (code, message[: len(expected[1])])
    assert (deferred, running.controller.changes) == (None, [])


@pytest.mark.parametrize(("method", "kind"), [("DeleteFlow", "rt"), ("DeleteRoute", "fs")])
def test_an_id_of_the_other_kind_is_a_failed_precondition(
    api: tuple[Api[FakeController], Any], method: str, kind: str
) -> None:
    """A route's id given to DeleteFlow (a rule's to DeleteRoute) exists but names the
    wrong kind of intent: FAILED_PRECONDITION saying which, and nothing is withdrawn."""
    running, stub = api
    other = ident(running, kind)
    request_ = (pb.DeleteFlowRequest if method == "DeleteFlow" else pb.DeleteRouteRequest)(id=other)
    code, message, _ = failure(lambda: getattr(stub, method)(request_, timeout=5))
    noun = "a route, not a FlowSpec rule" if kind == "rt" else "a FlowSpec rule, not a route"
    assert (Code.FAILED_PRECONDITION, f"{other} is {noun}") == (code, message)
    assert running.controller.changes == []


# ---------------------------------------------------------------------------------------
# What the controller raises, for every RPC that changes something


def change_calls(api: Api[FakeController], stub: Any) -> dict[str, Callable[[], Any]]:
    """One valid call of each RPC that changes the store."""
    return {
        "AddFlow": lambda: stub.AddFlow(ADD_FLOW, timeout=5),
        "AddFlows": lambda: stub.AddFlows(pb.AddFlowsRequest(flows=[ADD_FLOW]), timeout=5),
        "DeleteFlow": lambda: stub.DeleteFlow(pb.DeleteFlowRequest(id=ident(api, "fs")), timeout=5),
        "DeleteFlows": lambda: stub.DeleteFlows(
            pb.DeleteFlowsRequest(ids=[ident(api, "fs")]), timeout=5
        ),
        "AddRoute": lambda: stub.AddRoute(ADD_ROUTE, timeout=5),
        "DeleteRoute": lambda: stub.DeleteRoute(
            pb.DeleteRouteRequest(prefix=str(ROUTE.prefix)), timeout=5
        ),
    }


CHANGES = ["AddFlow", "AddFlows", "DeleteFlow", "DeleteFlows", "AddRoute", "DeleteRoute"]


@pytest.mark.parametrize("method", CHANGES)
@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (
            SidecarError("gobgpd is down", unavailable=True),
            (Code.UNAVAILABLE, "stored, not yet announced: gobgpd is down", "gobgpd is down"),
        ),
        (
            SidecarError("gobgpd refused (AddPath): bad"),
            (
                Code.FAILED_PRECONDITION,
                "stored, not yet announced: gobgpd refused (AddPath): bad",
                "gobgpd refused (AddPath): bad",
            ),
        ),
        (StoreError("disk full"), (Code.INTERNAL, "disk full", None)),
        (KeyError("bug"), (Code.INTERNAL, "internal error: KeyError", None)),
        (
            ValidationError("6 terms, above the limit", "port"),
            (Code.INVALID_ARGUMENT, "port: 6 terms, above the limit", None),
        ),
        (
            GuardError("caps", "2 rules in force; the limit is 2 ([guard] max_rules)"),
            (
                Code.FAILED_PRECONDITION,
                "guard caps: 2 rules in force; the limit is 2 ([guard] max_rules)",
                None,
            ),
        ),
        (
            GuardError("rate", "origin 'x' is above 1 intents/s"),
            (Code.FAILED_PRECONDITION, "guard rate: origin 'x' is above 1 intents/s", None),
        ),
        (
            GuardError("origin", "origin 'x' may act only inside 192.0.2.0/24"),
            (
                Code.FAILED_PRECONDITION,
                "guard origin: origin 'x' may act only inside 192.0.2.0/24",
                None,
            ),
        ),
    ],
    ids=["sidecar down", "sidecar refused", "store", "bug", "guardrail", "caps", "rate", "origin"],
)
def test_controller_errors_become_status_codes(
    api: tuple[Api[FakeController], Any],
    method: str,
    error: Exception,
    expected: tuple[Code, str, str | None],
) -> None:
    """A sidecar that cannot take a stored change is UNAVAILABLE (refusing it:
    FAILED_PRECONDITION) with the typed DEFERRED outcome and its reason in the trailer;
    a store that cannot be written is INTERNAL; a rule the controller's guardrails
    refuse is INVALID_ARGUMENT; a guard's refusal (caps, rate, origin) is
    FAILED_PRECONDITION naming the guard; a bug is INTERNAL naming no more than its
    type. Only stored changes carry the outcome."""
    running, stub = api
    call = change_calls(running, stub)[method]
    running.controller.fail = lambda items: error
    assert expected == failure(call)


@pytest.mark.parametrize("method", CHANGES)
def test_a_change_answers_queued(api: tuple[Api[FakeController], Any], method: str) -> None:
    """Each change answers OK with the typed outcome QUEUED, and reaches the controller."""
    running, stub = api
    response = change_calls(running, stub)[method]()
    assert (response.outcome.announcement, len(running.controller.changes)) == (
        pb.ANNOUNCEMENT_QUEUED,
        1,
    )


def _dry_run(items: Sequence[Any]) -> Exception:
    """What the controller raises for a dry run: the would-be intents, ids fs-dry/rt-dry."""
    assert any(options.dry_run for _, options in items)  # the request's option came through
    answer = []
    for item, options in items:
        kind = "fs" if isinstance(item, FlowRule) else "rt"
        meta = IntentMeta(f"{kind}-dry", "", options.origin, 1.0, 1.0)
        intent = FlowIntent(meta, item) if isinstance(item, FlowRule) else RouteIntent(meta, item)
        answer.append((intent, True))
    return DryRunError(tuple(answer))


@pytest.mark.parametrize(
    ("method", "request_"),
    [
        ("AddFlow", rpc.add_flow_request(OTHER, IntentOptions(dry_run=True))),
        (
            "AddFlows",
            rpc.add_flows_request([(OTHER, IntentOptions()), (RULE, IntentOptions(dry_run=True))]),
        ),
        ("AddRoute", rpc.add_route_request(ROUTE, IntentOptions(dry_run=True))),
    ],
)
def test_a_dry_run_answers_ok_and_says_dry_run(
    api: tuple[Api[FakeController], Any], method: str, request_: Any
) -> None:
    """The request's dry_run reaches the controller; its DryRunError is answered OK with
    the would-be intents and the typed outcome DRY_RUN, not as an error."""
    running, stub = api
    running.controller.fail = _dry_run
    response = getattr(stub, method)(request_, timeout=5)
    assert response.outcome.announcement == pb.ANNOUNCEMENT_DRY_RUN
    if method == "AddRoute":
        assert (response.route.meta.id, response.created) == ("rt-dry", True)
    elif method == "AddFlow":
        assert (response.rule.meta.id, response.rule.text) == ("fs-dry", OTHER_TEXT)
    else:
        assert [r.rule.meta.id for r in response.results] == ["fs-dry", "fs-dry"]


# ---------------------------------------------------------------------------------------
# Answers


def test_add_and_delete_answer_the_stored_intent(api: tuple[Api[FakeController], Any]) -> None:
    """AddFlow answers the stored rule (an update of the same match is not created);
    DeleteFlow by match answers the rule it withdrew; DeleteFlows counts and names the
    ids it did not find."""
    running, stub = api
    first = stub.AddFlow(rpc.add_flow_request(OTHER, IntentOptions(60.0, "why", "cli")))
    again = stub.AddFlow(rpc.add_flow_request(OTHER, IntentOptions()))
    gone = stub.DeleteFlow(rpc.delete_flow_request(OTHER.match))
    many = stub.DeleteFlows(pb.DeleteFlowsRequest(ids=[ident(running, "fs"), "fs-000000000000"]))
    expected = (True, False, first.rule.meta.id, "why", 1, ["fs-000000000000"])
    actual = (
        first.created,
        again.created,
        gone.rule.meta.id,
        first.rule.meta.reason,
        many.deleted,
        list(many.not_found),
    )
    assert expected == actual
    assert (first.rule.text, first.rule.nlri) == (gone.rule.text, OTHER.match.encode().hex())


def test_lists_oldest_first_and_by_family(api: tuple[Api[FakeController], Any]) -> None:
    """ListFlows streams the rules oldest first, only those of the family asked for;
    ListRoutes streams the routes."""
    running, stub = api
    v6 = parse_rule("destination 3001:4:b::10/128 discard")
    stub.AddFlows(rpc.add_flows_request([(OTHER, IntentOptions()), (v6, IntentOptions())]))
    every = [r.rule.text for r in stub.ListFlows(pb.ListFlowsRequest())]
    v6_only = [r.rule.text for r in stub.ListFlows(rpc.list_flows_request(v6.family))]
    routes = [r.route.spec.prefix for r in stub.ListRoutes(pb.ListRoutesRequest())]
    texts = [i.text for i in running.controller.flows()]
    assert (every, v6_only, routes) == (texts, [texts[-1]], [str(ROUTE.prefix)])


def test_get_status_answers_the_daemons_snapshot(api: tuple[Api[FakeController], Any]) -> None:
    """GetStatus translates the snapshot it is given (the servicer asks GoBGP nothing)."""
    _, stub = api
    assert rpc.status_from_proto(stub.GetStatus(pb.GetStatusRequest(), timeout=5)) == STATUS


def test_watch_events_streams_until_the_bus_closes(api: tuple[Api[FakeController], Any]) -> None:
    """WatchEvents streams what is published after it subscribed, and ends when trafexd
    closes its event bus."""
    running, stub = api
    stream = stub.WatchEvents(pb.WatchEventsRequest())
    received: list[Any] = []
    reader = threading.Thread(target=lambda: received.extend(r.event for r in stream))
    reader.start()
    event = Event(EventKind.PEER_UP, subject="192.0.2.2", time=5.0)
    while not received:  # subscribed once the first event published after it arrives
        running.events.publish(event)
        reader.join(0.05)
    running.events.close()
    reader.join(5)
    assert not reader.is_alive()
    assert {rpc.event_from_proto(message) for message in received} == {event}
