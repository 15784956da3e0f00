"""Unit tests for trafex.api.rpc: each RPC's requests and answers ⇄ the model, and the
typed outcome of a change."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from tests.unit.fakeapi import STATUS
from tests.unit.helpers import refused
from trafex.api import rpc
from trafex.api.stubs import trafex_pb2 as pb
from trafex.control.controller import IntentOptions
from trafex.control.events import Event, EventKind
from trafex.control.status import SidecarStatus, Status
from trafex.model.flowspec import Family
from trafex.model.grammar import parse_match, parse_rule
from trafex.model.intent import FlowIntent, IntentMeta, RouteIntent
from trafex.model.route import UnicastRoute

RULE = parse_rule("destination 10.0.0.1/32 protocol tcp discard")
ROUTE = UnicastRoute(ipaddress.ip_network("3001:10:66::5/128"))
FLOW = FlowIntent(IntentMeta("fs-0123456789ab", "", "api", 1.0, 1.0), RULE)
ROUTED = RouteIntent(IntentMeta("rt-0123456789ab", "", "api", 1.0, 1.0), ROUTE)

# ---------------------------------------------------------------------------------------
# Requests


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (IntentOptions(), IntentOptions()),
        (IntentOptions(600.0, "scan", "dns"), IntentOptions(600.0, "scan", "dns")),
        (IntentOptions(0.4, "", "cli"), IntentOptions(1.0, "", "cli")),
        (IntentOptions(90.6, "", "cli"), IntentOptions(91.0, "", "cli")),
        (IntentOptions(None, "", ""), IntentOptions(None, "", "api")),
        (IntentOptions(force=True, dry_run=True), IntentOptions(force=True, dry_run=True)),
    ],
)
def test_options_round_trip(options: IntentOptions, expected: IntentOptions) -> None:
    """The TTL travels in whole seconds (a fraction rounds, never down to 'no expiry');
    no origin is trafexd's default, api."""
    assert expected == rpc.options_from_proto(rpc.options_to_proto(options))


def test_flow_requests_name_the_bad_rule_of_a_batch() -> None:
    """The rules of a batch come back with their options; a bad one is refused naming
    its index and the bad part (a single request names the part alone)."""
    good = rpc.add_flow_request(RULE, IntentOptions(60.0, "why", "cli"))
    bad = pb.AddFlowRequest(flow=pb.FlowSpec(text="destination 10.0.0.1/33 discard"))
    assert [(RULE, IntentOptions(60.0, "why", "cli"))] == rpc.flow_requests_from_proto([good])
    error = refused(None, rpc.flow_requests_from_proto, [good, bad])
    assert str(error).startswith("flow 1: destination: ")
    assert refused("destination", rpc.flow_requests_from_proto, [bad]).field == "destination"


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("fs-0123456789ab", "fs-0123456789ab"),
        (parse_match("destination 10.0.0.1/32"), parse_match("destination 10.0.0.1/32")),
    ],
)
def test_flow_selector_round_trip(selector: Any, expected: Any) -> None:
    """DeleteFlow names a rule by id or by match."""
    assert expected == rpc.flow_selector(rpc.delete_flow_request(selector))


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("rt-0123456789ab", "rt-0123456789ab"),
        (ROUTE.prefix, ROUTE),
    ],
)
def test_route_selector_round_trip(selector: Any, expected: Any) -> None:
    """DeleteRoute names a route by id, or by prefix (the route at that prefix)."""
    assert expected == rpc.route_selector(rpc.delete_route_request(selector))


@pytest.mark.parametrize(
    ("call", "request_", "field"),
    [
        (rpc.flow_selector, pb.DeleteFlowRequest(), None),
        (rpc.flow_selector, pb.DeleteFlowRequest(flow=pb.FlowSpec()), None),
        (rpc.route_selector, pb.DeleteRouteRequest(), None),
        (rpc.route_selector, pb.DeleteRouteRequest(prefix="192.0.2.1/24"), "prefix"),
    ],
)
def test_selectors_refuse_nothing_and_bad_prefixes(call: Any, request_: Any, field: Any) -> None:
    """A delete that names nothing, or a prefix with host bits, is refused."""
    refused(field, call, request_)


def test_list_flows_request_family() -> None:
    """No family lists both; a family lists its own."""
    assert rpc.list_flows_request(None).family == pb.ADDRESS_FAMILY_UNSPECIFIED
    assert rpc.list_flows_request(Family.IPV6).family == pb.ADDRESS_FAMILY_IPV6


# ---------------------------------------------------------------------------------------
# Answers and their outcome


@pytest.mark.parametrize(
    "response",
    [
        rpc.add_flow_response(FLOW, True),
        rpc.add_flows_response([(FLOW, True)]),
        rpc.delete_flow_response(FLOW),
        rpc.delete_flows_response([FLOW], ["fs-000000000000"]),
        rpc.add_route_response(ROUTED, False),
        rpc.delete_route_response(ROUTED),
    ],
    ids=["AddFlow", "AddFlows", "DeleteFlow", "DeleteFlows", "AddRoute", "DeleteRoute"],
)
def test_every_change_answer_says_queued(response: Any) -> None:
    """Every change's answer carries its typed outcome: queued for the sidecar."""
    assert response.outcome.announcement == pb.ANNOUNCEMENT_QUEUED
    assert rpc.response_deferred(response) is None


@pytest.mark.parametrize(
    "response",
    [
        rpc.add_flow_response(FLOW, True, dry_run=True),
        rpc.add_flows_response([(FLOW, True)], dry_run=True),
        rpc.add_route_response(ROUTED, False, dry_run=True),
    ],
    ids=["AddFlow", "AddFlows", "AddRoute"],
)
def test_a_dry_run_answer_says_so(response: Any) -> None:
    """The answer to a dry run carries the outcome DRY_RUN (not QUEUED, not deferred)."""
    assert response.outcome.announcement == pb.ANNOUNCEMENT_DRY_RUN
    assert (rpc.response_dry_run(response), rpc.response_deferred(response)) == (True, None)
    assert not rpc.response_dry_run(rpc.add_flow_response(FLOW, True))


def test_deferred_outcome_round_trip() -> None:
    """The trailing metadata of a stored-but-not-announced answer reads back as its
    reason; an answer whose outcome says DEFERRED does too."""
    assert rpc.deferred_reason(rpc.deferred_metadata("gobgpd is down")) == "gobgpd is down"
    response = pb.AddFlowResponse()
    response.outcome.announcement = pb.ANNOUNCEMENT_DEFERRED
    response.outcome.reason = "gobgpd is down"
    assert rpc.response_deferred(response) == "gobgpd is down"


@pytest.mark.parametrize(
    "metadata",
    [
        None,
        (),
        (("other-bin", b"\x08\x02"),),
        ((rpc.OUTCOME_KEY, b"\xff\xff"),),  # not a ChangeOutcome
        (
            (
                rpc.OUTCOME_KEY,
                pb.ChangeOutcome(announcement=pb.ANNOUNCEMENT_QUEUED).SerializeToString(),
            ),
        ),
    ],
    ids=["none", "empty", "other key", "garbage", "queued"],
)
def test_no_deferred_outcome(metadata: Any) -> None:
    """Without a DEFERRED outcome in the trailer, the change was not stored: None."""
    assert rpc.deferred_reason(metadata) is None


# ---------------------------------------------------------------------------------------
# Events and status


@pytest.mark.parametrize("kind", list(EventKind))
def test_event_round_trip(kind: EventKind) -> None:
    """Every event kind has its enum value and reads back as itself, with its time."""
    event = Event(kind, "fs-1", "subject", "detail", time=12.5)
    message = pb.WatchEventsResponse.FromString(
        rpc.watch_events_response(event).SerializeToString()
    ).event
    assert event == rpc.event_from_proto(message)


def test_unknown_event_kind_is_skipped() -> None:
    """An event kind this version does not know (a newer trafexd's) reads as None."""
    message = pb.Event(id="x")
    message.kind = 99  # type: ignore[assignment]
    assert rpc.event_from_proto(message) is None


@pytest.mark.parametrize(
    "status",
    [
        STATUS,
        Status(
            version="0.1.0",
            asn=65010,
            router_id="127.0.0.1",
            flows=0,
            routes=0,
            last_reconcile=None,
            sidecar=SidecarStatus(
                False, "127.0.0.1:50051", "", False, None, 0, "gobgpd is down", 0, "", 0
            ),
            peers=(),
        ),
    ],
    ids=["healthy", "down"],
)
def test_status_round_trip(status: Status) -> None:
    """GetStatus's answer reads back as the daemon's snapshot: no pid, no reconcile and
    no peer uptime stay None."""
    message = pb.GetStatusResponse.FromString(rpc.status_to_proto(status).SerializeToString())
    assert status == rpc.status_from_proto(message)
