"""Unit tests for trafex.control.controller: changes through a real store to a fake RIB.

What reaches GoBGP, in which order, and what GoBGP then holds, when callers add and
remove (also concurrently), when sends fail and when the sidecar is down. The real
gobgpd and FRR are in tests/integration.
"""

from __future__ import annotations

import ipaddress
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

import pytest

from tests.unit.fakerib import Rig, holding, rig
from trafex.bgp.client import SidecarError
from trafex.control.controller import IntentOptions, NotAnnouncedError, NotFoundError
from trafex.control.events import Event, EventKind
from trafex.control.store import Store, StoreError
from trafex.model.flowspec import FlowRule
from trafex.model.grammar import parse_rule, render_rule
from trafex.model.intent import Intent
from trafex.model.route import UnicastRoute


class FlakyStore(Store):
    """A real store whose writes fail while ``broken`` is set."""

    broken = False

    def upsert(self, intents: Sequence[Intent]) -> None:
        self._check()
        super().upsert(intents)

    def delete(self, ids: Iterable[str]) -> None:
        self._check()
        super().delete(ids)

    def _check(self) -> None:
        if self.broken:
            raise StoreError("cannot write the store: disk I/O error (test)")


@pytest.fixture
def trafexd(tmp_path: Path) -> Iterator[Rig]:
    with rig(tmp_path / "state") as made:
        yield made


ROUTE = UnicastRoute(ipaddress.ip_network("192.0.2.1/32"))


def rule(n: int, action: str = "discard") -> FlowRule:
    return parse_rule(f"destination 10.0.0.{n}/32 {action}")


def keys(intents: list[Intent]) -> list[str]:
    return [i.key for i in intents]


def test_changes_reach_gobgp_in_the_order_they_were_made(trafexd: Rig) -> None:
    """Add, update in place, remove: three sends, in that order, and the RIB is empty."""
    ctl, rib = trafexd.controller, trafexd.rib
    ctl.add([(rule(1), IntentOptions())])
    ctl.add([(rule(1, "rate-limit 1000"), IntentOptions())])
    ctl.remove(ctl.flows())
    ctl.flush()
    key = rule(1).key
    assert [("announce", key), ("announce", key), ("withdraw", key)] == rib.log
    assert rib.paths == {}


def test_the_rib_holds_what_was_added(trafexd: Rig) -> None:
    """After adds and an update, GoBGP holds each rule once, with its latest actions."""
    ctl, rib = trafexd.controller, trafexd.rib
    ctl.add([(rule(1), IntentOptions()), (rule(2), IntentOptions())])
    ctl.add([(rule(2, "rate-limit 1000"), IntentOptions())])
    ctl.flush()
    assert holding(rule(1), rule(2, "rate-limit 1000")) == rib.paths


def test_the_same_rule_again_is_not_sent_again(trafexd: Rig) -> None:
    """Asking for a stored rule again refreshes it (same id, not new) without a send."""
    ctl, rib = trafexd.controller, trafexd.rib
    ((first, created),) = ctl.add([(rule(1), IntentOptions(ttl=10))])
    ((again, created_again),) = ctl.add([(rule(1), IntentOptions(ttl=20))])
    ctl.flush()
    assert (created, created_again) == (True, False)
    assert first.meta.id == again.meta.id
    assert [("announce", rule(1).key)] == rib.log


def test_callers_do_not_wait_for_gobgp(trafexd: Rig) -> None:
    """A change is accepted once stored: while GoBGP still holds the first send, a
    second caller's change is stored and answered, and its send follows the first."""
    ctl, rib = trafexd.controller, trafexd.rib
    rib.gate = threading.Event()
    ctl.add([(rule(1), IntentOptions())])
    assert rib.sending.wait(5)  # the first send is inside "GoBGP", held there
    ctl.add([(rule(2), IntentOptions())])
    assert len(ctl.flows()) == 2
    assert rib.log == []
    assert ctl.queued_paths == 2
    rib.gate.set()
    ctl.flush()
    assert [("announce", rule(1).key), ("announce", rule(2).key)] == rib.log
    assert ctl.queued_paths == 0


def test_a_caller_past_the_limit_answers_after_the_oldest_send(tmp_path: Path) -> None:
    """Back-pressure: with one path allowed in flight, a second add does not return
    before GoBGP has taken the first (which the test holds until both are queued)."""
    with rig(tmp_path, max_in_flight=1) as made:
        ctl, rib = made.controller, made.rib
        rib.gate = threading.Event()
        ctl.add([(rule(1), IntentOptions())])  # one path in flight: at the limit, no wait
        taken_when_answered: list[list[tuple[str, str]]] = []

        def second() -> None:
            ctl.add([(rule(2), IntentOptions())])
            taken_when_answered.append(list(rib.log))

        thread = threading.Thread(target=second)
        thread.start()
        _until(lambda: ctl.queued_paths == 2)
        rib.gate.set()
        thread.join(10)
        assert [[("announce", rule(1).key)]] == [log[:1] for log in taken_when_answered]


def test_a_failed_send_is_counted_and_the_reconcile_repairs_it(trafexd: Rig) -> None:
    """gobgpd refusing a send (it was up when the change came) is logged and counted;
    the change stays stored, and the next reconcile announces it."""
    ctl, rib = trafexd.controller, trafexd.rib
    rib.fail = SidecarError("gobgpd said no")
    ctl.add([(rule(1), IntentOptions())])
    ctl.flush()
    assert [rule(1).key] == keys(list(ctl.flows()))
    assert (rib.paths, rib.log) == ({}, [])
    assert (ctl.send_failures, ctl.last_send_error, ctl.queued_paths) == (1, "gobgpd said no", 0)
    rib.fail = None
    assert ctl.reconcile("timer").announced == 1
    assert holding(rule(1)) == rib.paths


def test_sidecar_down_stores_and_says_not_announced(tmp_path: Path) -> None:
    """With the sidecar known to be down, an add is stored and answered with
    NotAnnouncedError (a SidecarError) carrying the answer; nothing is sent."""
    with rig(tmp_path, sidecar_up=lambda: False) as made:
        ctl, rib = made.controller, made.rib
        with pytest.raises(NotAnnouncedError, match="down") as raised:
            ctl.add([(rule(1), IntentOptions())])
        assert isinstance(raised.value, SidecarError)
        assert raised.value.unavailable
        ((intent, created),) = raised.value.answer
        assert (rule(1).key, True) == (intent.key, created)
        assert [rule(1).key] == keys(list(ctl.flows()))
        ctl.flush()
        assert rib.log == []


def test_sidecar_down_removal_is_stored_too(tmp_path: Path) -> None:
    """A removal while the sidecar is down is committed (the store forgets the rule)
    and reported as not announced; the reconcile after the restart withdraws it."""
    sidecar = {"up": True}
    with rig(tmp_path, sidecar_up=lambda: sidecar["up"]) as made:
        ctl, rib = made.controller, made.rib
        ctl.add([(rule(1), IntentOptions())])
        ctl.flush()
        sidecar["up"] = False
        with pytest.raises(NotAnnouncedError) as raised:
            ctl.remove(ctl.flows())
        assert [rule(1).key] == keys(list(raised.value.answer))
        assert ctl.flows() == []
        assert Store(tmp_path).load()[0] == []
        assert holding(rule(1)) == rib.paths
        sidecar["up"] = True
        assert ctl.reconcile("sidecar-up").withdrawn == 1
        assert rib.paths == {}


def test_after_close_a_change_is_stored_and_reported_unsent(trafexd: Rig) -> None:
    """Once the sender is closed (trafexd stopping), a change is stored and reported
    as not announced."""
    ctl = trafexd.controller
    ctl.close()
    with pytest.raises(NotAnnouncedError, match="stopping"):
        ctl.add([(rule(1), IntentOptions())])
    assert len(ctl.flows()) == 1


def test_a_store_that_cannot_be_written_changes_nothing(tmp_path: Path) -> None:
    """A StoreError leaves memory and GoBGP as they were."""
    store = FlakyStore(tmp_path)
    with rig(tmp_path, store=store) as made:
        ctl, rib = made.controller, made.rib
        store.broken = True
        with pytest.raises(StoreError):
            ctl.add([(rule(1), IntentOptions())])
        ctl.flush()
        assert (ctl.flows(), rib.log) == ([], [])


def test_removing_an_intent_twice_in_one_call_removes_it_once(trafexd: Rig) -> None:
    """The same intent (or id) given twice is withdrawn once and answered once."""
    ctl, rib = trafexd.controller, trafexd.rib
    ((intent, _),) = ctl.add([(rule(1), IntentOptions())])
    gone, missing = ctl.remove_ids([intent.meta.id, intent.meta.id, "fs-none"])
    ctl.flush()
    assert ([rule(1).key], ["fs-none"]) == (keys(gone), missing)
    assert [("announce", rule(1).key), ("withdraw", rule(1).key)] == rib.log


def test_removing_what_is_not_stored_does_nothing(trafexd: Rig) -> None:
    """An intent no longer stored (or replaced since) is not withdrawn."""
    ctl, rib = trafexd.controller, trafexd.rib
    ((old, _),) = ctl.add([(rule(1), IntentOptions())])
    ctl.add([(rule(1, "rate-limit 10"), IntentOptions())])  # a new value for the key
    assert ctl.remove([old]) == []
    ctl.flush()
    assert holding(rule(1, "rate-limit 10")) == rib.paths


def test_expiry_withdraws_what_is_due_and_nothing_else(trafexd: Rig) -> None:
    """TTLs 10 and 20 s and one without: at +10 s the first goes, at +20 s the second;
    a refresh moves an expiry, a removed intent never expires again."""
    ctl, rib, clock = trafexd.controller, trafexd.rib, trafexd.clock
    ctl.add([(rule(1), IntentOptions(ttl=10)), (rule(2), IntentOptions(ttl=20))])
    ctl.add([(rule(3), IntentOptions()), (rule(4), IntentOptions(ttl=5))])
    ctl.remove([i for i in ctl.flows() if i.key == rule(4).key])
    clock.now += 5
    ctl.add([(rule(2, "rate-limit 1000"), IntentOptions(ttl=30))])  # refreshed: +35 s
    assert ctl.expire() == []
    clock.now += 5
    assert [rule(1).key] == keys(ctl.expire())
    clock.now += 15
    assert ctl.expire() == []  # rule 2's old expiry (+20 s) no longer counts
    clock.now += 15
    assert [rule(2).key] == keys(ctl.expire())
    assert [rule(3).key] == keys(list(ctl.flows()))
    ctl.flush()
    withdrawn = [key for action, key in rib.log if action == "withdraw"]
    assert [rule(4).key, rule(1).key, rule(2).key] == withdrawn
    assert holding(rule(3)) == rib.paths


def test_expiry_that_cannot_be_stored_comes_again(tmp_path: Path) -> None:
    """A store that fails during expiry leaves the intents stored, due and announced;
    the next expiry, with the store back, withdraws them."""
    store = FlakyStore(tmp_path)
    with rig(tmp_path, store=store) as made:
        ctl, rib = made.controller, made.rib
        ctl.add([(rule(1), IntentOptions(ttl=10))])
        made.clock.now += 10
        store.broken = True
        with pytest.raises(StoreError):
            ctl.expire()
        assert [rule(1).key] == keys(list(ctl.flows()))
        store.broken = False
        assert [rule(1).key] == keys(ctl.expire())
        ctl.flush()
        assert rib.paths == {}


def test_expiry_survives_a_reload(tmp_path: Path) -> None:
    """Intents loaded from the store expire on time too."""
    with rig(tmp_path) as first:
        first.controller.add([(rule(1), IntentOptions(ttl=10)), (rule(2), IntentOptions())])
    with rig(tmp_path) as second:
        assert second.controller.load() == []
        second.clock.now += 10
        assert [rule(1).key] == keys(second.controller.expire())


def test_events_say_what_changed(trafexd: Rig) -> None:
    """A watcher sees each add (added or updated), removal and expiry, with the rule's
    text and the controller's time."""
    ctl, clock = trafexd.controller, trafexd.clock
    watcher = trafexd.events.subscribe()
    ((first, _),) = ctl.add([(rule(1), IntentOptions(ttl=10))])
    ctl.add([(rule(1, "rate-limit 10"), IntentOptions())])
    ((second, _),) = ctl.add([(rule(2), IntentOptions(ttl=5))])
    ctl.remove([ctl.by_key(rule(1).key)])
    clock.now += 5
    ctl.expire()
    seen = []
    while not watcher.empty():
        seen.append(watcher.get_nowait())
    one, updated, two = (
        render_rule(rule(1)),
        render_rule(rule(1, "rate-limit 10")),
        render_rule(rule(2)),
    )
    expected = [
        Event(EventKind.FLOW_ANNOUNCED, first.meta.id, one, "added", 1000.0),
        Event(EventKind.FLOW_ANNOUNCED, first.meta.id, updated, "updated", 1000.0),
        Event(EventKind.FLOW_ANNOUNCED, second.meta.id, two, "added", 1000.0),
        Event(EventKind.FLOW_WITHDRAWN, first.meta.id, updated, "", 1000.0),
        Event(EventKind.FLOW_EXPIRED, second.meta.id, two, "", 1005.0),
    ]
    assert expected == seen


def test_route_events_name_the_prefix(trafexd: Rig) -> None:
    """Routes are announced and withdrawn under their prefix."""
    ctl = trafexd.controller
    watcher = trafexd.events.subscribe()
    ((intent, _),) = ctl.add([(ROUTE, IntentOptions())])
    ctl.remove([intent])
    seen = [watcher.get_nowait(), watcher.get_nowait()]
    expected = [
        Event(EventKind.ROUTE_ANNOUNCED, intent.meta.id, "192.0.2.1/32", "added", 1000.0),
        Event(EventKind.ROUTE_WITHDRAWN, intent.meta.id, "192.0.2.1/32", "", 1000.0),
    ]
    assert expected == seen


def test_queries(trafexd: Rig) -> None:
    """By id, by key, counts, flows and routes; an unknown id or key is NotFoundError."""
    ctl = trafexd.controller
    ((flow, _), (route, _)) = ctl.add([(rule(1), IntentOptions()), (ROUTE, IntentOptions())])
    assert (flow, route) == (ctl.by_id(flow.meta.id), ctl.by_key(ROUTE.key))
    assert ((1, 1), [flow], [route]) == (ctl.counts(), ctl.flows(), ctl.routes())
    with pytest.raises(NotFoundError, match="no intent with id"):
        ctl.by_id("fs-none")
    with pytest.raises(NotFoundError, match="no rule or route"):
        ctl.by_key(rule(2).key)


def _until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait until ``condition`` holds (polled, with a deadline)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        time.sleep(0.001)


# -- guards: caps, rate, dry run ---------------------------------------------------------


def test_a_capped_batch_stores_and_sends_nothing(tmp_path: Path) -> None:
    """At max_rules, a batch with one rule too many is refused whole: nothing stored,
    nothing sent, the rules in force unchanged; an update of a stored rule passes."""
    from trafex.control.guardrails import GuardError, Guards

    with rig(tmp_path, guards=Guards(max_rules=2)) as made:
        ctl, rib = made.controller, made.rib
        ctl.add([(rule(1), IntentOptions()), (rule(2), IntentOptions())])
        with pytest.raises(GuardError, match=r"guard caps: 2 rules in force; the limit is 2"):
            ctl.add([(rule(1, "rate-limit 5"), IntentOptions()), (rule(3), IntentOptions())])
        ctl.flush()
        assert holding(rule(1), rule(2)) == rib.paths
        assert sorted(keys(made.store.load()[0])) == sorted([rule(1).key, rule(2).key])
        ((_, created),) = ctl.add([(rule(2, "rate-limit 5"), IntentOptions())])
        ctl.remove([ctl.by_key(rule(1).key)])
        ctl.add([(rule(3), IntentOptions())])  # room again after a removal
        ctl.flush()
        assert not created
        assert holding(rule(2, "rate-limit 5"), rule(3)) == rib.paths


def test_the_rate_bucket_refills_on_the_controllers_clock(tmp_path: Path) -> None:
    """rate_per_origin 1/s, burst 2: two adds pass, a third is refused until a second
    has passed on the controller's clock; another origin has its own bucket; a refused
    request takes no token."""
    from trafex.control.guardrails import GuardError, Guards

    guards = Guards(rate_per_origin=1.0, burst_per_origin=2)
    with rig(tmp_path, guards=guards) as made:
        ctl, clock = made.controller, made.clock
        sensor = IntentOptions(origin="sensor")
        ctl.add([(rule(1), sensor)])
        ctl.add([(rule(1, "rate-limit 5"), sensor)])  # an update takes a token too
        with pytest.raises(GuardError, match="guard rate: origin 'sensor'"):
            ctl.add([(rule(2), sensor)])
        ctl.add([(rule(2), IntentOptions(origin="other"))])
        clock.now += 0.5
        with pytest.raises(GuardError, match="guard rate"):
            ctl.add([(rule(3), sensor)])
        clock.now += 0.5
        ctl.add([(rule(3), sensor)])
        assert len(ctl.flows()) == 3


def test_a_dry_run_changes_nothing(tmp_path: Path) -> None:
    """A dry run raises DryRunError with the would-be intents (a new id; an update of a
    stored rule keeps its id): nothing stored, sent or published, no rate token taken;
    it is logged as intent.dry_run."""
    from structlog.testing import capture_logs

    from trafex.control.controller import DryRunError
    from trafex.control.guardrails import Guards

    with rig(tmp_path, guards=Guards(rate_per_origin=1.0, burst_per_origin=2)) as made:
        ctl, rib = made.controller, made.rib
        ((stored, _),) = ctl.add([(rule(1), IntentOptions(origin="cli"))])
        ctl.flush()
        watcher = made.events.subscribe()
        made.clock.now += 1  # two tokens again
        dry = IntentOptions(origin="cli", dry_run=True)
        with capture_logs() as logs, pytest.raises(DryRunError) as info:
            ctl.add([(rule(1, "rate-limit 5"), dry), (rule(2), dry)])
        ((updated, new_1), (added, new_2)) = info.value.answer
        assert (updated.meta.id, new_1, new_2) == (stored.meta.id, False, True)
        assert added.meta.id.startswith("fs-") and added.key == rule(2).key
        assert str(info.value) == "dry run: would announce 2 intent(s); nothing was stored"
        assert [e["event"] for e in logs] == ["intent.dry_run"]
        ctl.flush()
        assert holding(rule(1)) == rib.paths and len(rib.log) == 1
        assert keys(made.store.load()[0]) == [rule(1).key]
        assert watcher.empty()
        real = IntentOptions(origin="cli")
        ctl.add([(rule(2), real), (rule(3), real)])  # both tokens are still there
