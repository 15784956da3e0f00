"""Unit tests for trafex.control.reconcile (the plan that makes GoBGP's RIB equal the
store) and for the controller's reconcile against a fake RIB."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.unit.fakerib import FakeRib, Rig, holding, rig
from trafex.bgp.client import SidecarError
from trafex.control.controller import IntentOptions
from trafex.control.events import Event, EventKind
from trafex.control.reconcile import (
    Announceable,
    Plan,
    PlanBuilder,
    ReconcileResult,
    Signature,
    plan,
    reconciled_event,
    result_of,
    signature,
)
from trafex.model.flowspec import FlowActions, FlowRule
from trafex.model.grammar import parse_rule
from trafex.model.intent import IntentMeta
from trafex.model.route import UnicastRoute

RULE = parse_rule("destination 10.0.0.1/32 protocol =6 discard")
OTHER_RULE = parse_rule("destination 2001:db8::1/128 redirect 6:302")
ROUTE = UnicastRoute(ipaddress.ip_network("192.0.2.1/32"), communities=(1,))


def desired(*items: Announceable) -> dict[str, Announceable]:
    return {item.key: item for item in items}


# -- the plan (pure) ----------------------------------------------------------------------


def test_signature() -> None:
    """A rule's signature is its actions; a route's is the route itself."""
    expected: list[Signature] = [RULE.actions, ROUTE]
    assert expected == [signature(RULE), signature(ROUTE)]


def test_nothing_to_do_when_equal() -> None:
    """Store and RIB equal: the plan is empty."""
    result = plan(desired(RULE, OTHER_RULE, ROUTE), holding(RULE, OTHER_RULE, ROUTE))
    assert Plan() == result
    assert result.empty


def test_announces_what_is_missing() -> None:
    """Intents absent from the RIB are missing: announced, in the store's order."""
    expected = Plan(missing=(RULE, ROUTE))
    result = plan(desired(RULE, OTHER_RULE, ROUTE), holding(OTHER_RULE))
    assert expected == result
    assert result.announce == (RULE, ROUTE)


def test_announces_what_changed() -> None:
    """A rule whose actions differ in the RIB (or a route whose attributes differ) has
    changed: announced again, which replaces the path (the key being the same)."""
    changed_rule = FlowRule(RULE.match, FlowActions(rate=1000.0))
    changed_route = UnicastRoute(ROUTE.prefix, communities=(2,))
    expected = Plan(changed=(changed_rule, changed_route))
    assert expected == plan(desired(changed_rule, changed_route), holding(RULE, ROUTE))


def test_announces_when_the_rib_signature_is_unknown() -> None:
    """A path in the RIB whose actions could not be read (signature None) is changed."""
    assert Plan(changed=(RULE,)) == plan(desired(RULE), {RULE.key: None})


def test_withdraws_what_nobody_asked_for() -> None:
    """Keys in the RIB that are not stored are extra: a rule is withdrawn by the match
    its key encodes, a route as GoBGP holds it."""
    expected = Plan(extra=(OTHER_RULE.match, ROUTE))
    result = plan(desired(RULE), holding(RULE, OTHER_RULE, ROUTE))
    assert expected == result
    assert result.withdrawn == 2


def test_empty_store_withdraws_everything() -> None:
    """With nothing desired, every RIB key is withdrawn."""
    assert Plan(extra=(RULE.match, ROUTE)) == plan({}, holding(RULE, ROUTE))
    assert not plan({}, holding(RULE)).empty


def test_an_undecodable_key_is_counted_not_sent() -> None:
    """A RIB key that names no FlowSpec match trafex can build is reported (to be
    logged) and counted as withdrawn, but nothing is sent for it."""
    result = plan({}, {"ipv4:zz": None})
    assert (result.extra, result.withdrawn, result.empty) == ((), 1, False)
    assert [key for key, _why in result.undecodable] == ["ipv4:zz"]


def test_announce_and_withdraw_together() -> None:
    """Missing, changed and extra intents are handled in one plan."""
    changed = FlowRule(RULE.match, FlowActions(terminal=True))
    expected = Plan(missing=(ROUTE,), changed=(changed,), extra=(OTHER_RULE.match,))
    assert expected == plan(desired(changed, ROUTE), holding(RULE, OTHER_RULE))


def test_result_and_event() -> None:
    """The result counts what was announced and withdrawn; the event says so."""
    todo = Plan(missing=(RULE,), changed=(ROUTE,), extra=(OTHER_RULE.match,))
    result = result_of(todo, foreign=3)
    assert ReconcileResult(announced=2, withdrawn=1, foreign=3) == result
    expected = Event(EventKind.RECONCILED, "", "timer", "announced 2, withdrew 1", 5.0)
    assert expected == reconciled_event(result, "timer", 5.0)


def test_the_plan_built_path_by_path_equals_the_plan_of_a_copy() -> None:
    """Fed one path at a time, the builder makes the same plan as the whole RIB."""
    changed = FlowRule(RULE.match, FlowActions(terminal=True))
    builder = PlanBuilder(desired(changed, ROUTE))
    for key, held in holding(RULE, OTHER_RULE).items():
        builder.see(key, held)
    assert plan(desired(changed, ROUTE), holding(RULE, OTHER_RULE)) == builder.finish()


def test_the_plan_keeps_only_what_still_holds_in_the_store() -> None:
    """Checked against the store as it is when the walk ends: an item the store no
    longer holds (or holds as another item) is not announced; a key it holds now is
    not withdrawn."""
    replaced = FlowRule(RULE.match, FlowActions(terminal=True))
    builder = PlanBuilder(desired(RULE, ROUTE))  # the snapshot
    for key, held in holding(replaced, OTHER_RULE).items():  # the RIB, read later
        builder.see(key, held)
    assert Plan(missing=(ROUTE,), changed=(RULE,), extra=(OTHER_RULE.match,)) == (builder.finish())
    now = desired(replaced, OTHER_RULE)  # the store when the walk ended
    assert Plan() == builder.finish(now.get)


def _apply(todo: Plan, rib: FakeRib) -> None:
    rib.withdraw(todo.extra)
    rib.announce(todo.announce)


@given(
    st.lists(st.from_type(FlowRule) | st.from_type(UnicastRoute), max_size=6),
    st.lists(st.from_type(FlowRule) | st.from_type(UnicastRoute), max_size=6),
    st.lists(st.booleans(), max_size=6),
)
def test_the_plan_makes_the_rib_equal_the_store(
    stored: list[Announceable], held: list[Announceable], keep: list[bool]
) -> None:
    """Whatever the RIB holds (some of the stored paths, some with other actions, some
    nobody asked for), applying the plan leaves exactly the store's paths."""
    want = desired(*stored)
    rib = FakeRib()
    rib.announce([item for item, kept in zip(stored, keep, strict=False) if kept] + held)
    _apply(plan(want, rib.rib()), rib)
    assert holding(*want.values()) == rib.paths
    assert plan(want, rib.rib()).empty


# -- the controller's reconcile, against a fake RIB -------------------------------------


@pytest.fixture
def trafexd(tmp_path: Path) -> Iterator[Rig]:
    with rig(tmp_path) as made:
        yield made


def stored(trafexd: Rig, *items: Announceable) -> None:
    trafexd.controller.add([(item, IntentOptions()) for item in items])
    trafexd.controller.flush()


def test_reconcile_announces_what_is_missing(tmp_path: Path) -> None:
    """Changes stored while the sidecar was down are announced by the reconcile."""
    sidecar = {"up": False}
    with rig(tmp_path, sidecar_up=lambda: sidecar["up"]) as made:
        with pytest.raises(SidecarError):
            made.controller.add([(RULE, IntentOptions()), (ROUTE, IntentOptions())])
        assert made.rib.paths == {}
        sidecar["up"] = True
        result = made.controller.reconcile("sidecar-up")
        assert ReconcileResult(2, 0, 0) == result
        assert holding(RULE, ROUTE) == made.rib.paths


def test_reconcile_withdraws_what_is_extra(trafexd: Rig) -> None:
    """Paths in GoBGP that the store does not hold (a rule, a route) are withdrawn."""
    stored(trafexd, RULE)
    trafexd.rib.announce([OTHER_RULE, ROUTE])
    assert ReconcileResult(0, 2, 0) == trafexd.controller.reconcile("timer")
    assert holding(RULE) == trafexd.rib.paths


def test_reconcile_replaces_what_changed(trafexd: Rig) -> None:
    """A path GoBGP holds with other actions (or attributes) is announced again."""
    stored(trafexd, RULE, ROUTE)
    trafexd.rib.announce(
        [FlowRule(RULE.match, FlowActions(rate=5.0)), UnicastRoute(ROUTE.prefix, med=7)]
    )
    assert ReconcileResult(2, 0, 0) == trafexd.controller.reconcile("timer")
    assert holding(RULE, ROUTE) == trafexd.rib.paths


def test_reconcile_leaves_foreign_paths_alone(trafexd: Rig) -> None:
    """A path trafex cannot model is counted, never withdrawn."""
    stored(trafexd, RULE)
    trafexd.rib.add_foreign("ipv4-flowspec: added with the gobgp CLI")
    assert ReconcileResult(0, 0, 1) == trafexd.controller.reconcile("timer")
    assert {"ipv4-flowspec: added with the gobgp CLI"} == trafexd.rib.foreign_paths
    assert holding(RULE) == trafexd.rib.paths


def test_reconcile_after_a_sidecar_restart(trafexd: Rig) -> None:
    """gobgpd restarted with an empty RIB: the reconcile announces the whole store."""
    stored(trafexd, RULE, OTHER_RULE, ROUTE)
    trafexd.rib.restart()
    assert trafexd.rib.paths == {}
    assert ReconcileResult(3, 0, 0) == trafexd.controller.reconcile("sidecar-up")
    assert holding(RULE, OTHER_RULE, ROUTE) == trafexd.rib.paths


def test_reconcile_when_equal_sends_nothing(trafexd: Rig) -> None:
    """Store and RIB equal: no send, and the reconcile is still recorded."""
    stored(trafexd, RULE)
    sends = list(trafexd.rib.log)
    assert ReconcileResult(0, 0, 0) == trafexd.controller.reconcile("timer")
    assert sends == trafexd.rib.log
    assert trafexd.clock.now == trafexd.controller.last_reconcile


def test_reconcile_publishes_its_result(trafexd: Rig) -> None:
    """Every reconcile publishes a RECONCILED event with its reason and counts."""
    stored(trafexd, RULE)
    trafexd.rib.restart()
    watcher = trafexd.events.subscribe()
    trafexd.controller.reconcile("peer-up")
    expected = Event(EventKind.RECONCILED, "", "peer-up", "announced 1, withdrew 0", 1000.0)
    assert expected == watcher.get_nowait()


def test_reconcile_raises_when_gobgp_is_unreachable(trafexd: Rig) -> None:
    """Reading the RIB fails: SidecarError, and the reconcile is not recorded."""
    stored(trafexd, RULE)
    trafexd.rib.down = True
    with pytest.raises(SidecarError, match="unreachable"):
        trafexd.controller.reconcile("timer")
    assert trafexd.controller.last_reconcile is None


def test_reconcile_raises_when_a_send_fails(trafexd: Rig) -> None:
    """A reconcile's own send failing is the caller's to retry (not a counted send
    failure): SidecarError, and the next reconcile sends it."""
    stored(trafexd, RULE)
    trafexd.rib.restart()
    trafexd.rib.fail = SidecarError("gobgpd refused (announce): no")
    with pytest.raises(SidecarError, match="refused"):
        trafexd.controller.reconcile("timer")
    assert (trafexd.controller.send_failures, trafexd.controller.last_reconcile) == (0, None)
    trafexd.rib.fail = None
    assert ReconcileResult(1, 0, 0) == trafexd.controller.reconcile("timer")


def test_expiry_withdraws_from_the_rib_and_reconcile_keeps_it_out(trafexd: Rig) -> None:
    """An expired rule leaves GoBGP; a reconcile afterwards does not bring it back."""
    trafexd.controller.add([(RULE, IntentOptions(ttl=10)), (ROUTE, IntentOptions())])
    trafexd.clock.now += 10
    assert [RULE.key] == [i.key for i in trafexd.controller.expire()]
    trafexd.controller.flush()
    assert holding(ROUTE) == trafexd.rib.paths
    assert ReconcileResult(0, 0, 0) == trafexd.controller.reconcile("timer")


def _during_walk(trafexd: Rig, change: Callable[[], object]) -> None:
    """Make ``change`` while the reconcile reads the RIB: after its snapshot of the
    store, before the first path comes in (the RIB it reads then includes the change)."""
    walk = trafexd.rib.walk_rib

    def walk_with_a_change() -> Iterator[tuple[str, Signature]]:
        change()
        trafexd.controller.flush()
        yield from walk()

    trafexd.rib.walk_rib = walk_with_a_change  # type: ignore[method-assign]


def test_reconcile_keeps_a_rule_added_while_it_reads_the_rib(trafexd: Rig) -> None:
    """A rule added mid-read is in the RIB but not in the snapshot: not withdrawn."""
    stored(trafexd, RULE)
    _during_walk(trafexd, lambda: stored(trafexd, OTHER_RULE))
    assert ReconcileResult(0, 0, 0) == trafexd.controller.reconcile("timer")
    assert holding(RULE, OTHER_RULE) == trafexd.rib.paths


def test_reconcile_does_not_bring_back_a_rule_deleted_while_it_reads(trafexd: Rig) -> None:
    """A rule deleted mid-read is in the snapshot but not in the RIB: not announced."""
    stored(trafexd, RULE, OTHER_RULE)
    gone = trafexd.controller.by_key(OTHER_RULE.key)
    _during_walk(trafexd, lambda: trafexd.controller.remove([gone]))
    assert ReconcileResult(0, 0, 0) == trafexd.controller.reconcile("timer")
    assert holding(RULE) == trafexd.rib.paths


def test_reconcile_does_not_undo_a_rule_replaced_while_it_reads(trafexd: Rig) -> None:
    """A rule given other actions mid-read keeps them (the snapshot's are not sent)."""
    replaced = FlowRule(RULE.match, FlowActions(rate=5.0))
    stored(trafexd, RULE)
    _during_walk(trafexd, lambda: stored(trafexd, replaced))
    assert ReconcileResult(0, 0, 0) == trafexd.controller.reconcile("timer")
    assert holding(replaced) == trafexd.rib.paths


def test_refreshed_meta() -> None:
    """Asking again keeps the id and creation time, moves the expiry (none without a
    ttl) and keeps the old reason and origin when none is given."""
    original = IntentMeta("fs-1", "scan", "api", 10.0, 10.0, 70.0)
    expected = IntentMeta("fs-1", "scan", "api", 10.0, 50.0, 80.0)
    assert expected == original.refreshed(now=50.0, ttl=30.0, reason="", origin="")
    forever = IntentMeta("fs-1", "flood", "cli", 10.0, 50.0, None)
    assert forever == original.refreshed(now=50.0, ttl=None, reason="flood", origin="cli")
