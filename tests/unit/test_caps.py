"""Unit tests for trafex.control.caps: the caps on intents in force and the rate per
origin, as pure decisions (and through decide_add, which must stay all-or-none)."""

from __future__ import annotations

import ipaddress

import pytest

from trafex.control.caps import Bucket, check_caps, pruned, take_rates
from trafex.control.changes import IntentOptions, decide_add
from trafex.control.guardrails import GuardError, Guards
from trafex.control.state import IntentTable
from trafex.model.flowspec import FlowRule
from trafex.model.grammar import parse_rule
from trafex.model.intent import FlowIntent, Intent, IntentMeta, RouteIntent
from trafex.model.route import UnicastRoute

Item = FlowRule | UnicastRoute


def rule(n: int, action: str = "discard") -> FlowRule:
    return parse_rule(f"destination 10.0.{n // 256}.{n % 256}/32 {action}")


def route(n: int) -> UnicastRoute:
    return UnicastRoute(ipaddress.ip_network(f"192.0.2.{n}/32"))


def held(item: FlowRule | UnicastRoute, origin: str = "api", n: int = 0) -> Intent:
    meta = IntentMeta(f"x-{n}-{origin}", "", origin, 1.0, 1.0)
    return FlowIntent(meta, item) if isinstance(item, FlowRule) else RouteIntent(meta, item)


def table(*intents: Intent) -> IntentTable:
    return IntentTable(intents)


def refusal(
    guards: Guards, stored: IntentTable, *asked: tuple[FlowRule | UnicastRoute, str]
) -> str:
    """The message of the caps' refusal of ``asked`` (item, origin) over ``stored``."""
    items = [(item, IntentOptions(origin=origin)) for item, origin in asked]
    with pytest.raises(GuardError) as info:
        decide_add(stored.intents, items, now=1.0, guards=guards, tally=stored)
    return str(info.value)


# -- caps -------------------------------------------------------------------------------


def test_total_cap_names_the_guard_the_limit_and_the_rule() -> None:
    """With max_rules rules in force, one more is refused, naming the guard, the count,
    the limit and its key, and the rule; a route is not a rule."""
    stored = table(held(rule(1), n=1), held(rule(2), n=2))
    guards = Guards(max_rules=2)
    expected = (
        "guard caps: 2 rules in force; the limit is 2 ([guard] max_rules); "
        "refused: destination 10.0.0.3/32 discard"
    )
    assert expected == refusal(guards, stored, (rule(3), "api"))
    decide_add(stored.intents, [(route(1), IntentOptions())], now=1.0, guards=guards, tally=stored)


def test_total_cap_counts_the_request_itself() -> None:
    """A batch that would take the rules above the cap is refused whole, naming the
    rules of the same request counted before the refused one."""
    stored = table(held(rule(1), n=1))
    expected = (
        "guard caps: 1 rules in force and 2 more in this request; the limit is 3 "
        "([guard] max_rules); refused: destination 10.0.0.4/32 discard"
    )
    asked = [(rule(n), "api") for n in (2, 3, 4)]
    assert expected == refusal(Guards(max_rules=3), stored, *asked)


def test_an_update_adds_nothing() -> None:
    """At the cap, updating a stored match (new actions) and asking for it again pass:
    neither adds a rule."""
    stored = table(held(rule(1), n=1), held(route(1), n=2))
    guards = Guards(max_rules=1, max_routes=1, max_rules_per_origin=1)
    items: list[tuple[Item, IntentOptions]] = [
        (rule(1, "rate-limit 1000"), IntentOptions()),
        (rule(1), IntentOptions()),
        (route(1), IntentOptions()),
    ]
    changes = decide_add(stored.intents, items, now=1.0, guards=guards, tally=stored)
    assert [new for _, new in changes.answer] == [False, False, False]


def test_the_same_new_match_twice_in_a_batch_counts_once() -> None:
    """Two items with one match add one rule."""
    items = [(rule(1), IntentOptions()), (rule(1, "rate-limit 5"), IntentOptions())]
    changes = decide_add({}, items, now=1.0, guards=Guards(max_rules=1), tally=table())
    assert len(changes.writes) == 1


def test_per_origin_cap() -> None:
    """Each origin has its own count; the refusal names the origin and its key."""
    stored = table(held(rule(1), "sensor", 1), held(route(1), "sensor", 2))
    guards = Guards(max_rules_per_origin=1, max_routes_per_origin=1)
    expected = (
        "guard caps: 1 rules in force from origin 'sensor'; the limit is 1 "
        "([guard] max_rules_per_origin); refused: destination 10.0.0.2/32 discard"
    )
    assert expected == refusal(guards, stored, (rule(2), "sensor"))
    assert "refused: route 192.0.2.2/32" in refusal(guards, stored, (route(2), "sensor"))
    cli = IntentOptions(origin="cli")
    items: list[tuple[Item, IntentOptions]] = [(rule(2), cli), (route(2), cli)]
    decide_add(stored.intents, items, now=1.0, guards=guards, tally=stored)


def test_an_update_by_another_origin_moves_the_intent() -> None:
    """An update takes the asker's origin: it counts for that origin (refused when the
    asker is at its cap), and frees a place for the origin it leaves."""
    stored = table(held(rule(1), "sensor", 1), held(rule(2), "cli", 2))
    guards = Guards(max_rules_per_origin=1)
    assert "from origin 'cli'" in refusal(guards, stored, (rule(1), "cli"))
    # sensor's rule 1 moves to "ops"; then sensor has room for rule 3
    items = [(rule(1), IntentOptions(origin="ops")), (rule(3), IntentOptions(origin="sensor"))]
    changes = decide_add(stored.intents, items, now=1.0, guards=guards, tally=stored)
    assert [i.meta.origin for i, _ in changes.answer] == ["ops", "sensor"]


def test_a_lowered_cap_refuses_only_what_adds() -> None:
    """Above a cap lowered after the fact: updates pass, a new rule is refused with the
    count in force."""
    stored = table(*(held(rule(n), n=n) for n in range(5)))
    guards = Guards(max_rules=2)
    update = [(rule(0, "rate-limit 1"), IntentOptions())]
    decide_add(stored.intents, update, now=1.0, guards=guards, tally=stored)
    assert refusal(guards, stored, (rule(9), "api")).startswith(
        "guard caps: 5 rules in force; the limit is 2"
    )


def test_no_caps_no_check() -> None:
    """0 is no limit: check_caps does not even count."""

    class NoTally:
        def count(self, kind: str, origin: str | None = None) -> int:
            raise AssertionError("counted without a cap")

    no_caps = Guards(max_rules=0, max_routes=0)  # Guards() caps the totals (trafexd's)
    check_caps(NoTally(), [(None, held(rule(1)))], no_caps)


def test_without_a_tally_decide_add_counts_current() -> None:
    """decide_add's tally defaults to counting ``current`` (tests, tools)."""
    stored = table(held(rule(1), n=1))
    with pytest.raises(GuardError, match="guard caps: 1 rules in force"):
        decide_add(
            stored.intents, [(rule(2), IntentOptions())], now=1.0, guards=Guards(max_rules=1)
        )


# -- rate -------------------------------------------------------------------------------

RATE = Guards(rate_per_origin=2.0, burst_per_origin=4)


def test_a_new_origin_starts_with_a_full_bucket() -> None:
    """The first request of an origin takes from a full bucket."""
    taken = take_rates({}, [("sensor", rule(1))] * 3, 10.0, RATE)
    assert {"sensor": Bucket(1.0, 10.0)} == taken


def test_rate_refuses_and_refills() -> None:
    """An origin with too few tokens is refused, naming the rate and the rule; the
    bucket refills at rate_per_origin per second, up to the burst."""
    bucket = {"sensor": Bucket(0.0, 10.0)}
    with pytest.raises(GuardError) as info:
        take_rates(bucket, [("sensor", rule(1)), ("sensor", rule(2))], 10.5, RATE)
    expected = (
        "guard rate: origin 'sensor' is above 2 intents/s (1 of its burst of 4 left) "
        "([guard] rate_per_origin); refused: destination 10.0.0.1/32 discard and 1 more"
    )
    assert expected == str(info.value)
    assert {"sensor": Bucket(0.0, 11.0)} == take_rates(
        bucket, [("sensor", rule(1))] * 2, 11.0, RATE
    )
    assert {"sensor": Bucket(3.0, 100.0)} == take_rates(bucket, [("sensor", rule(1))], 100.0, RATE)


def test_a_batch_above_the_burst_never_passes() -> None:
    """A request of more intents than the burst is refused, saying so."""
    with pytest.raises(GuardError, match=r"asks for 5 intents at once, more than its burst of 4"):
        take_rates({}, [("sensor", rule(n)) for n in range(5)], 1.0, RATE)


def test_rate_is_per_origin_and_all_or_none() -> None:
    """Each origin has its own bucket; when one origin is refused, no bucket changes
    (the function returns nothing), and other origins' buckets are not consulted."""
    buckets = {"a": Bucket(0.0, 1.0)}
    assert take_rates(buckets, [("b", rule(1))], 1.0, RATE) == {"b": Bucket(3.0, 1.0)}
    with pytest.raises(GuardError, match="origin 'a'"):
        take_rates(buckets, [("b", rule(1)), ("a", route(1))], 1.0, RATE)
    assert buckets == {"a": Bucket(0.0, 1.0)}


def test_no_rate_no_buckets() -> None:
    """rate_per_origin 0: no limit, no bucket kept."""
    assert take_rates({}, [("a", rule(1))] * 1000, 1.0, Guards()) == {}


def test_a_clock_going_back_does_not_refill() -> None:
    """A clock set back adds no tokens and keeps the later time."""
    taken = take_rates({"a": Bucket(1.0, 50.0)}, [("a", rule(1))], 40.0, RATE)
    assert {"a": Bucket(0.0, 50.0)} == taken


def test_pruned_drops_full_buckets() -> None:
    """A bucket full again is as good as none: dropped."""
    buckets = {"full": Bucket(0.0, 0.0), "low": Bucket(0.0, 9.0)}
    assert {"low": Bucket(0.0, 9.0)} == pruned(buckets, 10.0, RATE)


def test_decide_add_rate_updates_count_and_dry_runs_take_nothing() -> None:
    """Through decide_add: an update of a stored rule takes a token like a new one;
    the new buckets come with the change set; a dry run is refused the same when out
    of tokens and otherwise takes none."""
    stored = table(held(rule(1), "sensor", 1))
    update = [(rule(1, "rate-limit 9"), IntentOptions(origin="sensor"))]
    changes = decide_add(stored.intents, update, now=5.0, guards=RATE, tally=stored)
    assert {"sensor": Bucket(3.0, 5.0)} == changes.buckets
    empty = {"sensor": Bucket(0.0, 5.0)}
    with pytest.raises(GuardError, match="guard rate"):
        decide_add(stored.intents, update, now=5.0, guards=RATE, buckets=empty)
    dry = [(rule(2), IntentOptions(origin="sensor", dry_run=True))]
    changes = decide_add(stored.intents, dry, now=5.0, guards=RATE, buckets={})
    assert changes.dry_run and changes.buckets == {}
