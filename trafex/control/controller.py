"""trafexd's core: intents in, store and sidecar kept equal to them.

Adding a rule whose match is already stored updates that rule (same id, new actions,
one path on the wire). Every change is written to the store first, then sent to the
sidecar. The store is the truth: a change is accepted once it is stored, and the
reconciler makes GoBGP's RIB equal the store whatever happens to a send.

Sends go through one worker thread, in the order the changes were made (they are
queued under the lock that orders the changes). A caller does not wait for GoBGP:
it gets its answer when its change is stored, and GoBGP takes the paths while the
next caller's change is validated and stored (trafexd and gobgpd work at the same
time, and a sensor's intent is accepted in the time of a store commit). When the
sidecar is known to be down, the change is stored and the caller told it is not
announced; a send that fails later is logged and left to the reconciler (which runs
when the sidecar comes back). At most :data:`MAX_IN_FLIGHT` paths wait for GoBGP:
past that a caller waits for the oldest sends, so a fast client cannot queue without
bound.
"""

from __future__ import annotations

import heapq
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent import futures
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import structlog

from trafex.bgp.client import GobgpClient, SidecarError, Signature, Withdrawable
from trafex.control.events import Event, EventBus, EventKind
from trafex.control.guardrails import DEFAULT_MAX_TERMS, check_rule
from trafex.control.reconcile import Announceable, Plan, plan
from trafex.control.store import Store, StoreError
from trafex.model.errors import TrafexError, ValidationError
from trafex.model.flowspec import FlowRule
from trafex.model.intent import (
    ORIGIN_API,
    FlowIntent,
    Intent,
    IntentMeta,
    RouteIntent,
    new_id,
)
from trafex.model.nlri import decode_key
from trafex.model.route import UnicastRoute

log = structlog.get_logger("trafex.controller")

MAX_TTL = 10 * 365 * 86400
MAX_IN_FLIGHT = 20_000  # paths queued for GoBGP before callers wait for it


class NotFoundError(TrafexError):
    """No intent with that id, match or prefix."""


@dataclass(frozen=True, slots=True)
class IntentOptions:
    ttl: float | None = None
    reason: str = ""
    origin: str = ORIGIN_API


@dataclass(frozen=True, slots=True)
class ReconcileResult:
    announced: int
    withdrawn: int
    foreign: int


class Controller:
    """Owns the desired state. Thread-safe: one lock orders every change."""

    def __init__(
        self,
        store: Store,
        client: GobgpClient,
        events: EventBus,
        *,
        batch_size: int = 1000,
        max_terms: int = DEFAULT_MAX_TERMS,
        clock: Callable[[], float] = time.time,
        sidecar_up: Callable[[], bool] = lambda: True,
    ) -> None:
        self._store = store
        self._client = client
        self._events = events
        self._batch = batch_size
        self._max_terms = max_terms
        self._clock = clock
        self._sidecar_up = sidecar_up
        self._lock = threading.RLock()
        # One worker: paths reach GoBGP in the order they were queued.
        self._sender = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gobgp-send")
        self._in_flight: deque[tuple[Future[None], int]] = deque()  # (send, paths), oldest first
        self._in_flight_paths = 0
        self._flight_lock = threading.Lock()
        self.send_failures = 0  # sends that failed after their change was accepted
        self.last_send_error = ""
        self._intents: dict[str, Intent] = {}  # key → intent
        self._ids: dict[str, str] = {}  # id → key
        # (expires_at, key) of every intent with a TTL, soonest first; an entry whose
        # intent is gone or has another expiry now is skipped when it comes up. The
        # expiry timer then costs what expires, not a scan of every intent each second.
        self._expiries: list[tuple[float, str]] = []
        self.last_reconcile: float | None = None

    def close(self) -> None:
        """Finish the queued sends and stop the sending thread."""
        self._sender.shutdown(wait=True)

    # -- loading ------------------------------------------------------------------------

    def load(self) -> list[str]:
        """Read the store into memory; return a message for each row that was skipped."""
        intents, problems = self._store.load()
        with self._lock:
            for intent in intents:
                self._remember(intent)
        return problems

    # -- queries ------------------------------------------------------------------------

    def flows(self) -> list[FlowIntent]:
        with self._lock:
            return [i for i in self._intents.values() if isinstance(i, FlowIntent)]

    def routes(self) -> list[RouteIntent]:
        with self._lock:
            return [i for i in self._intents.values() if isinstance(i, RouteIntent)]

    def counts(self) -> tuple[int, int]:
        with self._lock:
            flows = sum(1 for i in self._intents.values() if isinstance(i, FlowIntent))
            return flows, len(self._intents) - flows

    def by_id(self, ident: str) -> Intent:
        with self._lock:
            key = self._ids.get(ident)
            if key is None:
                raise NotFoundError(f"no intent with id {ident!r}")
            return self._intents[key]

    def by_key(self, key: str) -> Intent:
        with self._lock:
            intent = self._intents.get(key)
            if intent is None:
                raise NotFoundError("no rule or route with that match")
            return intent

    # -- changes ------------------------------------------------------------------------

    def _meta(self, existing: Intent | None, kind: str, options: IntentOptions) -> IntentMeta:
        now = self._clock()
        ttl = options.ttl
        if ttl is not None and not 0 < ttl <= MAX_TTL:
            raise ValidationError(f"{ttl} s is not a TTL (1 s .. 10 years)", field="ttl")
        if existing is not None:
            return existing.meta.refreshed(
                now=now, ttl=ttl, reason=options.reason, origin=options.origin
            )
        return IntentMeta(
            id=new_id(kind),
            reason=options.reason,
            origin=options.origin or ORIGIN_API,
            created_at=now,
            updated_at=now,
            expires_at=now + ttl if ttl else None,
        )

    def add(self, items: Sequence[tuple[Announceable, IntentOptions]]) -> list[tuple[Intent, bool]]:
        """Add or update rules and routes; returns each stored intent and whether it is new.

        All are stored (one transaction) or none; then the changed ones are queued for
        GoBGP. Raises :class:`SidecarError` (after storing) when the sidecar is down.
        """
        results: list[tuple[Intent, bool]] = []
        with self._lock:
            staged: dict[str, Intent] = {}
            changed: list[Announceable] = []
            for item, options in items:
                if isinstance(item, FlowRule):
                    check_rule(item, max_terms=self._max_terms)
                key = item.key
                existing = staged.get(key) or self._intents.get(key)
                kind = "fs" if isinstance(item, FlowRule) else "rt"
                meta = self._meta(existing, kind, options)
                intent: Intent
                if isinstance(item, FlowRule):
                    intent = FlowIntent(meta, item)
                    same = isinstance(existing, FlowIntent) and existing.rule == item
                else:
                    intent = RouteIntent(meta, item)
                    same = isinstance(existing, RouteIntent) and existing.route == item
                staged[key] = intent
                if not same:
                    changed.append(item)
                results.append((intent, existing is None))
            self._store.upsert(list(staged.values()))
            for intent in staged.values():
                self._remember(intent)
            self._queue(changed, withdraw=False)
        self._throttle()
        if self._events.watched:
            for intent, created in results:
                self._publish_announced(intent, "added" if created else "updated")
        return results

    def remove(self, intents: Iterable[Intent], *, expired_: bool = False) -> list[Intent]:
        """Withdraw and forget these intents (those still stored)."""
        with self._lock:
            gone = [i for i in intents if self._intents.get(i.key) is i]
            if not gone:
                return []
            self._store.delete(i.meta.id for i in gone)
            for intent in gone:
                del self._intents[intent.key]
                self._ids.pop(intent.meta.id, None)
            self._queue([_item(i) for i in gone], withdraw=True)
        self._throttle()
        if self._events.watched:
            for intent in gone:
                self._publish_withdrawn(intent, expired_)
        return gone

    def remove_ids(self, ids: Iterable[str]) -> tuple[list[Intent], list[str]]:
        with self._lock:
            found, missing = [], []
            for ident in ids:
                key = self._ids.get(ident)
                if key is None:
                    missing.append(ident)
                else:
                    found.append(self._intents[key])
            return self.remove(found), missing

    def _remember(self, intent: Intent) -> None:
        """Hold ``intent`` in memory (call with the lock held)."""
        self._intents[intent.key] = intent
        self._ids[intent.meta.id] = intent.key
        if intent.meta.expires_at is not None:
            heapq.heappush(self._expiries, (intent.meta.expires_at, intent.key))

    def _due(self, now: float) -> list[Intent]:
        """The intents whose expiry has passed (call with the lock held)."""
        due: dict[str, Intent] = {}
        heap = self._expiries
        while heap and heap[0][0] <= now:
            when, key = heapq.heappop(heap)
            intent = self._intents.get(key)
            if intent is not None and intent.meta.expires_at == when:
                due[key] = intent
        return list(due.values())

    def expire(self) -> list[Intent]:
        """Withdraw every intent whose TTL has passed."""
        with self._lock:
            due = self._due(self._clock())
        if due:
            log.info("intents.expired", count=len(due))
        try:
            return self.remove(due, expired_=True)
        except StoreError:
            with self._lock:  # still stored and held: they must come up again
                for intent in due:
                    if self._intents.get(intent.key) is intent:
                        self._remember(intent)
            raise

    def _queue(self, items: Sequence[Withdrawable], *, withdraw: bool) -> None:
        """Queue ``items`` for GoBGP (call with the lock held: the queue's order is the
        order of the changes). Raises :class:`SidecarError` when the sidecar is down:
        the change is stored, and the reconcile after the sidecar comes back sends it."""
        if not items:
            return
        if not self._sidecar_up():
            raise SidecarError("gobgpd is down", unavailable=True)
        send = self._client.withdraw if withdraw else self._client.announce
        sent = self._submit(send, items)
        sent.add_done_callback(lambda done: self._sent(done, len(items), withdraw))
        with self._flight_lock:
            self._in_flight.append((sent, len(items)))
            self._in_flight_paths += len(items)

    def _submit(self, send: Callable[..., None], items: Sequence[Withdrawable]) -> Future[None]:
        """Queue one call of the GoBGP client's ``send`` (announce or withdraw)."""
        try:
            return self._sender.submit(send, items, batch_size=self._batch)
        except RuntimeError:  # closed: trafexd is stopping
            raise SidecarError("trafexd is stopping", unavailable=True) from None

    def _throttle(self) -> None:
        """Drop finished sends from the count; while more than :data:`MAX_IN_FLIGHT`
        paths wait for GoBGP, wait (without the lock) for the oldest."""
        while True:
            with self._flight_lock:
                while self._in_flight and self._in_flight[0][0].done():
                    self._in_flight_paths -= self._in_flight.popleft()[1]
                if self._in_flight_paths <= MAX_IN_FLIGHT or not self._in_flight:
                    return
                oldest = self._in_flight[0][0]
            futures.wait([oldest])

    def _sent(self, sent: Future[None], count: int, withdraw: bool) -> None:
        """A queued send finished: count and log a failure (the reconciler repairs it)."""
        error = sent.exception()
        if error is None:
            return
        self.send_failures += 1
        self.last_send_error = str(error)
        log.warning(
            "sidecar.send_failed",
            withdraw=withdraw,
            count=count,
            error=str(error),
            note="stored; the next reconcile sends it",
        )

    @property
    def queued_paths(self) -> int:
        """Paths accepted and queued for GoBGP, not yet taken."""
        with self._flight_lock:
            return sum(n for sent, n in self._in_flight if not sent.done())

    def flush(self) -> None:
        """Wait until GoBGP has taken every queued send (tests, shutdown)."""
        self._sender.submit(lambda: None).result()

    # -- reconcile ----------------------------------------------------------------------

    def reconcile(self, reason: str) -> ReconcileResult:
        """Make GoBGP's RIB equal the store. Raises :class:`SidecarError` if unreachable."""
        # Reading a large RIB takes a while: read it without holding the lock, so the
        # API keeps taking changes meanwhile. A change made in between only makes the
        # plan repeat it (announce an announced path: at worst an identical UPDATE;
        # withdraw a withdrawn one: nothing). The plan and its execution are under the
        # lock, so nothing it sends can undo a change made after it was computed.
        actual = self._client.rib()
        foreign = self._client.foreign
        with self._lock:
            desired = {key: _item(i) for key, i in self._intents.items()}
            todo: Plan = plan(desired, actual)
            withdraw = [_withdrawable(key, actual[key]) for key in todo.withdraw_keys]
            gone = [w for w in withdraw if w is not None]
            withdrawn = self._submit(self._client.withdraw, gone) if gone else None
            announced = (
                self._submit(self._client.announce, todo.announce) if todo.announce else None
            )
        for sent in (withdrawn, announced):
            if sent is not None:
                sent.result()  # SidecarError: the caller retries the whole reconcile
        self.last_reconcile = self._clock()
        result = ReconcileResult(len(todo.announce), len(todo.withdraw_keys), foreign)
        if not todo.empty:
            log.info(
                "reconciled",
                reason=reason,
                announced=result.announced,
                withdrawn=result.withdrawn,
                foreign=foreign,
            )
        self._events.publish(
            Event(
                EventKind.RECONCILED,
                subject=reason,
                detail=f"announced {result.announced}, withdrew {result.withdrawn}",
            )
        )
        return result

    # -- events -------------------------------------------------------------------------

    def _publish_announced(self, intent: Intent, how: str) -> None:
        if isinstance(intent, FlowIntent):
            kind, subject = EventKind.FLOW_ANNOUNCED, intent.text
        else:
            kind, subject = EventKind.ROUTE_ANNOUNCED, str(intent.route.prefix)
        self._events.publish(Event(kind, intent.meta.id, subject, how))

    def _publish_withdrawn(self, intent: Intent, expired_: bool) -> None:
        if isinstance(intent, FlowIntent):
            kind = EventKind.FLOW_EXPIRED if expired_ else EventKind.FLOW_WITHDRAWN
            subject = intent.text
        else:
            kind = EventKind.ROUTE_EXPIRED if expired_ else EventKind.ROUTE_WITHDRAWN
            subject = str(intent.route.prefix)
        self._events.publish(Event(kind, intent.meta.id, subject))


def _item(intent: Intent) -> Announceable:
    return intent.rule if isinstance(intent, FlowIntent) else intent.route


def _withdrawable(key: str, actual: Signature) -> Withdrawable | None:
    """What to withdraw for ``key``: the route GoBGP holds, or the match of its NLRI."""
    if isinstance(actual, UnicastRoute):
        return actual
    try:
        return decode_key(key)
    except ValidationError as error:
        log.warning("reconcile.undecodable", key=key, error=str(error))
        return None
