"""Unit tests for trafex.control.changes: the decisions, as values (no store, no GoBGP)."""

from __future__ import annotations

import ipaddress
import itertools
from collections.abc import Callable

import pytest

from trafex.control.changes import (
    ChangeSet,
    IntentOptions,
    decide_add,
    decide_expiry,
    decide_remove,
    find_ids,
    meta_for,
)
from trafex.control.events import Event, EventKind
from trafex.control.reconcile import Announceable
from trafex.control.state import IntentTable
from trafex.model.errors import ValidationError
from trafex.model.flowspec import FlowRule
from trafex.model.grammar import parse_rule, render_rule
from trafex.model.intent import FlowIntent, Intent, IntentMeta, RouteIntent
from trafex.model.route import UnicastRoute

RULE = parse_rule("destination 10.0.0.1/32 discard")
RATE = parse_rule("destination 10.0.0.1/32 rate-limit 1000")  # the same match
ROUTE = UnicastRoute(ipaddress.ip_network("192.0.2.1/32"))


def ids() -> Callable[[str], str]:
    """Ids fs-1, rt-2, ...: one counter for both kinds."""
    counter = itertools.count(1)
    return lambda kind: f"{kind}-{next(counter)}"


def flow(rule: FlowRule, ident: str = "fs-1", expires_at: float | None = None) -> FlowIntent:
    return FlowIntent(IntentMeta(ident, "", "api", 10.0, 10.0, expires_at), rule)


def test_add_new_intents() -> None:
    """New rules and routes are written, announced and answered as created."""
    changes = decide_add(
        {}, [(RULE, IntentOptions(ttl=60)), (ROUTE, IntentOptions())], now=10.0, make_id=ids()
    )
    rule_intent = FlowIntent(IntentMeta("fs-1", "", "api", 10.0, 10.0, 70.0), RULE)
    route_intent = RouteIntent(IntentMeta("rt-2", "", "api", 10.0, 10.0, None), ROUTE)
    expected = ChangeSet(
        answer=((rule_intent, True), (route_intent, True)),
        writes=(rule_intent, route_intent),
        announce=(RULE, ROUTE),
    )
    assert expected == changes


def test_add_updates_in_place() -> None:
    """A stored match keeps its id and creation time; its new actions are announced."""
    current: dict[str, Intent] = {RULE.key: flow(RULE)}
    changes = decide_add(current, [(RATE, IntentOptions(reason="flood"))], now=20.0, make_id=ids())
    updated = FlowIntent(IntentMeta("fs-1", "flood", "api", 10.0, 20.0, None), RATE)
    expected = ChangeSet(answer=((updated, False),), writes=(updated,), announce=(RATE,))
    assert expected == changes


def test_add_the_same_again_refreshes_without_a_send() -> None:
    """The same rule asked for again is written (new expiry) but not announced."""
    current: dict[str, Intent] = {RULE.key: flow(RULE, expires_at=20.0)}
    changes = decide_add(current, [(RULE, IntentOptions(ttl=30))], now=15.0)
    refreshed = FlowIntent(IntentMeta("fs-1", "", "api", 10.0, 15.0, 45.0), RULE)
    assert ChangeSet(answer=((refreshed, False),), writes=(refreshed,)) == changes


def test_add_the_same_match_twice_in_one_batch() -> None:
    """Within one batch the second of two same matches updates the first: one write,
    both announced (in order), the second answered as not created."""
    changes = decide_add(
        {}, [(RULE, IntentOptions()), (RATE, IntentOptions())], now=1.0, make_id=ids()
    )
    first = FlowIntent(IntentMeta("fs-1", "", "api", 1.0, 1.0, None), RULE)
    second = FlowIntent(IntentMeta("fs-1", "", "api", 1.0, 1.0, None), RATE)
    expected = ChangeSet(
        answer=((first, True), (second, False)), writes=(second,), announce=(RULE, RATE)
    )
    assert expected == changes


def test_add_is_all_or_nothing() -> None:
    """One rule over a guardrail refuses the whole batch, naming the component."""
    wide: Announceable = parse_rule("destination 10.0.0.2/32 destination-port =1 =2 =3 discard")
    with pytest.raises(ValidationError, match="destination-port"):
        decide_add({}, [(RULE, IntentOptions()), (wide, IntentOptions())], now=1.0, max_terms=2)
    unlimited = decide_add({}, [(wide, IntentOptions())], now=1.0, max_terms=0)
    assert (wide,) == unlimited.announce


@pytest.mark.parametrize("ttl", [0.0, -1.0, 10 * 365 * 86400 + 1.0])
def test_add_refuses_a_ttl_out_of_range(ttl: float) -> None:
    """A TTL must be within 1 s .. 10 years; the error names the field."""
    with pytest.raises(ValidationError, match="not a TTL") as raised:
        decide_add({}, [(RULE, IntentOptions(ttl=ttl))], now=1.0)
    assert raised.value.field == "ttl"


def test_add_events_only_when_asked() -> None:
    """Events are built for a watcher (added or updated, at ``now``), not otherwise."""
    current: dict[str, Intent] = {RULE.key: flow(RULE)}
    items: list[tuple[Announceable, IntentOptions]] = [
        (RATE, IntentOptions()),
        (ROUTE, IntentOptions()),
    ]
    assert decide_add(current, items, now=5.0).events == ()
    watched = decide_add(current, items, now=5.0, events=True, make_id=ids())
    expected = (
        Event(EventKind.FLOW_ANNOUNCED, "fs-1", render_rule(RATE), "updated", 5.0),
        Event(EventKind.ROUTE_ANNOUNCED, "rt-1", "192.0.2.1/32", "added", 5.0),
    )
    assert expected == watched.events


def test_meta_keeps_the_origin_unless_given() -> None:
    """An empty origin on a new intent is "api"; on an update it keeps the old one."""
    new = meta_for(None, "fs", IntentOptions(origin=""), 3.0, lambda kind: "fs-9")
    assert IntentMeta("fs-9", "", "api", 3.0, 3.0, None) == new
    old = flow(RULE)
    kept = meta_for(
        FlowIntent(IntentMeta("fs-1", "x", "cli", 1.0, 1.0), RULE),
        "fs",
        IntentOptions(origin=""),
        3.0,
    )
    assert (kept.origin, kept.reason) == ("cli", "x")
    assert old.meta.id == kept.id


def test_remove_only_what_is_stored_and_once() -> None:
    """A removal forgets and withdraws the stored intents given, each once; an intent
    no longer stored (or replaced) is left out."""
    stored = flow(RULE)
    replaced = flow(RULE, ident="fs-0")  # same key, not the stored value
    changes = decide_remove({RULE.key: stored}, [stored, replaced, stored], now=1.0)
    assert ChangeSet(answer=(stored,), deletes=(stored,), withdraw=(RULE,)) == changes


def test_remove_nothing() -> None:
    """Nothing stored to remove: an empty change set."""
    changes = decide_remove({}, [flow(RULE)], now=1.0)
    assert ChangeSet(answer=()) == changes
    assert not changes.stores


def test_remove_events() -> None:
    """Withdrawn or expired, as asked; a route under its prefix."""
    route = RouteIntent(IntentMeta("rt-1", "", "api", 1.0, 1.0), ROUTE)
    current: dict[str, Intent] = {RULE.key: flow(RULE), ROUTE.key: route}
    changes = decide_remove(current, list(current.values()), now=2.0, expired=True, events=True)
    expected = (
        Event(EventKind.FLOW_EXPIRED, "fs-1", render_rule(RULE), "", 2.0),
        Event(EventKind.ROUTE_EXPIRED, "rt-1", "192.0.2.1/32", "", 2.0),
    )
    assert expected == changes.events


def test_expiry_decides_from_the_table() -> None:
    """What is due at ``now`` is removed as expired; the table is not changed."""
    due, later = (
        flow(RULE, "fs-1", 10.0),
        RouteIntent(IntentMeta("rt-2", "", "api", 1.0, 1.0, 20.0), ROUTE),
    )
    table = IntentTable([due, later])
    changes = decide_expiry(table, now=10.0, events=True)
    assert ((due,), (RULE,)) == (changes.answer, changes.withdraw)
    assert [e.kind for e in changes.events] == [EventKind.FLOW_EXPIRED]
    assert table.counts() == (1, 1)


def test_find_ids() -> None:
    """Ids found and ids of nothing, in the order asked."""
    table = IntentTable([flow(RULE, "fs-1")])
    found, missing = find_ids(table, ["fs-2", "fs-1"])
    assert ([RULE.key], ["fs-2"]) == ([i.key for i in found], missing)
