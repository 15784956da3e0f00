"""Unit tests for trafex.control.controller with a fake GoBGP client (pure logic).

What reaches GoBGP, and in which order, when callers add and remove concurrently. The
real gobgpd and FRR are in tests/integration.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from trafex.bgp.client import SidecarError
from trafex.control.controller import Controller, IntentOptions
from trafex.control.events import EventBus
from trafex.control.store import Store
from trafex.model.flowspec import FlowRule
from trafex.model.grammar import parse_rule


class FakeGobgp:
    """Records every send; ``gate`` (when set) holds each send until released."""

    def __init__(self) -> None:
        self.log: list[tuple[str, str]] = []  # (announce|withdraw, key)
        self.gate: threading.Event | None = None
        self.sending = threading.Event()
        self.fail: SidecarError | None = None
        self.foreign = 0

    def _record(self, action: str, items: Iterable[Any]) -> None:
        self.sending.set()
        if self.gate is not None:
            assert self.gate.wait(5)
        if self.fail is not None:
            raise self.fail
        self.log += [(action, item.key) for item in items]

    def announce(self, items: Iterable[Any], *, batch_size: int = 1000) -> None:
        self._record("announce", items)

    def withdraw(self, items: Iterable[Any], *, batch_size: int = 1000) -> None:
        self._record("withdraw", items)

    def rib(self) -> dict[str, Any]:
        return {}


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def controller(tmp_path: Path, clock: Clock) -> Iterator[tuple[Controller, FakeGobgp]]:
    fake = FakeGobgp()
    store = Store(tmp_path / "trafex.db")
    ctl = Controller(store, fake, EventBus(), clock=clock)  # type: ignore[arg-type]
    yield ctl, fake
    ctl.close()
    store.close()


def rule(n: int, action: str = "discard") -> FlowRule:
    return parse_rule(f"destination 10.0.0.{n}/32 {action}")


def test_changes_reach_gobgp_in_the_order_they_were_made(
    controller: tuple[Controller, FakeGobgp],
) -> None:
    ctl, fake = controller
    ctl.add([(rule(1), IntentOptions())])
    ctl.add([(rule(1, "rate-limit 1000"), IntentOptions())])  # update in place
    ctl.remove(ctl.flows())
    ctl.flush()
    key = rule(1).key
    assert [("announce", key), ("announce", key), ("withdraw", key)] == fake.log


def test_callers_do_not_wait_for_gobgp(controller: tuple[Controller, FakeGobgp]) -> None:
    """A change is accepted once stored: while GoBGP still holds the first send, a
    second caller's change is stored and answered, and its send follows the first."""
    ctl, fake = controller
    fake.gate = threading.Event()
    ctl.add([(rule(1), IntentOptions())])
    assert fake.sending.wait(5)  # the first send is inside "GoBGP", held there
    ctl.add([(rule(2), IntentOptions())])
    assert len(ctl.flows()) == 2
    assert fake.log == []
    fake.gate.set()
    ctl.flush()
    assert [("announce", rule(1).key), ("announce", rule(2).key)] == fake.log


def test_a_fast_caller_waits_when_too_much_is_in_flight(
    controller: tuple[Controller, FakeGobgp], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past MAX_IN_FLIGHT queued paths a caller waits for GoBGP (back-pressure)."""
    monkeypatch.setattr("trafex.control.controller.MAX_IN_FLIGHT", 1)
    ctl, fake = controller
    fake.gate = threading.Event()
    ctl.add([(rule(1), IntentOptions())])  # one path in flight: at the limit, no wait
    second = threading.Thread(target=ctl.add, args=([(rule(2), IntentOptions())],))
    second.start()
    second.join(0.3)
    assert second.is_alive()  # two in flight: waits for the first send
    fake.gate.set()
    second.join(5)
    assert not second.is_alive()


def test_a_failed_send_leaves_the_change_stored(
    controller: tuple[Controller, FakeGobgp],
) -> None:
    """gobgpd refusing a send (it was up when the change came) is logged; the change
    stays stored for the reconciler."""
    ctl, fake = controller
    fake.fail = SidecarError("gobgpd said no")
    ctl.add([(rule(1), IntentOptions())])
    ctl.flush()
    assert [rule(1).key] == [i.key for i in ctl.flows()]
    assert fake.log == []
    assert (ctl.send_failures, ctl.last_send_error) == (1, "gobgpd said no")
    assert ctl.queued_paths == 0


def test_sidecar_down_stores_and_says_not_announced(tmp_path: Path) -> None:
    fake = FakeGobgp()
    store = Store(tmp_path / "trafex.db")
    ctl = Controller(store, fake, EventBus(), sidecar_up=lambda: False)  # type: ignore[arg-type]
    with pytest.raises(SidecarError, match="down"):
        ctl.add([(rule(1), IntentOptions())])
    assert [rule(1).key] == [i.key for i in ctl.flows()]
    ctl.flush()
    assert fake.log == []
    ctl.close()
    store.close()


def test_after_close_a_change_is_stored_and_reported_unsent(
    controller: tuple[Controller, FakeGobgp],
) -> None:
    ctl, _fake = controller
    ctl.close()
    with pytest.raises(SidecarError, match="stopping"):
        ctl.add([(rule(1), IntentOptions())])
    assert len(ctl.flows()) == 1


def test_expiry_withdraws_what_is_due_and_nothing_else(
    controller: tuple[Controller, FakeGobgp], clock: Clock
) -> None:
    """TTLs 10 and 20 s and one without: at +10 s the first goes, at +20 s the second;
    a refresh moves an expiry, a removed intent never expires again."""
    ctl, fake = controller
    ctl.add([(rule(1), IntentOptions(ttl=10)), (rule(2), IntentOptions(ttl=20))])
    ctl.add([(rule(3), IntentOptions()), (rule(4), IntentOptions(ttl=5))])
    ctl.remove([i for i in ctl.flows() if i.key == rule(4).key])
    clock.now += 5
    ctl.add([(rule(2, "rate-limit 1000"), IntentOptions(ttl=30))])  # refreshed: +35 s
    assert ctl.expire() == []
    clock.now += 5
    assert [rule(1).key] == [i.key for i in ctl.expire()]
    clock.now += 15
    assert ctl.expire() == []  # rule 2's old expiry (+20 s) no longer counts
    clock.now += 15
    assert [rule(2).key] == [i.key for i in ctl.expire()]
    assert [rule(3).key] == [i.key for i in ctl.flows()]
    ctl.flush()
    withdrawn = [key for action, key in fake.log if action == "withdraw"]
    assert [rule(4).key, rule(1).key, rule(2).key] == withdrawn


def test_expiry_survives_a_reload(tmp_path: Path, clock: Clock) -> None:
    """Intents loaded from the store expire on time too."""
    store = Store(tmp_path / "trafex.db")
    first = Controller(store, FakeGobgp(), EventBus(), clock=clock)  # type: ignore[arg-type]
    first.add([(rule(1), IntentOptions(ttl=10)), (rule(2), IntentOptions())])
    first.close()
    second = Controller(store, FakeGobgp(), EventBus(), clock=clock)  # type: ignore[arg-type]
    assert second.load() == []
    clock.now += 10
    assert [rule(1).key] == [i.key for i in second.expire()]
    second.close()
    store.close()
