"""Caps and rates: how many intents may be in force, how fast one origin may ask. Pure.

**Caps** (``[guard] max_rules``, ``max_routes``, ``max_rules_per_origin``,
``max_routes_per_origin``; 0: no limit) count the intents in force plus those a
request adds. An update of a stored match or prefix adds none, except to the origin it
moves to when another origin asks for it (an update takes the asker's origin). A cap
lowered below what is in force refuses only what would add to it: updates and
removals still pass.

**Rate** (``rate_per_origin`` intents per second, a bucket of ``burst_per_origin``):
one token bucket per origin, on the controller's clock. Every intent of a request
takes a token, new, updated or refreshed alike: each is a request that trafexd
validates and stores, and the guard bounds what one origin can make trafexd do (a
detector that pushes back its rules' expiry spends tokens too: size the burst for its
refreshes). A request takes its tokens whole or is refused whole; a refused request
takes none, and a dry run is checked against the buckets without taking any.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from trafex.control.guardrails import GuardError, Guards, describe
from trafex.control.state import item_of, kind_of
from trafex.model.flowspec import FlowRule
from trafex.model.intent import Intent
from trafex.model.route import UnicastRoute
from trafex.ratelimit import refilled

Step = tuple[Intent | None, Intent]  # what a key held before a request, what it will hold


class Tally(Protocol):
    """How many intents are in force (:class:`~trafex.control.state.IntentTable`)."""

    def count(self, kind: str, origin: str | None = None) -> int: ...


def check_caps(tally: Tally, steps: Iterable[Step], guards: Guards) -> None:
    """Raise :class:`GuardError` (``caps``) at the first step that would take a kind of
    intent above a cap, in total or for its origin. ``steps`` are a request's, in
    order; a step's ``before`` is None for a new key."""
    if not guards.capped:
        return
    added: Counter[tuple[str, str | None]] = Counter()  # what the steps so far add
    for before, after in steps:
        kind, origin = kind_of(after), after.meta.origin
        if before is None:
            _admit(tally, added, (kind, None), after, guards)
        elif before.meta.origin == origin:
            continue
        else:
            added[(kind, before.meta.origin)] -= 1
        _admit(tally, added, (kind, origin), after, guards)


def _limit(guards: Guards, kind: str, per_origin: bool) -> tuple[int, str]:
    """The cap on ``kind`` (in total or per origin) and its config key."""
    key = f"max_{kind}s_per_origin" if per_origin else f"max_{kind}s"
    limit: int = getattr(guards, key)
    return limit, key


def _admit(
    tally: Tally,
    added: Counter[tuple[str, str | None]],
    pair: tuple[str, str | None],
    intent: Intent,
    guards: Guards,
) -> None:
    kind, origin = pair
    limit, key = _limit(guards, kind, origin is not None)
    held, earlier = tally.count(kind, origin), added[pair]
    if limit and held + earlier >= limit:
        source = f" from origin {origin!r}" if origin is not None else ""
        more = f" and {earlier} more in this request" if earlier > 0 else ""
        raise GuardError(
            "caps",
            f"{held} {kind}s in force{source}{more}; the limit is {limit} ([guard] {key}); "
            f"refused: {describe(item_of(intent))}",
        )
    added[pair] += 1


# -- rate -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Bucket:
    """One origin's tokens at time ``at`` (the controller's clock)."""

    tokens: float
    at: float

    def level(self, now: float, guards: Guards) -> float:
        """The tokens at ``now``: refilled at the rate, up to the burst."""
        capacity = float(guards.burst_per_origin)
        return refilled(self.tokens, self.at, now, guards.rate_per_origin, capacity)


Buckets = Mapping[str, Bucket]


def take_rates(
    buckets: Buckets,
    asks: Sequence[tuple[str, FlowRule | UnicastRoute]],
    now: float,
    guards: Guards,
) -> dict[str, Bucket]:
    """The buckets of the asking origins after ``asks`` (each intent of a request and
    its origin) took one token each at ``now``; an origin without a bucket has a full
    one. Raises :class:`GuardError` (``rate``) when an origin has too few: then no
    bucket changes. ``{}`` when there is no rate."""
    if not guards.rate_per_origin:
        return {}
    firsts: dict[str, FlowRule | UnicastRoute] = {}
    counts: Counter[str] = Counter()
    for origin, item in asks:
        firsts.setdefault(origin, item)
        counts[origin] += 1
    taken: dict[str, Bucket] = {}
    for origin, count in counts.items():
        bucket = buckets.get(origin)
        tokens = float(guards.burst_per_origin) if bucket is None else bucket.level(now, guards)
        if count > tokens:
            raise GuardError("rate", _rate_text(origin, count, tokens, firsts[origin], guards))
        at = now if bucket is None else max(now, bucket.at)
        taken[origin] = Bucket(tokens - count, at)
    return taken


def _rate_text(
    origin: str, count: int, tokens: float, first: FlowRule | UnicastRoute, guards: Guards
) -> str:
    more = f" and {count - 1} more" if count > 1 else ""
    burst = guards.burst_per_origin
    if count > burst:
        why = (
            f"origin {origin!r} asks for {count} intents at once, more than its burst of "
            f"{burst} ([guard] burst_per_origin)"
        )
    else:
        why = (
            f"origin {origin!r} is above {guards.rate_per_origin:g} intents/s "
            f"({int(tokens)} of its burst of {burst} left) ([guard] rate_per_origin)"
        )
    return f"{why}; refused: {describe(first)}{more}"


def pruned(buckets: Buckets, now: float, guards: Guards) -> dict[str, Bucket]:
    """``buckets`` without those full again at ``now`` (a full bucket is no bucket):
    origins are the clients' words, so their buckets must not pile up."""
    burst = guards.burst_per_origin
    return {o: b for o, b in buckets.items() if b.level(now, guards) < burst}
