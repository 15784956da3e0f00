"""Unit tests for trafex.trigger.sender against trafexd's real API in process (the real
servicer over a fake controller, tests/unit/fakeapi.py).

What the controller receives is read from the fake's record of changes; a slow trafexd
is the fake holding each change at its gate until the test releases it, so nothing here
orders events by sleeping.
"""

from __future__ import annotations

import io
import socket
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.unit.fakeapi import Api, FakeController, serve
from trafex.bgp.client import SidecarError
from trafex.control.controller import DryRunError, IntentOptions
from trafex.control.guardrails import GuardError
from trafex.control.store import StoreError
from trafex.model.errors import ValidationError
from trafex.model.flowspec import FlowRule
from trafex.model.grammar import parse_rule
from trafex.model.intent import FlowIntent, IntentMeta
from trafex.model.route import UnicastRoute, parse_prefix
from trafex.trigger.intent import TriggerIntent
from trafex.trigger.sender import BackgroundSender, Sender, percentile


@pytest.fixture
def api() -> Iterator[Api[FakeController]]:
    controller = FakeController()
    with serve(controller) as running:
        try:
            yield running
        finally:
            if controller.gate is not None:
                controller.gate.set()  # never leave a servicer thread held


def free_target() -> str:
    """A loopback HOST:PORT nothing listens on (free when this returns)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{sock.getsockname()[1]}"


def flow_intent(text: str, origin: str = "retransmit") -> TriggerIntent:
    return TriggerIntent(parse_rule(text), 600.0, f"why {text}", origin)


def route_intent(prefix: str) -> TriggerIntent:
    return TriggerIntent(UnicastRoute(parse_prefix(prefix)), 3600.0, "dns: x", "dns")


def added(api: Api[FakeController]) -> list[list[Any]]:
    """The items of each add the controller received, in order."""
    return [[item for item, _ in items] for action, items in api.controller.changes]


FWD = "source 3001:1:a::10/128 destination 3001:4:b::10/128 redirect 6:302"
REV = "source 3001:4:b::10/128 destination 3001:1:a::10/128 redirect 6:302"


def test_routes_one_by_one_flows_in_one_call(api: Api[FakeController]) -> None:
    """Both directions of a flow go in one call; routes in their own; the options carry
    TTL, reason and origin; each accepted intent has a latency sample."""
    sender = Sender(api.target)
    assert sender.connect()
    started = time.time()
    sender.send([flow_intent(FWD), flow_intent(REV), route_intent("3001:10:66::5/128")], started)
    route = UnicastRoute(parse_prefix("3001:10:66::5/128"))
    assert added(api) == [[parse_rule(FWD), parse_rule(REV)], [route]]
    (_, flows), (_, routes) = api.controller.changes
    assert flows[0][1] == IntentOptions(600.0, f"why {FWD}", "retransmit")
    assert routes[0][1] == IntentOptions(3600.0, "dns: x", "dns")
    assert routes[0][0].next_hop is None  # next-hop self
    assert sender.stats.sent == 3 and sender.stats.failed == 0
    assert len(sender.stats.latencies) == 3
    assert all(0 <= s < time.time() - started + 1e-3 for s in sender.stats.latencies)
    sender.close()


def test_invalid_argument_names_the_intent(api: Api[FakeController]) -> None:
    """A refused batch is retried rule by rule: the good one is stored, the bad one is
    reported with its text and trafexd's reason, and counted as failed."""

    def fail(items: Any) -> Exception | None:
        if any(item == parse_rule(REV) for item, _ in items):
            return ValidationError("too many terms", "port")
        return None

    api.controller.fail = fail
    err = io.StringIO()
    sender = Sender(api.target, err=err)
    sender.send([flow_intent(FWD), flow_intent(REV)], time.time())
    assert [len(items) for items in added(api)] == [2, 1, 1]
    assert (sender.stats.sent, sender.stats.failed) == (1, 1)
    assert sender.stats.failures == {"refused": 1}
    rendered = flow_intent(REV).text()
    assert err.getvalue() == (
        f"trafex detect: trafexd refused intent {rendered!r}: port: too many terms\n"
    )
    sender.close()


def test_guard_refusal_retried_rule_by_rule(api: Api[FakeController]) -> None:
    """A batch a guard refuses (FAILED_PRECONDITION) is retried rule by rule as a bad
    rule is: the rule the guard allows is stored; the refused one is named with the
    guard's message and counted as a guard failure."""
    broad = "destination 3001:4::/32 discard"

    def fail(items: Any) -> Exception | None:
        if any(item == parse_rule(broad) for item, _ in items):
            return GuardError("breadth", "discard towards 3001:4::/32 is broader than /48")
        return None

    api.controller.fail = fail
    err = io.StringIO()
    sender = Sender(api.target, err=err)
    sender.send([flow_intent(FWD), flow_intent(broad, origin="volumetric")], time.time())
    assert [len(items) for items in added(api)] == [2, 1, 1]
    assert (sender.stats.sent, sender.stats.failed) == (1, 1)
    assert sender.stats.failures == {"guard": 1}
    assert "guard breadth: discard towards 3001:4::/32" in err.getvalue()
    sender.close()


def test_dry_run_answers_are_counted_apart(api: Api[FakeController]) -> None:
    """When trafexd is in dry run, its answers are counted as dry_run (of sent), and
    said once on stderr."""

    def dry(items: Any) -> Exception | None:
        meta = IntentMeta("fs-would-be", "why", "retransmit", 1.0, 1.0, None)
        return DryRunError(tuple((FlowIntent(meta, item), True) for item, _ in items))

    api.controller.fail = dry
    err = io.StringIO()
    sender = Sender(api.target, err=err)
    sender.send([flow_intent(FWD), flow_intent(REV)], time.time())
    sender.send([flow_intent(FWD)], time.time())
    assert (sender.stats.sent, sender.stats.dry_run, sender.stats.failed) == (3, 3, 0)
    assert err.getvalue().count("dry run") == 1
    sender.close()


def test_dead_controller_one_line_per_kind_and_recovery() -> None:
    """Nothing listening: one 'unreachable' line however many intents fail; when the
    controller answers again that is said once, and a later failure is reported again."""
    target = free_target()
    err = io.StringIO()
    sender = Sender(target, err=err)
    for n in range(5):
        sender.send([route_intent(f"192.0.2.{n}/32")], time.time())
    assert (sender.stats.sent, sender.stats.failed) == (0, 5)
    assert sender.stats.failures == {"unreachable": 5}
    lines = err.getvalue().splitlines()
    assert len(lines) == 1 and f"controller {target} unreachable (" in lines[0]
    assert "the sensor keeps running" in lines[0]
    with serve(FakeController(), port=int(target.rpartition(":")[2])) as api:
        assert sender.connect(timeout=5)
        sender.send([route_intent("192.0.2.99/32")], time.time())
        api.controller.fail = lambda items: StoreError("disk full")
        sender.send([route_intent("192.0.2.98/32")], time.time())
        sender.send([route_intent("192.0.2.97/32")], time.time())
    lines = err.getvalue().splitlines()
    assert lines[1:] == [
        f"trafex detect: controller {target} answers again",
        f"trafex detect: controller {target} answered INTERNAL: disk full",
    ]
    assert sender.stats.failures == {"unreachable": 5, "internal": 2}
    sender.close()


def test_nothing_listening_at_all() -> None:
    """A port nobody listens on: connect() says so in one line, sends fail fast."""
    err = io.StringIO()
    sender = Sender(free_target(), err=err, timeout=0.5)
    assert not sender.connect(timeout=0.2)
    start = time.monotonic()
    sender.send([route_intent("192.0.2.1/32")], time.time())
    assert time.monotonic() - start < 0.5
    assert sender.stats.failed == 1
    assert err.getvalue().count("\n") == 1 and "unreachable" in err.getvalue()
    sender.close()


def test_deadline(api: Api[FakeController]) -> None:
    """A controller that does not answer within send_timeout (it holds the change):
    DEADLINE_EXCEEDED, counted as timeout."""
    api.controller.gate = threading.Event()
    err = io.StringIO()
    sender = Sender(api.target, err=err, timeout=0.05)
    sender.send([route_intent("192.0.2.1/32")], time.time())
    assert sender.stats.failures == {"timeout": 1}
    assert "did not answer within 0.05 s" in err.getvalue()
    sender.close()


def test_stored_but_not_announced_counts_as_sent(api: Api[FakeController]) -> None:
    """trafexd's typed 'stored, not yet announced' (sidecar down): accepted, counted as
    unannounced, said once with the reason."""
    api.controller.fail = lambda items: SidecarError("gobgpd is down", unavailable=True)
    err = io.StringIO()
    sender = Sender(api.target, err=err)
    sender.send([route_intent("192.0.2.1/32")], time.time())
    sender.send([route_intent("192.0.2.2/32")], time.time())
    assert (sender.stats.sent, sender.stats.unannounced, sender.stats.failed) == (2, 2, 0)
    assert err.getvalue() == (
        "trafex detect: trafexd stored the intents, not yet announced: gobgpd is down\n"
    )
    sender.close()


def test_background_sender_never_blocks_and_counts_drops(api: Api[FakeController]) -> None:
    """With a controller holding every change and a queue of 2, submit() returns at
    once; what does not fit is dropped and counted; close() sends what is queued."""
    api.controller.gate = threading.Event()
    err = io.StringIO()
    background = BackgroundSender(Sender(api.target, err=err, timeout=5), queue_size=2).start()
    start = time.monotonic()
    accepted = [background.submit([route_intent(f"192.0.2.{n}/32")], time.time()) for n in range(6)]
    assert time.monotonic() - start < 1.0  # while trafexd holds the first call
    # The thread holds at most one job in its call, the queue two: three or four dropped.
    assert accepted.count(False) in (3, 4)
    api.controller.gate.set()
    background.close(timeout=5)
    stats = background.stats
    assert stats.sent + stats.dropped == 6
    assert stats.dropped == accepted.count(False)
    assert "dropped (counted)" in err.getvalue()
    assert not any(t.name == "trafex-sender" for t in threading.enumerate())


def test_background_close_gives_up_after_its_timeout(api: Api[FakeController]) -> None:
    """close(timeout) returns in about that time while trafexd holds the call under
    way; what was still queued counts as dropped."""
    api.controller.gate = threading.Event()
    background = BackgroundSender(Sender(api.target, timeout=5), queue_size=100).start()
    for n in range(20):
        background.submit([route_intent(f"192.0.2.{n}/32")], time.time())
    start = time.monotonic()
    background.close(timeout=0.3)
    assert time.monotonic() - start < 1.0
    stats = background.stats
    assert stats.dropped >= 19  # all but (perhaps) the one held by trafexd
    assert stats.sent + stats.dropped + stats.failed <= 20


def test_percentile() -> None:
    """Nearest rank: p50 of 1..100 is 50, p99 is 99; empty is 0."""
    samples = [float(n) for n in range(100, 0, -1)]
    assert (percentile(samples, 0.5), percentile(samples, 0.99)) == (50.0, 99.0)
    assert percentile([], 0.5) == 0.0
    assert percentile([3.0], 0.99) == 3.0


def test_background_sender_switch_interval_restored(api: Api[FakeController]) -> None:
    """While the sender runs the GIL switch interval is short; close() restores it."""
    before = sys.getswitchinterval()
    background = BackgroundSender(Sender(api.target), switch_interval=1e-4).start()
    assert sys.getswitchinterval() == pytest.approx(1e-4)
    background.close()
    assert sys.getswitchinterval() == before


def test_background_sender_coalesces_queued_flow_detections(api: Api[FakeController]) -> None:
    """Flow detections queued while a call is under way go in one call, in order; a
    detection with a route is sent on its own, where it was queued; each intent's
    latency counts from its own detection."""
    api.controller.gate = threading.Event()
    background = BackgroundSender(Sender(api.target, timeout=5), queue_size=100).start()
    now = time.time()

    def flows(n: int) -> list[TriggerIntent]:
        return [
            flow_intent(f"destination 192.0.2.{n}/32 discard"),
            flow_intent(f"source 192.0.2.{n}/32 discard"),
        ]

    background.submit(flows(0), now)
    assert api.controller.entered.wait(5)  # the first call is under way, held
    for n in range(1, 5):
        background.submit(flows(n), now - n)  # older detections: longer latencies
    background.submit([route_intent("3001:10:66::5/128")], now)
    background.submit(flows(5), now)
    background.submit(flows(6), now)
    api.controller.gate.set()
    background.close(timeout=5)
    calls = [(type(items[0]).__name__, len(items)) for items in added(api)]
    assert calls == [("FlowRule", 2), ("FlowRule", 8), ("UnicastRoute", 1), ("FlowRule", 4)]
    second: list[FlowRule] = added(api)[1]
    assert second == [i.item for n in range(1, 5) for i in flows(n)]
    stats = background.stats
    assert (stats.sent, stats.failed, stats.dropped) == (15, 0, 0)
    assert sorted(stats.latencies)[-2:][0] > 4.0  # the detection of 4 s ago
