"""trafexd's events (rule announced, withdrawn, expired, peer up/down, ...) and their bus."""

from __future__ import annotations

import contextlib
import enum
import queue
import threading
import time
from dataclasses import dataclass, field


class EventKind(enum.Enum):
    FLOW_ANNOUNCED = "flow-announced"
    FLOW_WITHDRAWN = "flow-withdrawn"
    FLOW_EXPIRED = "flow-expired"
    ROUTE_ANNOUNCED = "route-announced"
    ROUTE_WITHDRAWN = "route-withdrawn"
    ROUTE_EXPIRED = "route-expired"
    PEER_UP = "peer-up"
    PEER_DOWN = "peer-down"
    SIDECAR_UP = "sidecar-up"
    SIDECAR_DOWN = "sidecar-down"
    RECONCILED = "reconciled"


@dataclass(frozen=True, slots=True)
class Event:
    kind: EventKind
    id: str = ""
    subject: str = ""
    detail: str = ""
    time: float = field(default_factory=time.time)


class EventBus:
    """Fan-out to watchers. A slow watcher loses its oldest events, never blocks trafexd."""

    def __init__(self, capacity: int = 10_000) -> None:
        self._capacity = capacity
        self._lock = threading.Lock()
        self._subscribers: list[queue.Queue[Event | None]] = []
        self._closed = False

    @property
    def watched(self) -> bool:
        """True while somebody subscribes: events need not be built otherwise."""
        return bool(self._subscribers)

    def publish(self, event: Event) -> None:
        with self._lock:
            subscribers = list(self._subscribers)
        for subscriber in subscribers:
            _offer(subscriber, event)

    def subscribe(self) -> queue.Queue[Event | None]:
        subscriber: queue.Queue[Event | None] = queue.Queue(self._capacity)
        with self._lock:
            if self._closed:
                subscriber.put(None)  # the stream has already ended
            else:
                self._subscribers.append(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: queue.Queue[Event | None]) -> None:
        with self._lock:
            if subscriber in self._subscribers:
                self._subscribers.remove(subscriber)

    def close(self) -> None:
        """Wake every watcher with ``None`` (end of stream), last in its queue.

        A full queue loses its oldest event to make room, as in :meth:`publish`: a
        watcher that never saw the end of stream would wait for events forever.
        """
        with self._lock:
            subscribers, self._subscribers = self._subscribers, []
            self._closed = True  # later events have nobody to go to
        for subscriber in subscribers:
            _offer(subscriber, None)


def _offer(subscriber: queue.Queue[Event | None], item: Event | None) -> None:
    """Put ``item`` without blocking, dropping the oldest items while the queue is full."""
    while True:
        try:
            subscriber.put_nowait(item)
            return
        except queue.Full:
            with contextlib.suppress(queue.Empty):
                subscriber.get_nowait()
