"""Unit tests for trafex.control.executor: change sets applied to a real store, the
table, a fake RIB (through the ordered sender) and the event bus."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent import futures
from concurrent.futures import Future
from pathlib import Path

import pytest

from tests.unit.fakerib import FakeRib, holding
from trafex.bgp.client import SidecarError
from trafex.control.changes import ChangeSet
from trafex.control.events import Event, EventBus, EventKind
from trafex.control.executor import Executor, NotAnnouncedError, Sender
from trafex.control.reconcile import Plan
from trafex.control.state import IntentTable
from trafex.control.store import Store
from trafex.model.flowspec import FlowRule
from trafex.model.grammar import parse_rule
from trafex.model.intent import FlowIntent, IntentMeta


def rule(n: int) -> FlowRule:
    return parse_rule(f"destination 10.0.0.{n}/32 discard")


def flow(n: int) -> FlowIntent:
    return FlowIntent(IntentMeta(f"fs-{n}", "", "api", 1.0, 1.0), rule(n))


def added(*intents: FlowIntent) -> ChangeSet[str]:
    return ChangeSet(answer="answer", writes=intents, announce=tuple(i.rule for i in intents))


@pytest.fixture
def rib() -> FakeRib:
    return FakeRib()


@pytest.fixture
def sender(rib: FakeRib) -> Iterator[Sender]:
    made = Sender(rib, batch_size=10)
    yield made
    made.close()


class Parts:
    def __init__(self, directory: Path, sender: Sender) -> None:
        self.store = Store(directory)
        self.table = IntentTable()
        self.events = EventBus()
        self.up = True
        self.executor = Executor(self.store, self.table, sender, self.events, lambda: self.up)


@pytest.fixture
def parts(tmp_path: Path, sender: Sender) -> Iterator[Parts]:
    made = Parts(tmp_path, sender)
    yield made
    made.store.close()


# -- the sender ---------------------------------------------------------------------------


def test_sends_keep_their_order(rib: FakeRib, sender: Sender) -> None:
    """Withdrawals and announcements reach GoBGP in the order submitted."""
    sender.queue([rule(1), rule(2)], withdraw=False)
    sender.queue([rule(1)], withdraw=True)
    sender.submit([rule(3)], withdraw=False).result()
    expected = [("announce", rule(1).key), ("announce", rule(2).key)]
    expected += [("withdraw", rule(1).key), ("announce", rule(3).key)]
    assert expected == rib.log
    assert holding(rule(2), rule(3)) == rib.paths


def test_back_pressure_waits_for_the_oldest_send(rib: FakeRib) -> None:
    """Past ``max_in_flight`` queued paths, throttle() waits for the oldest send, then
    returns; at or under the limit it returns at once."""
    rib.gate = threading.Event()
    waited: list[int] = []

    def wait(pending: list[Future[None]]) -> object:
        waited.append(limited.queued_paths)
        assert rib.gate is not None
        rib.gate.set()  # GoBGP takes the held sends
        return futures.wait(pending)

    limited = Sender(rib, max_in_flight=2, wait=wait)
    try:
        limited.queue([rule(1), rule(2)], withdraw=False)
        limited.throttle()
        assert waited == []  # two in flight: at the limit
        limited.queue([rule(3)], withdraw=False)
        limited.throttle()
        assert waited == [3]  # three in flight: waited once, for the first send
        limited.flush()
        assert limited.queued_paths == 0
    finally:
        limited.close()


def test_a_failed_send_is_counted(rib: FakeRib, sender: Sender) -> None:
    """A queued send that GoBGP refuses is counted with its error; later sends go on."""
    rib.fail = SidecarError("gobgpd refused (announce): bad path")
    sender.queue([rule(1)], withdraw=False)
    sender.flush()
    rib.fail = None
    sender.queue([rule(2)], withdraw=False)
    sender.flush()
    assert (sender.failures, sender.last_error) == (1, "gobgpd refused (announce): bad path")
    assert holding(rule(2)) == rib.paths


def test_a_closed_sender_refuses(sender: Sender) -> None:
    """After close() a submit raises an unavailable SidecarError (trafexd stopping)."""
    sender.close()
    with pytest.raises(SidecarError, match="stopping") as raised:
        sender.submit([rule(1)], withdraw=False)
    assert raised.value.unavailable


# -- the executor -------------------------------------------------------------------------


def test_commit_stores_holds_and_queues(parts: Parts, rib: FakeRib, sender: Sender) -> None:
    """A committed change is in the store and the table, and its paths reach GoBGP."""
    parts.executor.commit(added(flow(1), flow(2)))
    sender.flush()
    assert [flow(1), flow(2)] == parts.store.load()[0]
    assert [flow(1), flow(2)] == parts.table.flows()
    assert holding(rule(1), rule(2)) == rib.paths


def test_commit_withdraws_before_it_announces(parts: Parts, rib: FakeRib, sender: Sender) -> None:
    """A change set with both sends withdrawals first."""
    parts.executor.commit(ChangeSet(answer=None, withdraw=(rule(1),), announce=(rule(1),)))
    sender.flush()
    assert [("withdraw", rule(1).key), ("announce", rule(1).key)] == rib.log


def test_commit_deletes(parts: Parts, rib: FakeRib, sender: Sender) -> None:
    """A deletion leaves the store and the table, and is withdrawn."""
    parts.executor.commit(added(flow(1), flow(2)))
    parts.executor.commit(ChangeSet(answer=None, deletes=(flow(1),), withdraw=(rule(1),)))
    sender.flush()
    assert [flow(2)] == parts.store.load()[0]
    assert [flow(2)] == parts.table.flows()
    assert holding(rule(2)) == rib.paths


def test_sidecar_down_stores_and_raises_with_the_answer(
    parts: Parts, rib: FakeRib, sender: Sender
) -> None:
    """With the sidecar down the change is stored and held; NotAnnouncedError carries
    the answer and nothing is sent."""
    parts.up = False
    with pytest.raises(NotAnnouncedError, match="gobgpd is down") as raised:
        parts.executor.commit(added(flow(1)))
    assert (raised.value.answer, raised.value.unavailable) == ("answer", True)
    sender.flush()
    assert ([flow(1)], [flow(1)], []) == (parts.store.load()[0], parts.table.flows(), rib.log)


def test_nothing_to_send_needs_no_sidecar(parts: Parts) -> None:
    """A change with no paths (a refresh) commits even with the sidecar down."""
    parts.up = False
    parts.executor.commit(ChangeSet(answer=None, writes=(flow(1),)))
    assert [flow(1)] == parts.table.flows()


def test_settle_publishes_the_events(parts: Parts) -> None:
    """settle() publishes the change's events in order."""
    watcher = parts.events.subscribe()
    events = (Event(EventKind.FLOW_ANNOUNCED, "fs-1"), Event(EventKind.FLOW_WITHDRAWN, "fs-1"))
    parts.executor.settle(ChangeSet(answer=None, events=events))
    assert list(events) == [watcher.get_nowait(), watcher.get_nowait()]


def test_send_a_plan(parts: Parts, rib: FakeRib) -> None:
    """A reconcile plan is sent withdrawals first; the futures report the outcome."""
    rib.announce([rule(9)])
    sent = parts.executor.send(Plan(missing=(rule(1),), extra=(rule(9).match,)))
    for future in sent:
        future.result()
    assert [("withdraw", rule(9).key), ("announce", rule(1).key)] == rib.log[1:]
    assert parts.executor.send(Plan()) == []
