"""trafexd's core: intents in, store and sidecar kept equal to them.

Adding a rule whose match is already stored updates that rule (same id, new actions,
one path on the wire). Every change is written to the store first, then sent to the
sidecar. The store is the truth: a change is accepted once it is stored, and the
reconciler makes GoBGP's RIB equal the store whatever happens to a send.

The controller only orders and wires: under one lock it reads the state, asks a pure
decision (:mod:`trafex.control.changes`, :mod:`trafex.control.reconcile`) for the
change set, and hands that to the executor (:mod:`trafex.control.executor`), which
stores it, queues its paths for GoBGP on one ordered worker and publishes its events.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence

import structlog

from trafex.control.caps import Bucket, pruned
from trafex.control.changes import (
    Added,
    ChangeSet,
    IntentOptions,
    Removed,
    decide_add,
    decide_expiry,
    decide_remove,
    find_ids,
)
from trafex.control.events import EventBus
from trafex.control.executor import (
    MAX_IN_FLIGHT,
    Executor,
    NotAnnouncedError,
    PathClient,
    Sender,
)
from trafex.control.guardrails import DEFAULT_MAX_TERMS, GuardError, Guards
from trafex.control.reconcile import (
    Announceable,
    Plan,
    PlanBuilder,
    ReconcileResult,
    reconciled_event,
    result_of,
)
from trafex.control.state import IntentTable
from trafex.control.store import Store
from trafex.model.errors import TrafexError
from trafex.model.intent import MAX_TTL, FlowIntent, Intent, RouteIntent

__all__ = [
    "MAX_IN_FLIGHT",
    "MAX_TTL",
    "Controller",
    "DryRunError",
    "IntentOptions",
    "NotAnnouncedError",
    "NotFoundError",
    "ReconcileResult",
]

log = structlog.get_logger("trafex.controller")


class NotFoundError(TrafexError):
    """No intent with that id, match or prefix."""


class DryRunError(TrafexError):
    """The answer to a dry run (not a failure): every guard passed, nothing was
    stored, sent or published. ``answer`` holds the intents as they would have been stored (with the
    ids a new one would have got, and whether each would be new). Raised rather than
    returned, so that a caller unaware of dry runs (``[guard] dry_run = true`` makes
    every request one) can never take it for a change that was made."""

    def __init__(self, answer: Added) -> None:
        count = len(answer)
        super().__init__(f"dry run: would announce {count} intent(s); nothing was stored")
        self.answer = answer


#: Rate buckets kept before the full ones are dropped (origins are the clients' words).
_MAX_BUCKETS = 1024


class Controller:
    """Owns the desired state. Thread-safe: one lock orders every change."""

    def __init__(
        self,
        store: Store,
        client: PathClient,
        events: EventBus,
        *,
        batch_size: int = 1000,
        max_terms: int = DEFAULT_MAX_TERMS,
        guards: Guards | None = None,
        clock: Callable[[], float] = time.time,
        sidecar_up: Callable[[], bool] = lambda: True,
        max_in_flight: int = MAX_IN_FLIGHT,
    ) -> None:
        self._store = store
        self._client = client
        self._events = events
        self._max_terms = max_terms
        self._guards = Guards() if guards is None else guards
        self._buckets: dict[str, Bucket] = {}  # the rate guard's, per origin
        self._clock = clock
        self._lock = threading.RLock()
        self._table = IntentTable()
        self._sender = Sender(client, batch_size=batch_size, max_in_flight=max_in_flight)
        self._executor = Executor(store, self._table, self._sender, events, sidecar_up)
        self.last_reconcile: float | None = None
        self._withdrawn = False  # withdraw_all() was called: reconcile sends nothing

    def close(self) -> None:
        """Finish the queued sends and stop the sending thread."""
        self._sender.close()

    # -- loading ------------------------------------------------------------------------

    def load(self) -> list[str]:
        """Read the store into memory; return a message for each row that was skipped."""
        intents, problems = self._store.load()
        with self._lock:
            self._table.apply(intents, ())
        return problems

    # -- queries ------------------------------------------------------------------------

    def flows(self) -> list[FlowIntent]:
        with self._lock:
            return self._table.flows()

    def routes(self) -> list[RouteIntent]:
        with self._lock:
            return self._table.routes()

    def counts(self) -> tuple[int, int]:
        with self._lock:
            return self._table.counts()

    def by_origin(self) -> dict[tuple[str, str], int]:
        """Intents held by ``(rule|route, origin)``."""
        with self._lock:
            return self._table.by_origin()

    def by_id(self, ident: str) -> Intent:
        with self._lock:
            intent = self._table.find(ident)
        if intent is None:
            raise NotFoundError(f"no intent with id {ident!r}")
        return intent

    def by_key(self, key: str) -> Intent:
        with self._lock:
            intent = self._table.get(key)
        if intent is None:
            raise NotFoundError("no rule or route with that match")
        return intent

    # -- the sends ----------------------------------------------------------------------

    @property
    def send_failures(self) -> int:
        """Sends that failed after their change was accepted (the reconciler repairs them)."""
        return self._sender.failures

    @property
    def last_send_error(self) -> str:
        return self._sender.last_error

    @property
    def queued_paths(self) -> int:
        """Paths accepted and queued for GoBGP, not yet taken."""
        return self._sender.queued_paths

    def flush(self) -> None:
        """Wait until GoBGP has taken every queued send (tests, shutdown)."""
        self._sender.flush()

    # -- changes ------------------------------------------------------------------------

    def add(self, items: Sequence[tuple[Announceable, IntentOptions]]) -> list[tuple[Intent, bool]]:
        """Add or update rules and routes; returns each stored intent and whether it is new.

        All are stored (one transaction) or none; then the changed ones are queued for
        GoBGP. Raises :class:`NotAnnouncedError` (a :class:`SidecarError`, after storing)
        when the sidecar is down, :class:`~trafex.control.guardrails.GuardError` when a
        guard refuses (nothing stored), and :class:`DryRunError` with the would-be answer
        for a dry run (nothing stored, sent or published; logged as ``intent.dry_run``).
        """
        with self._lock:
            now = self._clock()
            try:
                changes = decide_add(
                    self._table.intents,
                    items,
                    now=now,
                    max_terms=self._max_terms,
                    guards=self._guards,
                    tally=self._table,
                    buckets=self._buckets,
                    events=self._events.watched,
                )
            except GuardError as error:
                origins = sorted({options.origin for _, options in items})
                log.warning("guard.refused", guard=error.guard, origins=origins, error=str(error))
                raise
            if not changes.dry_run:
                self._commit_add(changes, now)
        if changes.dry_run:
            origins = sorted({options.origin for _, options in items})
            log.info("intent.dry_run", count=len(changes.answer), origins=origins)
            raise DryRunError(changes.answer)
        for item, options in items:
            if options.force:
                log.warning("guard.forced", key=item.key, origin=options.origin)
        self._executor.settle(changes)
        return list(changes.answer)

    def _commit_add(self, changes: ChangeSet[Added], now: float) -> None:
        """Commit an add and keep its rate buckets once it is stored (call with the
        lock held): a request the store refused takes no tokens."""
        try:
            self._executor.commit(changes)
        except NotAnnouncedError:
            self._take_tokens(changes, now)  # stored all the same
            raise
        self._take_tokens(changes, now)

    def _take_tokens(self, changes: ChangeSet[Added], now: float) -> None:
        self._buckets.update(changes.buckets)
        if len(self._buckets) > _MAX_BUCKETS:
            self._buckets = pruned(self._buckets, now, self._guards)

    def remove(self, intents: Iterable[Intent], *, expired_: bool = False) -> list[Intent]:
        """Withdraw and forget these intents (those still stored)."""
        with self._lock:
            changes = self._commit_removal(intents, expired_)
        return self._settled(changes)

    def remove_ids(self, ids: Iterable[str]) -> tuple[list[Intent], list[str]]:
        """Withdraw and forget the intents with these ids; returns them and the ids of none."""
        with self._lock:
            found, missing = find_ids(self._table, ids)
            changes = self._commit_removal(found, False)
        return self._settled(changes), missing

    def expire(self) -> list[Intent]:
        """Withdraw every intent whose TTL has passed (a store that cannot be written
        raises and leaves them due: the next call tries again)."""
        with self._lock:
            now = self._clock()
            changes = decide_expiry(self._table, now=now, events=self._events.watched)
            if changes.answer:
                log.info("intents.expired", count=len(changes.answer))
                self._executor.commit(changes)
            self._table.tidy(now)
        return self._settled(changes)

    def _commit_removal(self, intents: Iterable[Intent], expired: bool) -> ChangeSet[Removed]:
        """Decide a removal and commit it (call with the lock held)."""
        changes = decide_remove(
            self._table.intents,
            intents,
            now=self._clock(),
            expired=expired,
            events=self._events.watched,
        )
        if changes.answer:
            self._executor.commit(changes)
        return changes

    def _settled(self, changes: ChangeSet[Removed]) -> list[Intent]:
        """Settle a committed removal (without the lock); nothing to do for none."""
        if changes.answer:
            self._executor.settle(changes)
        return list(changes.answer)

    def withdraw_all(self) -> int:
        """Withdraw every stored rule and route from GoBGP, keep them stored, and send
        nothing more (trafexd is stopping with ``on_shutdown = "withdraw"``: the next
        start announces them again). Returns how many were withdrawn, once GoBGP has
        taken them. Raises :class:`NotAnnouncedError` when the sidecar is down."""
        with self._lock:
            self._withdrawn = True  # a reconcile already under way announces nothing
            items = tuple(self._table.desired().values())
            self._executor.commit(ChangeSet(answer=(), withdraw=items))
        self._sender.flush()
        log.info("intents.withdrawn_all", count=len(items), note="kept in the store")
        return len(items)

    # -- reconcile ----------------------------------------------------------------------

    def reconcile(self, reason: str) -> ReconcileResult:
        """Make GoBGP's RIB equal the store. Raises :class:`SidecarError` if unreachable."""
        # Reading a large RIB takes a while: it is read without holding the lock, so the
        # API keeps taking changes meanwhile, and compared path by path as it streams
        # in against a snapshot of the store (no copy of the RIB is kept). The plan is
        # then checked against the store as it is, under the lock, with its sending:
        # nothing it sends can undo or repeat a change made while the RIB was read.
        with self._lock:
            builder = PlanBuilder(self._table.desired())
        for key, held in self._client.walk_rib():
            builder.see(key, held)
        foreign = self._client.foreign
        with self._lock:
            todo = Plan() if self._withdrawn else builder.finish(self._table.item)
            sent = self._executor.send(todo)
        for future in sent:
            future.result()  # SidecarError: the caller retries the whole reconcile
        now = self._clock()
        self.last_reconcile = now
        result = result_of(todo, foreign)
        for key, error in todo.undecodable:
            log.warning("reconcile.undecodable", key=key, error=error)
        if not todo.empty:
            log.info(
                "reconciled",
                reason=reason,
                announced=result.announced,
                withdrawn=result.withdrawn,
                foreign=foreign,
            )
        self._executor.publish([reconciled_event(result, reason, now)])
        return result
