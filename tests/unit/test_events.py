"""Unit tests for trafex.control.events: the EventBus that fans events out to watchers."""

from __future__ import annotations

import queue
import threading

from trafex.control.events import Event, EventBus, EventKind


def drain(subscriber: queue.Queue[Event | None]) -> list[Event | None]:
    """Everything waiting in a subscriber's queue, without blocking."""
    out: list[Event | None] = []
    while True:
        try:
            out.append(subscriber.get_nowait())
        except queue.Empty:
            return out


def numbered(count: int) -> list[Event]:
    return [Event(EventKind.FLOW_ANNOUNCED, id=f"fs-{n}", time=float(n)) for n in range(count)]


def test_event_defaults() -> None:
    """An event has empty id/subject/detail and the current time unless given."""
    event = Event(EventKind.RECONCILED)
    expected = ("", "", "")
    assert expected == (event.id, event.subject, event.detail)
    assert event.time > 0


def test_fan_out_to_every_subscriber() -> None:
    """Every subscriber receives every event, in publication order."""
    bus = EventBus()
    first, second = bus.subscribe(), bus.subscribe()
    events = numbered(5)
    for event in events:
        bus.publish(event)
    expected: list[Event | None] = list(events)
    assert expected == drain(first)
    assert expected == drain(second)


def test_publish_without_subscribers() -> None:
    """Publishing with nobody watching is fine, and a later subscriber sees only later
    events."""
    bus = EventBus()
    before, after = numbered(2)
    bus.publish(before)
    subscriber = bus.subscribe()
    bus.publish(after)
    expected: list[Event | None] = [after]
    assert expected == drain(subscriber)


def test_slow_subscriber_loses_the_oldest_events() -> None:
    """A full queue drops its oldest events to take the newest: a slow watcher sees the
    latest ``capacity`` events, and publish never blocks."""
    bus = EventBus(capacity=3)
    slow = bus.subscribe()
    events = numbered(10)
    for event in events:
        bus.publish(event)
    expected: list[Event | None] = list(events[-3:])
    assert expected == drain(slow)


def test_slow_subscriber_does_not_affect_a_fast_one() -> None:
    """A fast watcher that keeps up loses nothing while a slow one drops events."""
    bus = EventBus(capacity=2)
    slow, fast = bus.subscribe(), bus.subscribe()
    received: list[Event | None] = []
    events = numbered(6)
    for event in events:
        bus.publish(event)
        received += drain(fast)
    assert list(events) == received
    expected: list[Event | None] = list(events[-2:])
    assert expected == drain(slow)


def test_unsubscribe() -> None:
    """An unsubscribed queue receives nothing more; unsubscribing twice is harmless."""
    bus = EventBus()
    subscriber = bus.subscribe()
    bus.unsubscribe(subscriber)
    bus.unsubscribe(subscriber)
    bus.publish(numbered(1)[0])
    bus.close()
    assert not drain(subscriber)


def test_close_sends_none_to_every_subscriber() -> None:
    """close() wakes every watcher with None (end of stream) after its pending events."""
    bus = EventBus()
    first, second = bus.subscribe(), bus.subscribe()
    event = numbered(1)[0]
    bus.publish(event)
    bus.close()
    expected: list[Event | None] = [event, None]
    assert expected == drain(first)
    assert expected == drain(second)


def test_close_wakes_a_blocked_watcher() -> None:
    """A watcher blocked in get() returns None when the bus closes."""
    bus = EventBus()
    subscriber = bus.subscribe()
    got: list[Event | None] = []
    watcher = threading.Thread(target=lambda: got.append(subscriber.get(timeout=10)))
    watcher.start()
    bus.close()
    watcher.join(timeout=10)
    expected: list[Event | None] = [None]
    assert expected == got


def test_close_reaches_a_full_subscriber() -> None:
    """A slow watcher whose queue is full still gets the end-of-stream None (last),
    losing an old event instead, as publish() does; otherwise it drains its events and
    then waits forever."""
    bus = EventBus(capacity=2)
    slow = bus.subscribe()
    events = numbered(2)
    for event in events:
        bus.publish(event)
    bus.close()
    expected: list[Event | None] = [events[1], None]
    assert expected == drain(slow)


def test_concurrent_publishers() -> None:
    """Events published from several threads all arrive (capacity permitting)."""
    bus = EventBus()
    subscriber = bus.subscribe()
    events = numbered(400)

    def publish(part: list[Event]) -> None:
        for event in part:
            bus.publish(event)

    threads = [threading.Thread(target=publish, args=(events[i::4],)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    expected = sorted(e.id for e in events)
    assert expected == sorted(e.id for e in drain(subscriber) if e is not None)


def test_nothing_follows_the_end_of_stream() -> None:
    """After close(), a publish reaches nobody and a new watcher ends at once: no event
    ever waits behind the None that ended a stream."""
    bus = EventBus()
    watcher = bus.subscribe()
    bus.close()
    bus.publish(Event(EventKind.RECONCILED, subject="late"))
    assert watcher.get_nowait() is None
    assert watcher.empty()
    late = bus.subscribe()
    assert late.get_nowait() is None
    assert not bus.watched


def test_watched_tells_whether_anybody_subscribes() -> None:
    bus = EventBus()
    assert not bus.watched
    watcher = bus.subscribe()
    assert bus.watched
    bus.unsubscribe(watcher)
    assert not bus.watched
