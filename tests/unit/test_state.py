"""Unit tests for trafex.control.state: the intents held in memory."""

from __future__ import annotations

import ipaddress

from hypothesis import given
from hypothesis import strategies as st

from trafex.control.state import IntentTable, item_of
from trafex.model.flowspec import FlowRule
from trafex.model.grammar import parse_rule
from trafex.model.intent import FlowIntent, Intent, IntentMeta, RouteIntent
from trafex.model.route import UnicastRoute

ROUTE = UnicastRoute(ipaddress.ip_network("192.0.2.1/32"))


def rule(n: int) -> FlowRule:
    return parse_rule(f"destination 10.0.{n // 256}.{n % 256}/32 discard")


def flow(n: int, expires_at: float | None = None, ident: str = "") -> FlowIntent:
    meta = IntentMeta(ident or f"fs-{n}", "", "api", 0.0, 0.0, expires_at)
    return FlowIntent(meta, rule(n))


def test_lookups() -> None:
    """By key, by id, flows, routes, counts and the desired paths."""
    route = RouteIntent(IntentMeta("rt-1", "", "api", 0.0, 0.0), ROUTE)
    table = IntentTable([flow(1), route])
    assert (flow(1), route) == (table.get(rule(1).key), table.find("rt-1"))
    assert (table.get(rule(2).key), table.find("fs-2")) == (None, None)
    assert ([flow(1)], [route], (1, 1)) == (table.flows(), table.routes(), table.counts())
    assert {rule(1).key: rule(1), ROUTE.key: ROUTE} == table.desired()
    assert (rule(1), ROUTE) == (item_of(flow(1)), item_of(route))


def test_a_write_replaces_the_intent_of_its_key() -> None:
    """Writing an intent of a stored key replaces it (a new id would be found too)."""
    table = IntentTable([flow(1, ident="fs-a")])
    newer = flow(1, ident="fs-a", expires_at=5.0)
    table.apply([newer], [])
    assert [newer] == table.flows()


def test_a_delete_forgets_only_that_value() -> None:
    """Deleting an intent that has been replaced since leaves the newer one."""
    old, new = flow(1, ident="fs-a"), flow(1, 9.0, ident="fs-a")
    table = IntentTable([old])
    table.apply([new], [])
    table.apply([], [old])
    assert [new] == table.flows()
    table.apply([], [new])
    assert (table.flows(), table.find("fs-a")) == ([], None)


def test_due_soonest_first_and_without_changing_anything() -> None:
    """The intents whose expiry is at or before ``now``, soonest first; asking again
    gives the same answer until they are deleted."""
    table = IntentTable([flow(1, 30.0), flow(2, 10.0), flow(3, None), flow(4, 20.0)])
    assert table.due(9.9) == []
    assert [flow(2, 10.0), flow(4, 20.0)] == table.due(20.0)
    assert [flow(2, 10.0), flow(4, 20.0)] == table.due(20.0)
    table.apply([], [flow(2, 10.0)])
    assert [flow(4, 20.0)] == table.due(25.0)


def test_a_refreshed_expiry_replaces_the_old_one() -> None:
    """After a refresh only the new expiry counts; without a TTL, none does."""
    table = IntentTable([flow(1, 10.0), flow(2, 10.0)])
    table.apply([flow(1, 50.0), flow(2, None)], [])
    assert table.due(49.0) == []
    assert [flow(1, 50.0)] == table.due(50.0)


def test_tidy_keeps_what_still_counts() -> None:
    """tidy() drops only entries that no longer count: a due intent that is still held
    (its removal could not be stored) stays due, and so do later ones."""
    table = IntentTable([flow(1, 10.0), flow(2, 20.0), flow(3, 30.0)])
    table.apply([flow(2, 40.0)], [])  # rule 2 refreshed: its entry at 20 no longer counts
    table.tidy(25.0)
    assert [flow(1, 10.0)] == table.due(25.0)
    assert [flow(1, 10.0), flow(3, 30.0), flow(2, 40.0)] == table.due(40.0)


Step = tuple[int, int | None, bool, int | None]  # rule, expiry, delete, tidy at


@given(
    st.lists(
        st.tuples(
            st.integers(0, 20),
            st.none() | st.integers(0, 50),
            st.booleans(),
            st.none() | st.integers(0, 60),
        ),
        max_size=60,
    ),
    st.integers(0, 60),
)
def test_due_is_what_a_scan_finds(steps: list[Step], now: int) -> None:
    """After any writes, deletes and tidy-ups, due() is exactly the intents a full
    scan calls expired, soonest first."""
    table = IntentTable()
    for n, expires_at, delete, tidy_at in steps:
        current = table.get(rule(n).key)
        if delete and current is not None:
            table.apply([], [current])
        else:
            table.apply([flow(n, None if expires_at is None else float(expires_at))], [])
        if tidy_at is not None:
            table.tidy(float(tidy_at))
    scan: list[Intent] = [i for i in table.intents.values() if i.meta.expired(float(now))]
    expected = sorted(scan, key=lambda i: (i.meta.expires_at or 0.0, i.key))
    assert expected == table.due(float(now))
