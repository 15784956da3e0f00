"""The edge of trafexd's core: applies the change sets that the decisions return.

A change set is written to the store first (one transaction; a change is accepted
once it is stored), then to the in-memory table, then its paths are queued for GoBGP,
then its events are published. Nothing here decides anything.

Sends go through one worker thread, in the order they were queued (the controller
queues under the lock that orders the changes). A caller does not wait for GoBGP: it
gets its answer when its change is stored, and GoBGP takes the paths while the next
caller's change is validated and stored. When the sidecar is known to be down the
change is stored and :class:`NotAnnouncedError` raised; a send that fails later is
logged, counted and left to the reconciler (which runs when the sidecar comes back).
At most ``max_in_flight`` paths (:data:`MAX_IN_FLIGHT`) wait for GoBGP: past that a
caller waits for the oldest sends, so a fast client cannot queue without bound.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent import futures
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Generic, Protocol, TypeVar

import structlog

from trafex.bgp.client import SidecarError, Withdrawable
from trafex.control.changes import ChangeSet
from trafex.control.events import Event, EventBus
from trafex.control.reconcile import Announceable, Plan, Signature
from trafex.control.state import IntentTable
from trafex.control.store import Store

log = structlog.get_logger("trafex.controller")

MAX_IN_FLIGHT = 20_000  # paths queued for GoBGP before callers wait for it

AnswerT = TypeVar("AnswerT")


class PathClient(Protocol):
    """What trafexd needs of GoBGP: :class:`~trafex.bgp.client.GobgpClient` (or a
    fake RIB in the tests)."""

    @property
    def foreign(self) -> int:
        """Paths the last :meth:`walk_rib` saw that trafex cannot model."""

    def announce(self, items: Iterable[Announceable], *, batch_size: int = ...) -> None: ...

    def withdraw(self, items: Iterable[Withdrawable], *, batch_size: int = ...) -> None: ...

    def walk_rib(self) -> Iterator[tuple[str, Signature]]:
        """The paths GoBGP announces for trafex, as (key, signature), streamed."""


class NotAnnouncedError(SidecarError, Generic[AnswerT]):
    """The change is stored but GoBGP cannot take it now (the sidecar is down, or
    trafexd is stopping): "stored, not yet announced". The reconcile after the sidecar
    comes back announces it. ``answer`` is what the caller would have got (the
    change's :attr:`ChangeSet.answer`)."""

    def __init__(self, message: str, answer: AnswerT) -> None:
        super().__init__(message, unavailable=True)
        self.answer = answer


class Sender:
    """GoBGP sends on one worker thread, in the order they were submitted."""

    def __init__(
        self,
        client: PathClient,
        *,
        batch_size: int = 1000,
        max_in_flight: int = MAX_IN_FLIGHT,
        wait: Callable[[list[Future[None]]], object] = futures.wait,
    ) -> None:
        self._client = client
        self._batch = batch_size
        self._max_in_flight = max_in_flight
        self._wait = wait  # how a caller waits for the oldest send (tests observe it)
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gobgp-send")
        self._in_flight: deque[tuple[Future[None], int]] = deque()  # (send, paths), oldest first
        self._in_flight_paths = 0
        self._lock = threading.Lock()
        self.failures = 0  # queued sends that failed after their change was accepted
        self.last_error = ""

    def submit(self, items: Sequence[Withdrawable], *, withdraw: bool) -> Future[None]:
        """One call of the client's withdraw or announce, after those submitted before.
        Raises :class:`SidecarError` once closed (trafexd is stopping)."""
        send: Callable[..., None] = self._client.withdraw if withdraw else self._client.announce
        try:
            return self._worker.submit(send, items, batch_size=self._batch)
        except RuntimeError:  # closed
            raise SidecarError("trafexd is stopping", unavailable=True) from None

    def queue(self, items: Sequence[Withdrawable], *, withdraw: bool) -> None:
        """Submit a change's paths: counted for back-pressure, a failure logged and
        counted (the reconciler repairs it)."""
        sent = self.submit(items, withdraw=withdraw)
        count = len(items)
        sent.add_done_callback(lambda done: self._sent(done, count, withdraw))
        with self._lock:
            self._in_flight.append((sent, count))
            self._in_flight_paths += count

    def throttle(self) -> None:
        """Drop finished sends from the count; while more than ``max_in_flight`` paths
        wait for GoBGP, wait for the oldest (call without the controller's lock)."""
        while True:
            with self._lock:
                while self._in_flight and self._in_flight[0][0].done():
                    self._in_flight_paths -= self._in_flight.popleft()[1]
                if self._in_flight_paths <= self._max_in_flight or not self._in_flight:
                    return
                oldest = self._in_flight[0][0]
            self._wait([oldest])

    def _sent(self, sent: Future[None], count: int, withdraw: bool) -> None:
        error = sent.exception()
        if error is None:
            return
        self.failures += 1
        self.last_error = str(error)
        log.warning(
            "sidecar.send_failed",
            withdraw=withdraw,
            count=count,
            error=str(error),
            note="stored; the next reconcile sends it",
        )

    @property
    def queued_paths(self) -> int:
        """Paths queued and not yet taken by GoBGP."""
        with self._lock:
            return sum(n for sent, n in self._in_flight if not sent.done())

    def flush(self) -> None:
        """Wait until GoBGP has taken every send submitted so far."""
        self._worker.submit(lambda: None).result()

    def close(self) -> None:
        """Finish the submitted sends and stop the worker."""
        self._worker.shutdown(wait=True)


class Executor:
    """Applies change sets to the store, the table, GoBGP (through the sender) and
    the event bus, in that order."""

    def __init__(
        self,
        store: Store,
        table: IntentTable,
        sender: Sender,
        events: EventBus,
        sidecar_up: Callable[[], bool],
    ) -> None:
        self._store = store
        self._table = table
        self._sender = sender
        self._events = events
        self._sidecar_up = sidecar_up

    def commit(self, changes: ChangeSet[AnswerT]) -> None:
        """Store the change, hold it, queue its paths. Call with the controller's lock
        held: the queue's order is the order of the changes.

        Raises :class:`~trafex.control.store.StoreError` with nothing changed, or
        :class:`NotAnnouncedError` once stored when GoBGP cannot take it.
        """
        if changes.writes:
            self._store.upsert(changes.writes)
        if changes.deletes:
            self._store.delete(i.meta.id for i in changes.deletes)
        self._table.apply(changes.writes, changes.deletes)
        try:
            self._queue(changes.withdraw, withdraw=True)
            self._queue(changes.announce, withdraw=False)
        except SidecarError as error:
            raise NotAnnouncedError(str(error), changes.answer) from None

    def _queue(self, items: Sequence[Withdrawable], *, withdraw: bool) -> None:
        if not items:
            return
        if not self._sidecar_up():
            raise SidecarError("gobgpd is down", unavailable=True)
        self._sender.queue(items, withdraw=withdraw)

    def settle(self, changes: ChangeSet[Any]) -> None:
        """After a commit, without the lock: wait while too much waits for GoBGP, then
        publish the change's events."""
        self._sender.throttle()
        self.publish(changes.events)

    def send(self, todo: Plan) -> list[Future[None]]:
        """Send a reconcile plan, withdrawals first (call with the controller's lock
        held, so nothing it sends can undo a change made after it was computed). Not
        counted for back-pressure: the reconciler waits for these itself."""
        sent: list[Future[None]] = []
        if todo.extra:
            sent.append(self._sender.submit(todo.extra, withdraw=True))
        if todo.announce:
            sent.append(self._sender.submit(todo.announce, withdraw=False))
        return sent

    def publish(self, events: Iterable[Event]) -> None:
        for event in events:
            self._events.publish(event)
