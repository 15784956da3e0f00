"""Unit tests for trafex.trigger.sender against an in-process fake trafex API server."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from typing import Any

import grpc
import pytest

from trafex.bgp.stubs import trafex_pb2 as pb
from trafex.bgp.stubs import trafex_pb2_grpc
from trafex.control import wire
from trafex.model.grammar import parse_rule
from trafex.model.route import UnicastRoute, parse_prefix
from trafex.trigger.intent import TriggerIntent
from trafex.trigger.sender import BackgroundSender, Sender, percentile

Abort = tuple[grpc.StatusCode, str]


class FakeTrafex(trafex_pb2_grpc.TrafexServicer):  # type: ignore[misc]
    """Records requests; ``answer`` may return an (code, details) to abort with."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, Any]] = []
        self.answer: Callable[[str, Any], Abort | None] = lambda method, request: None
        self.delay = 0.0

    def _handle(self, method: str, request: Any, context: grpc.ServicerContext) -> None:
        if self.delay:
            time.sleep(self.delay)
        self.requests.append((method, request))
        abort = self.answer(method, request)
        if abort is not None:
            context.abort(*abort)

    def AddRoute(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        self._handle("AddRoute", request, context)
        return pb.AddRouteResponse(created=True)

    def AddFlow(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        self._handle("AddFlow", request, context)
        return pb.AddFlowResponse(created=True)

    def AddFlows(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        self._handle("AddFlows", request, context)
        return pb.AddFlowsResponse(results=[pb.AddFlowResponse() for _ in request.flows])


@pytest.fixture
def fake() -> Iterator[tuple[FakeTrafex, str]]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    servicer = FakeTrafex()
    trafex_pb2_grpc.add_TrafexServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield servicer, f"127.0.0.1:{port}"
    finally:
        server.stop(None)


def flow_intent(text: str, origin: str = "retransmit") -> TriggerIntent:
    return TriggerIntent(parse_rule(text), 600.0, f"why {text}", origin)


def route_intent(prefix: str) -> TriggerIntent:
    return TriggerIntent(UnicastRoute(parse_prefix(prefix)), 3600.0, "dns: x", "dns")


FWD = "source 3001:1:a::10/128 destination 3001:4:b::10/128 redirect 6:302"
REV = "source 3001:4:b::10/128 destination 3001:1:a::10/128 redirect 6:302"


def test_routes_one_by_one_flows_in_one_call(fake: tuple[FakeTrafex, str]) -> None:
    """Both directions of a flow go in one AddFlows; routes in AddRoute; the options
    carry TTL, reason and origin; each accepted intent has a latency sample."""
    servicer, target = fake
    sender = Sender(target)
    assert sender.connect()
    started = time.time()
    sender.send([flow_intent(FWD), flow_intent(REV), route_intent("3001:10:66::5/128")], started)
    methods = [m for m, _ in servicer.requests]
    assert methods == ["AddFlows", "AddRoute"]
    flows = servicer.requests[0][1].flows
    assert [wire.rule_from_proto(f.flow) for f in flows] == [parse_rule(FWD), parse_rule(REV)]
    assert flows[0].options.ttl_seconds == 600
    assert flows[0].options.origin == "retransmit"
    assert flows[0].options.reason == f"why {FWD}"
    route = servicer.requests[1][1]
    assert route.route.prefix == "3001:10:66::5/128"
    assert route.route.next_hop == ""  # next-hop self
    assert route.options.origin == "dns"
    assert sender.stats.sent == 3 and sender.stats.failed == 0
    assert len(sender.stats.latencies) == 3
    assert all(0 <= s < time.time() - started + 1e-3 for s in sender.stats.latencies)
    sender.close()


def test_invalid_argument_names_the_intent(fake: tuple[FakeTrafex, str]) -> None:
    """A refused batch is retried rule by rule: the good one is stored, the bad one is
    reported with its text and trafexd's reason, and counted as failed."""
    servicer, target = fake

    def answer(method: str, request: Any) -> Abort | None:
        texts = [f.flow for f in request.flows] if method == "AddFlows" else [request.flow]
        if any(wire.rule_from_proto(t) == parse_rule(REV) for t in texts):
            return (grpc.StatusCode.INVALID_ARGUMENT, "port: too many terms")
        return None

    servicer.answer = answer
    err = io.StringIO()
    sender = Sender(target, err=err)
    sender.send([flow_intent(FWD), flow_intent(REV)], time.time())
    assert [m for m, _ in servicer.requests] == ["AddFlows", "AddFlow", "AddFlow"]
    assert (sender.stats.sent, sender.stats.failed) == (1, 1)
    assert sender.stats.failures == {"refused": 1}
    rendered = flow_intent(REV).text()
    assert err.getvalue() == (
        f"trafex detect: trafexd refused intent {rendered!r}: port: too many terms\n"
    )
    sender.close()


def test_dead_controller_one_line_per_kind_and_recovery(fake: tuple[FakeTrafex, str]) -> None:
    """Nothing listening: one 'unreachable' line however many intents fail; when the
    controller answers again that is said once, and a later outage is reported again."""
    servicer, target = fake
    err = io.StringIO()
    sender = Sender(target, err=err)
    servicer.answer = lambda m, r: (grpc.StatusCode.UNAVAILABLE, "connection refused")
    for n in range(5):
        sender.send([route_intent(f"192.0.2.{n}/32")], time.time())
    assert (sender.stats.sent, sender.stats.failed) == (0, 5)
    assert sender.stats.failures == {"unreachable": 5}
    lines = err.getvalue().splitlines()
    assert len(lines) == 1 and "unreachable (connection refused)" in lines[0]
    assert "the sensor keeps running" in lines[0]
    servicer.answer = lambda m, r: None
    sender.send([route_intent("192.0.2.99/32")], time.time())
    servicer.answer = lambda m, r: (grpc.StatusCode.INTERNAL, "disk full")
    sender.send([route_intent("192.0.2.98/32")], time.time())
    sender.send([route_intent("192.0.2.97/32")], time.time())
    lines = err.getvalue().splitlines()
    assert lines[1] == f"trafex detect: controller {target} answers again"
    assert lines[2] == f"trafex detect: controller {target} answered INTERNAL: disk full"
    assert len(lines) == 3
    assert sender.stats.failures == {"unreachable": 5, "internal": 2}
    sender.close()


def test_nothing_listening_at_all() -> None:
    """A port nobody listens on: connect() says so in one line, sends fail fast."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        target = f"127.0.0.1:{sock.getsockname()[1]}"
    err = io.StringIO()
    sender = Sender(target, err=err, timeout=0.5)
    assert not sender.connect(timeout=0.2)
    start = time.monotonic()
    sender.send([route_intent("192.0.2.1/32")], time.time())
    assert time.monotonic() - start < 0.5
    assert sender.stats.failed == 1
    assert err.getvalue().count("\n") == 1 and "unreachable" in err.getvalue()
    sender.close()


def test_deadline(fake: tuple[FakeTrafex, str]) -> None:
    """A controller slower than send_timeout: DEADLINE_EXCEEDED, counted as timeout."""
    servicer, target = fake
    servicer.delay = 0.3
    err = io.StringIO()
    sender = Sender(target, err=err, timeout=0.05)
    sender.send([route_intent("192.0.2.1/32")], time.time())
    assert sender.stats.failures == {"timeout": 1}
    assert "did not answer within 0.05 s" in err.getvalue()
    sender.close()


def test_stored_but_not_announced_counts_as_sent(fake: tuple[FakeTrafex, str]) -> None:
    """trafexd's UNAVAILABLE 'stored, not yet announced' (sidecar down): accepted."""
    servicer, target = fake
    servicer.answer = lambda m, r: (
        grpc.StatusCode.UNAVAILABLE,
        "stored, not yet announced: gobgpd down",
    )
    err = io.StringIO()
    sender = Sender(target, err=err)
    sender.send([route_intent("192.0.2.1/32")], time.time())
    sender.send([route_intent("192.0.2.2/32")], time.time())
    assert (sender.stats.sent, sender.stats.unannounced, sender.stats.failed) == (2, 2, 0)
    assert err.getvalue().count("\n") == 1 and "gobgpd down" in err.getvalue()
    sender.close()


def test_background_sender_never_blocks_and_counts_drops(fake: tuple[FakeTrafex, str]) -> None:
    """With a slow controller and a queue of 2, submit() returns at once; what does not
    fit is dropped and counted; close() sends what is queued."""
    servicer, target = fake
    servicer.delay = 0.05
    err = io.StringIO()
    background = BackgroundSender(Sender(target, err=err), queue_size=2).start()
    start = time.monotonic()
    accepted = [background.submit([route_intent(f"192.0.2.{n}/32")], time.time()) for n in range(6)]
    assert time.monotonic() - start < 0.05
    assert accepted.count(False) >= 3
    background.close(timeout=5)
    stats = background.stats
    assert stats.sent + stats.dropped == 6
    assert stats.dropped == accepted.count(False)
    assert "dropped (counted)" in err.getvalue()
    assert not any(t.name == "trafex-sender" for t in threading.enumerate())


def test_background_close_gives_up_after_its_timeout(fake: tuple[FakeTrafex, str]) -> None:
    """close(timeout) returns in about that time; what was still queued counts as dropped."""
    servicer, target = fake
    servicer.delay = 0.2
    background = BackgroundSender(Sender(target, timeout=2), queue_size=100).start()
    for n in range(20):
        background.submit([route_intent(f"192.0.2.{n}/32")], time.time())
    start = time.monotonic()
    background.close(timeout=0.3)
    assert time.monotonic() - start < 1.0
    stats = background.stats
    assert stats.dropped >= 15
    assert stats.sent + stats.dropped + stats.failed <= 20


def test_percentile() -> None:
    """Nearest rank: p50 of 1..100 is 50, p99 is 99; empty is 0."""
    samples = [float(n) for n in range(100, 0, -1)]
    assert (percentile(samples, 0.5), percentile(samples, 0.99)) == (50.0, 99.0)
    assert percentile([], 0.5) == 0.0
    assert percentile([3.0], 0.99) == 3.0


def test_background_sender_switch_interval_restored(fake: tuple[FakeTrafex, str]) -> None:
    """While the sender runs the GIL switch interval is short; close() restores it."""
    import sys

    _, target = fake
    before = sys.getswitchinterval()
    background = BackgroundSender(Sender(target), switch_interval=1e-4).start()
    assert sys.getswitchinterval() == pytest.approx(1e-4)
    background.close()
    assert sys.getswitchinterval() == before


def test_background_sender_coalesces_queued_flow_detections(fake: tuple[FakeTrafex, str]) -> None:
    """Flow detections queued while a call is under way go in one AddFlows, in order; a
    detection with a route is sent on its own, where it was queued; each intent's
    latency counts from its own detection."""
    servicer, target = fake
    servicer.delay = 0.1
    background = BackgroundSender(Sender(target), queue_size=100).start()
    now = time.time()

    def flows(n: int) -> list[TriggerIntent]:
        return [
            flow_intent(f"destination 192.0.2.{n}/32 discard"),
            flow_intent(f"source 192.0.2.{n}/32 discard"),
        ]

    background.submit(flows(0), now)
    time.sleep(0.05)  # the first call is under way
    for n in range(1, 5):
        background.submit(flows(n), now - n)  # older detections: longer latencies
    background.submit([route_intent("3001:10:66::5/128")], now)
    background.submit(flows(5), now)
    background.submit(flows(6), now)
    background.close(timeout=5)
    calls = [(m, len(r.flows) if m == "AddFlows" else 1) for m, r in servicer.requests]
    assert calls == [("AddFlows", 2), ("AddFlows", 8), ("AddRoute", 1), ("AddFlows", 4)]
    second = [wire.rule_from_proto(f.flow) for f in servicer.requests[1][1].flows]
    assert second == [i.item for n in range(1, 5) for i in flows(n)]
    stats = background.stats
    assert (stats.sent, stats.failed, stats.dropped) == (15, 0, 0)
    assert sorted(stats.latencies)[-2:][0] > 4.0  # the detection of 4 s ago
