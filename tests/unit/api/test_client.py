"""Unit tests for trafex.api.client: the typed client against a real in-process API.

The real servicer runs over a fake controller (tests/unit/fakeapi.py), or over the real
Controller with the tests' fake GoBGP RIB (tests/unit/fakerib.py).
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.unit.fakeapi import STATUS, Api, FakeController, serve
from tests.unit.fakerib import rig
from trafex.api.client import (
    Added,
    ApiError,
    DeadlineError,
    Deleted,
    IntentOptions,
    InternalError,
    NoSuchIntentError,
    NotAnnouncedError,
    PreconditionError,
    RefusedError,
    TrafexClient,
    UnreachableError,
)
from trafex.api.server import ApiServer, ListenError
from trafex.api.servicer import TrafexServicer
from trafex.bgp.client import SidecarError
from trafex.control.events import Event, EventBus, EventKind
from trafex.control.store import StoreError
from trafex.model.errors import ValidationError
from trafex.model.flowspec import Family
from trafex.model.grammar import parse_rule
from trafex.model.intent import RouteIntent
from trafex.model.route import UnicastRoute

RULE = parse_rule("destination 10.0.0.1/32 protocol tcp discard")
V6 = parse_rule("source 3001:1:a::10/128 destination 3001:4:b::10/128 redirect 6:302")
ROUTE = UnicastRoute(ipaddress.ip_network("3001:10:66::5/128"), communities=(0xFFFF029A,))


@pytest.fixture
def api() -> Iterator[tuple[Api[FakeController], TrafexClient]]:
    with serve(FakeController()) as running, TrafexClient(running.target, timeout=5) as client:
        yield running, client


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# ---------------------------------------------------------------------------------------
# Model values in, model values out


def test_flows_round_trip(api: tuple[Api[FakeController], TrafexClient]) -> None:
    """add_flow returns the stored rule with its meta and whether it is new; the same
    match again updates it; list_flows filters by family; delete_flow by id or by match
    returns the rule withdrawn; delete_flows counts and names the unknown ids."""
    running, client = api
    options = IntentOptions(600.0, "scan", "cli")
    added = client.add_flow(RULE, options)
    again = client.add_flow(RULE, IntentOptions(reason="again"))
    (v6,) = client.add_flows([(V6, IntentOptions())])
    assert (added.intent.rule, added.created, again.created, v6.created) == (
        RULE,
        True,
        False,
        True,
    )
    assert (added.intent.meta.reason, added.intent.meta.origin) == ("scan", "cli")
    assert added.intent.meta.expires_at == added.intent.meta.created_at + 600
    assert [i.rule for i in client.list_flows()] == [RULE, V6]
    assert [i.rule for i in client.list_flows(Family.IPV6)] == [V6]
    assert client.delete_flow(V6.match).meta.id == v6.intent.meta.id
    expected = Deleted(1, ("fs-000000000000",))
    assert expected == client.delete_flows([added.intent.meta.id, "fs-000000000000"])
    assert client.list_flows() == []
    assert [action for action, _ in running.controller.changes] == ["add"] * 3 + ["remove"] * 2


def test_routes_round_trip(api: tuple[Api[FakeController], TrafexClient]) -> None:
    """add_route returns the stored route (typed: an Added of a RouteIntent);
    delete_route by prefix or id returns it."""
    _, client = api
    added = client.add_route(ROUTE, IntentOptions(reason="dns: x", origin="dns"))
    assert isinstance(added, Added) and isinstance(added.intent, RouteIntent)
    assert (added.intent.route, added.created) == (ROUTE, True)
    assert client.list_routes() == [added.intent]
    assert client.delete_route(ROUTE.prefix) == added.intent
    again = client.add_route(ROUTE)
    assert client.delete_route(again.intent.meta.id).route == ROUTE


def test_status_and_events(api: tuple[Api[FakeController], TrafexClient]) -> None:
    """status() is the daemon's snapshot as dataclasses; watch_events() yields typed
    events until trafexd ends the stream."""
    running, client = api
    assert client.status() == STATUS
    seen: list[Event] = []
    watcher = threading.Thread(target=lambda: seen.extend(client.watch_events()))
    watcher.start()
    event = Event(EventKind.FLOW_EXPIRED, "fs-0123456789ab", "destination 10.0.0.1/32", time=2.0)
    while not seen:  # the watch is subscribed once an event published after it arrives
        running.events.publish(event)
        watcher.join(0.05)
    running.events.close()
    watcher.join(5)
    assert (watcher.is_alive(), set(seen)) == (False, {event})


# ---------------------------------------------------------------------------------------
# Narrow errors


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (ValidationError("6 terms", "port"), (RefusedError, "INVALID_ARGUMENT", "port: 6 terms")),
        (StoreError("disk full"), (InternalError, "INTERNAL", "disk full")),
        (
            SidecarError("gobgpd is down", unavailable=True),
            (NotAnnouncedError, "UNAVAILABLE", "stored, not yet announced: gobgpd is down"),
        ),
    ],
    ids=["refused", "store", "not announced"],
)
def test_each_failure_is_its_own_error(
    api: tuple[Api[FakeController], TrafexClient],
    error: Exception,
    expected: tuple[type[ApiError], str, str],
) -> None:
    """What the controller raises reaches the caller as one narrow ApiError, with the
    status's name and trafexd's message."""
    running, client = api
    running.controller.fail = lambda items: error
    with pytest.raises(ApiError) as info:
        client.add_flow(RULE)
    assert expected == (type(info.value), info.value.code, info.value.details)


def test_not_announced_carries_the_typed_reason(
    api: tuple[Api[FakeController], TrafexClient],
) -> None:
    """Stored, not yet announced: the error says why, from the typed outcome (not the
    message), for adds and deletes alike."""
    running, client = api
    (held,) = running.controller.holding(RULE)
    running.controller.fail = lambda items: SidecarError("gobgpd is down", unavailable=True)
    reasons = []
    for call in (
        lambda: client.add_route(ROUTE),
        lambda: client.add_flows([(V6, IntentOptions())]),
        lambda: client.delete_flow(held.meta.id),
        lambda: client.delete_flows([held.meta.id]),
    ):
        with pytest.raises(NotAnnouncedError) as info:
            call()
        reasons.append(info.value.reason)
    assert reasons == ["gobgpd is down"] * 4


def test_unknown_and_wrong_kind_ids(api: tuple[Api[FakeController], TrafexClient]) -> None:
    """An unknown id is NoSuchIntentError; a route's id given to delete_flow is a
    PreconditionError."""
    running, client = api
    (route,) = running.controller.holding(ROUTE)
    with pytest.raises(NoSuchIntentError):
        client.delete_flow("fs-000000000000")
    with pytest.raises(PreconditionError, match="is a route, not a FlowSpec rule"):
        client.delete_flow(route.meta.id)


def test_deadline(api: tuple[Api[FakeController], TrafexClient]) -> None:
    """A trafexd that does not answer in time is a DeadlineError (the change is held by
    the controller, deterministically, until the test releases it)."""
    running, _ = api
    running.controller.gate = threading.Event()
    try:
        with TrafexClient(running.target, timeout=0.05) as hasty, pytest.raises(DeadlineError):
            hasty.add_flow(RULE)
    finally:
        running.controller.gate.set()


def test_unreachable() -> None:
    """Nothing listening: connect() says False, a call is an UnreachableError."""
    with TrafexClient(f"127.0.0.1:{free_port()}", timeout=1) as client:
        assert not client.connect(0.1)
        with pytest.raises(UnreachableError):
            client.status()


def test_an_address_not_of_this_host_is_a_listen_error() -> None:
    """The API server cannot listen on an address this host does not have: a
    ListenError naming it (trafexd prints it and exits 1)."""
    servicer = TrafexServicer(FakeController(), EventBus(), lambda: STATUS)
    with pytest.raises(ListenError, match=r"^cannot listen on 192\.0\.2\.1:"):
        ApiServer(servicer, f"192.0.2.1:{free_port()}")


# ---------------------------------------------------------------------------------------
# Against the real Controller


def test_real_controller_stores_and_says_not_announced(tmp_path: Path) -> None:
    """With the real Controller and its sidecar down, an add is stored and the client
    raises NotAnnouncedError with the controller's reason; once the sidecar is up, adds
    answer normally and the fake RIB holds the paths."""
    up = False
    with (
        rig(tmp_path, sidecar_up=lambda: up) as parts,
        serve(parts.controller) as running,
        TrafexClient(running.target, timeout=5) as client,
    ):
        with pytest.raises(NotAnnouncedError) as info:
            client.add_flow(RULE)
        assert (info.value.code, info.value.reason) == ("UNAVAILABLE", "gobgpd is down")
        assert [i.rule for i in client.list_flows()] == [RULE]
        up = True
        added = client.add_route(ROUTE)
        parts.controller.flush()
        assert isinstance(added.intent, RouteIntent) and added.created
        assert set(parts.rib.paths) == {ROUTE.key}  # the stored rule waits for a reconcile


def test_real_controller_refuses_a_guardrail(tmp_path: Path) -> None:
    """A rule past the controller's guardrail (max terms per component) is a
    RefusedError naming the component; nothing is stored."""
    many = parse_rule("destination 10.0.0.1/32 port [ =1 =2 =3 =4 =5 =6 ] discard")
    with (
        rig(tmp_path) as parts,
        serve(parts.controller) as running,
        TrafexClient(running.target, timeout=5) as client,
    ):
        with pytest.raises(RefusedError, match=r"^port: 6 terms"):
            client.add_flow(many)
        assert client.list_flows() == []


def test_real_controller_dry_run_and_caps(tmp_path: Path) -> None:
    """Through the real controller: a dry run returns the would-be intents marked
    dry_run and stores nothing; with [guard] dry_run every add is one; a capped add
    is a PreconditionError whose guard is "caps", and nothing is stored."""
    from trafex.control.guardrails import Guards

    with (
        rig(tmp_path / "a", guards=Guards(max_rules=1)) as parts,
        serve(parts.controller) as running,
        TrafexClient(running.target, timeout=5) as client,
    ):
        added = client.add_flow(RULE, IntentOptions(dry_run=True))
        assert (added.dry_run, added.created, added.intent.rule) == (True, True, RULE)
        (batch,) = client.add_flows([(V6, IntentOptions(dry_run=True))])
        assert batch.dry_run
        route = client.add_route(ROUTE, IntentOptions(dry_run=True))
        assert route.dry_run and client.list_routes() == [] and client.list_flows() == []
        assert not client.add_flow(RULE).dry_run
        with pytest.raises(PreconditionError) as info:
            client.add_flow(V6)
        assert info.value.guard == "caps"
        assert [i.rule for i in client.list_flows()] == [RULE]
    with (
        rig(tmp_path / "b", guards=Guards(dry_run=True)) as parts,
        serve(parts.controller) as running,
        TrafexClient(running.target, timeout=5) as client,
    ):
        assert client.add_flow(RULE).dry_run
        parts.controller.flush()
        assert (client.list_flows(), parts.rib.log) == ([], [])
