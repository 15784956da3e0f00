"""trafexd's decisions: what a request changes, as a value. Pure.

Each function reads the current intents (the :class:`~trafex.control.state.IntentTable`,
which mirrors the store), the request and the time, and returns a :class:`ChangeSet`:
the intents to write to and delete from the store, the paths to announce and
withdraw, the events to publish and the caller's answer. Nothing here writes, sends
or publishes; the executor (:mod:`trafex.control.executor`) applies a change set.
As faucet's valve returns the messages that only faucet.py sends.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from trafex.bgp.client import Withdrawable
from trafex.control.caps import Bucket, Buckets, Step, Tally, check_caps, take_rates
from trafex.control.events import Event, EventKind
from trafex.control.guardrails import DEFAULT_MAX_TERMS, Guards, check_intent, check_rule
from trafex.control.reconcile import Announceable
from trafex.control.state import IntentTable, item_of
from trafex.model.errors import ValidationError
from trafex.model.flowspec import FlowRule
from trafex.model.intent import (
    MAX_TTL,
    ORIGIN_API,
    FlowIntent,
    Intent,
    IntentMeta,
    RouteIntent,
    new_id,
)

AnswerT = TypeVar("AnswerT")
Added = tuple[tuple[Intent, bool], ...]  # each stored intent, and whether it is new
Removed = tuple[Intent, ...]  # the intents withdrawn and forgotten


@dataclass(frozen=True, slots=True)
class IntentOptions:
    ttl: float | None = None
    reason: str = ""
    origin: str = ORIGIN_API
    force: bool = False  # past the breadth guard (logged as guard.forced)
    dry_run: bool = False  # validate and guard, store and announce nothing


@dataclass(frozen=True, slots=True)
class ChangeSet(Generic[AnswerT]):
    """What one request changes, in the order the executor applies it: the store (one
    transaction), then GoBGP (``withdraw``, then ``announce``), then the events."""

    answer: AnswerT  # what the caller gets once the store has the change
    writes: tuple[Intent, ...] = ()  # inserted or updated, by id
    deletes: tuple[Intent, ...] = ()
    announce: tuple[Announceable, ...] = ()
    withdraw: tuple[Withdrawable, ...] = ()
    events: tuple[Event, ...] = ()
    # An add's: the rate buckets of the asking origins once it is done (the
    # controller keeps them); a dry run, which stores, sends and publishes nothing.
    buckets: Mapping[str, Bucket] = field(default_factory=dict)
    dry_run: bool = False

    @property
    def stores(self) -> bool:
        """True when the store changes."""
        return bool(self.writes or self.deletes)


def meta_for(
    existing: Intent | None,
    kind: str,
    options: IntentOptions,
    now: float,
    make_id: Callable[[str], str] = new_id,
) -> IntentMeta:
    """The bookkeeping of an intent asked for at ``now``: a new id, or ``existing``'s
    id and creation time with the expiry moved. Raises :class:`ValidationError` for a
    TTL outside 1 s .. 10 years."""
    ttl = options.ttl
    if ttl is not None and not 0 < ttl <= MAX_TTL:
        raise ValidationError(f"{ttl} s is not a TTL (1 s .. 10 years)", field="ttl")
    if existing is not None:
        return existing.meta.refreshed(
            now=now, ttl=ttl, reason=options.reason, origin=options.origin
        )
    return IntentMeta(
        id=make_id(kind),
        reason=options.reason,
        origin=options.origin or ORIGIN_API,
        created_at=now,
        updated_at=now,
        expires_at=now + ttl if ttl else None,
    )


def decide_add(
    current: Mapping[str, Intent],
    items: Sequence[tuple[Announceable, IntentOptions]],
    *,
    now: float,
    max_terms: int = DEFAULT_MAX_TERMS,
    guards: Guards | None = None,
    tally: Tally | None = None,
    buckets: Buckets | None = None,
    events: bool = False,
    make_id: Callable[[str], str] = new_id,
) -> ChangeSet[Added]:
    """Add or update rules and routes, all or none (the first invalid one raises
    :class:`ValidationError`). A match or prefix already stored keeps its id and is
    updated; only what changes on the wire is announced. ``events``: build the
    announced events (somebody watches).

    ``guards`` (None: default guards): every item passes each of them, or the first
    refusal raises :class:`~trafex.control.guardrails.GuardError`; the caps count
    ``tally`` (the intents in force, :class:`IntentTable`; None: counted from
    ``current``), the rate takes from ``buckets`` (each origin's; the new ones are in
    :attr:`ChangeSet.buckets`). A dry run (``guards.dry_run``, or any item's options:
    a batch is one request) answers the intents as they would be stored, new ids
    included, and changes nothing."""
    guards = Guards() if guards is None else guards
    staged: dict[str, Intent] = {}
    steps: list[Step] = []
    changed: list[Announceable] = []
    for item, options in items:
        if isinstance(item, FlowRule):
            check_rule(item, max_terms=max_terms)
        check_intent(item, guards, force=options.force, origin=_origin(options))
        key = item.key
        existing = staged.get(key) or current.get(key)
        intent: Intent
        if isinstance(item, FlowRule):
            intent = FlowIntent(meta_for(existing, "fs", options, now, make_id), item)
            same = isinstance(existing, FlowIntent) and existing.rule == item
        else:
            intent = RouteIntent(meta_for(existing, "rt", options, now, make_id), item)
            same = isinstance(existing, RouteIntent) and existing.route == item
        staged[key] = intent
        steps.append((existing, intent))
        if not same:
            changed.append(item)
    if guards.capped:
        check_caps(IntentTable(current.values()) if tally is None else tally, steps, guards)
    asks = [(_origin(options), item) for item, options in items]
    taken = take_rates({} if buckets is None else buckets, asks, now, guards)
    results = tuple((intent, before is None) for before, intent in steps)
    if guards.dry_run or any(options.dry_run for _, options in items):
        return ChangeSet(answer=results, dry_run=True)
    published = (
        tuple(announced_event(i, "added" if new else "updated", now) for i, new in results)
        if events
        else ()
    )
    return ChangeSet(
        answer=results,
        writes=tuple(staged.values()),
        announce=tuple(changed),
        events=published,
        buckets=taken,
    )


def _origin(options: IntentOptions) -> str:
    """Who asks: the origin the request declares (``api`` when it declares none)."""
    return options.origin or ORIGIN_API


def decide_remove(
    current: Mapping[str, Intent],
    intents: Iterable[Intent],
    *,
    now: float,
    expired: bool = False,
    events: bool = False,
) -> ChangeSet[Removed]:
    """Withdraw and forget those of ``intents`` that are still stored (each once)."""
    stored: dict[str, Intent] = {}
    for intent in intents:
        key = intent.key
        if current.get(key) is intent:
            stored[key] = intent
    return _removal(tuple(stored.values()), expired, now, events)


def decide_expiry(table: IntentTable, *, now: float, events: bool = False) -> ChangeSet[Removed]:
    """Withdraw and forget every intent whose TTL has passed at ``now``."""
    return _removal(tuple(table.due(now)), True, now, events)


def _removal(gone: Removed, expired: bool, now: float, events: bool) -> ChangeSet[Removed]:
    """The removal of ``gone`` (stored intents, each once)."""
    published = tuple(withdrawn_event(i, expired, now) for i in gone) if events else ()
    return ChangeSet(
        answer=gone,
        deletes=gone,
        withdraw=tuple(item_of(i) for i in gone),
        events=published,
    )


def find_ids(table: IntentTable, ids: Iterable[str]) -> tuple[list[Intent], list[str]]:
    """The intents with these ids, and the ids of none."""
    found: list[Intent] = []
    missing: list[str] = []
    for ident in ids:
        intent = table.find(ident)
        if intent is None:
            missing.append(ident)
        else:
            found.append(intent)
    return found, missing


def announced_event(intent: Intent, how: str, now: float) -> Event:
    if isinstance(intent, FlowIntent):
        kind, subject = EventKind.FLOW_ANNOUNCED, intent.text
    else:
        kind, subject = EventKind.ROUTE_ANNOUNCED, str(intent.route.prefix)
    return Event(kind, intent.meta.id, subject, how, time=now)


def withdrawn_event(intent: Intent, expired: bool, now: float) -> Event:
    if isinstance(intent, FlowIntent):
        kind = EventKind.FLOW_EXPIRED if expired else EventKind.FLOW_WITHDRAWN
        subject = intent.text
    else:
        kind = EventKind.ROUTE_EXPIRED if expired else EventKind.ROUTE_WITHDRAWN
        subject = str(intent.route.prefix)
    return Event(kind, intent.meta.id, subject, time=now)
