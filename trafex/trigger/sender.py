"""Send the policy's intents to trafexd over its gRPC API, off the packet loop.

:class:`Sender` makes the calls (``AddRoute`` per route, ``AddFlows`` for the rules of
one detection, so both directions of a flow cost one round trip), each with a short
deadline. :class:`BackgroundSender` runs a Sender in one thread behind a bounded queue:
the packet loop only enqueues, and never waits for the network; when the queue is
full the intents are dropped and counted. Detections of flows queued while a call is
under way are sent together: their rules in one ``AddFlows``.

Failures never stop the sensor. Each kind (controller unreachable, no answer within
the deadline, stored but not announced, another status) prints one line on stderr the
first time it happens, and again only after the controller has answered in between;
an intent trafexd refuses (``INVALID_ARGUMENT``) prints its text and trafexd's reason.

Latency is measured per intent, from ``started`` (the triggering packet's kernel
timestamp on a live interface, the time the packet was handled for a capture file;
wall-clock seconds) to the moment trafexd's answer came back.
"""

from __future__ import annotations

import functools
import math
import queue
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TextIO

from trafex.api.client import (
    Added,
    ApiError,
    DeadlineError,
    IntentOptions,
    NotAnnouncedError,
    PreconditionError,
    RefusedError,
    UnreachableError,
)
from trafex.api.credentials import Credentials
from trafex.model.flowspec import FlowRule
from trafex.model.route import UnicastRoute
from trafex.trigger.intent import TriggerIntent

MAX_SAMPLES = 1_000_000  # latency samples kept (beyond that, the first ones)
MAX_COALESCED = 100  # queued detections sent together, at most


def percentile(samples: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of ``samples`` (sorted or not); 0.0 when empty."""
    if not samples:
        return 0.0
    ordered = sorted(samples)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


@dataclass(slots=True)
class SendStats:
    sent: int = 0  # intents trafexd accepted
    unannounced: int = 0  # of ``sent``: stored by trafexd, its sidecar down
    dry_run: int = 0  # of ``sent``: trafexd's [guard] dry_run: checked, not stored
    failed: int = 0  # refused, unreachable, timed out
    dropped: int = 0  # queue full, or still queued when the sensor stopped
    failures: dict[str, int] = field(default_factory=dict)  # failed, per kind
    latencies: list[float] = field(default_factory=list)  # seconds, per accepted intent

    def latency_ms(self) -> tuple[float, float, float]:
        """(p50, p99, max) in milliseconds."""
        lat = self.latencies
        if not lat:
            return (0.0, 0.0, 0.0)
        return (percentile(lat, 0.5) * 1e3, percentile(lat, 0.99) * 1e3, max(lat) * 1e3)


def _options(intent: TriggerIntent) -> IntentOptions:
    return IntentOptions(ttl=intent.ttl, reason=intent.reason, origin=intent.origin)


class Sender:
    """Synchronous calls to trafexd at ``target`` (``HOST:PORT``), presenting
    ``credentials`` (TLS, a token) when trafexd's API asks for them."""

    def __init__(
        self,
        target: str,
        *,
        timeout: float = 0.5,
        err: TextIO | None = None,
        clock: Callable[[], float] = time.time,
        credentials: Credentials | None = None,
    ) -> None:
        self.target = target
        self.timeout = timeout
        self.err = err if err is not None else sys.stderr
        self.clock = clock
        self.stats = SendStats()
        self.client = (credentials or Credentials()).client(target, timeout=timeout)
        self._reported: set[str] = set()

    def connect(self, timeout: float = 2.0) -> bool:
        """Open the connection now, so the first intent does not pay for it."""
        if not self.client.connect(timeout):
            self._report(
                "unreachable",
                f"controller {self.target} unreachable (no connection within {timeout:g} s); "
                "intents fail until it answers, the sensor keeps running",
            )
            return False
        return True

    def close(self) -> None:
        self.client.close()

    def send(self, intents: Sequence[TriggerIntent], started: float) -> None:
        """Send one detection's intents: its rules in one ``AddFlows``, routes one by one."""
        self.send_many([(intents, started)])

    def send_many(self, jobs: Sequence[tuple[Sequence[TriggerIntent], float]]) -> None:
        """Send several detections' intents (each with its triggering time): all their
        rules in one ``AddFlows``, routes one by one."""
        every = [(i, started) for intents, started in jobs for i in intents]
        flows = [(i, started) for i, started in every if isinstance(i.item, FlowRule)]
        routes = [(i, started) for i, started in every if isinstance(i.item, UnicastRoute)]
        if flows:
            self._send_flows(flows)
        for intent, started in routes:
            assert isinstance(intent.item, UnicastRoute)
            add = functools.partial(self.client.add_route, intent.item, _options(intent))
            self._call(add, [intent], [started])

    def _send_flows(self, flows: list[tuple[TriggerIntent, float]]) -> None:
        items = []
        for intent, _ in flows:
            assert isinstance(intent.item, FlowRule)
            items.append((intent.item, _options(intent)))
        intents = [intent for intent, _ in flows]
        started = [started for _, started in flows]
        if len(items) == 1:
            self._call(functools.partial(self.client.add_flow, *items[0]), intents, started)
            return
        add_all = functools.partial(self.client.add_flows, items)
        if self._call(add_all, intents, started, batch=True):
            # None stored: send them one by one to name the bad one, keep the good.
            for (intent, when), item in zip(flows, items, strict=True):
                self._call(functools.partial(self.client.add_flow, *item), [intent], [when])

    def _call(
        self,
        call: Callable[[], object],
        intents: list[TriggerIntent],
        started: list[float],
        *,
        batch: bool = False,
    ) -> bool:
        """Make one call for ``intents`` (triggered at ``started``, one time each);
        returns True when trafexd refused a batch."""
        count = len(intents)
        try:
            answer = call()
        except NotAnnouncedError as error:  # stored: accepted, announced later
            self._accepted(started)
            self.stats.unannounced += count
            self._report(
                "unannounced", f"trafexd stored the intents, not yet announced: {error.reason}"
            )
            return False
        except (RefusedError, PreconditionError) as error:
            # A bad rule, or one a guard refuses (too broad, protected, a cap): in a
            # batch none was stored, so the caller sends them one by one.
            if batch:
                return True
            guard = error.guard if isinstance(error, PreconditionError) else None
            self._failed("guard" if guard else "refused", count)
            print(
                f"trafex detect: trafexd refused intent {intents[0].text()!r}: {error.details}",
                file=self.err,
                flush=True,
            )
            return False
        except ApiError as error:
            self._failed(_kind(error), count)
            self._report(_kind(error), self._failure_text(error))
            return False
        self._accepted(started)
        if _dry_run(answer):
            self.stats.dry_run += count
            self._report("dry_run", "trafexd is in dry run ([guard] dry_run): nothing is stored")
        if self._reported - {"unannounced", "dry_run"}:
            print(f"trafex detect: controller {self.target} answers again", file=self.err)
        self._reported &= {"dry_run"}  # said once: a dry run is the config, not an event
        return False

    def _accepted(self, started: list[float]) -> None:
        stats = self.stats
        stats.sent += len(started)
        if len(stats.latencies) < MAX_SAMPLES:
            now = self.clock()
            stats.latencies.extend(now - t for t in started)

    def fail_all(self, intents: Sequence[TriggerIntent], error: Exception) -> None:
        """Count intents that could not be sent at all (not a gRPC status)."""
        self._failed("error", len(intents))
        self._report("error", f"cannot send to {self.target}: {type(error).__name__}: {error}")

    def _failed(self, kind: str, count: int) -> None:
        self.stats.failed += count
        self.stats.failures[kind] = self.stats.failures.get(kind, 0) + count

    def _failure_text(self, error: ApiError) -> str:
        if isinstance(error, UnreachableError):
            return (
                f"controller {self.target} unreachable ({error.details}); "
                "intents fail until it answers, the sensor keeps running"
            )
        if isinstance(error, DeadlineError):
            return f"controller {self.target} did not answer within {self.timeout:g} s"
        return f"controller {self.target} answered {error.code}: {error.details}"

    def _report(self, kind: str, text: str) -> None:
        if kind in self._reported:
            return
        self._reported.add(kind)
        print(f"trafex detect: {text}", file=self.err, flush=True)


def _dry_run(answer: object) -> bool:
    """Whether trafexd's answer (an Added, or a list of them) is a dry run's."""
    first = answer[0] if isinstance(answer, list) and answer else answer
    return isinstance(first, Added) and first.dry_run


def _kind(error: ApiError) -> str:
    if isinstance(error, UnreachableError):
        return "unreachable"
    if isinstance(error, DeadlineError):
        return "timeout"
    return error.code.lower()


_Job = tuple[tuple[TriggerIntent, ...], float]


def _flows_only(job: _Job) -> bool:
    return all(isinstance(intent.item, FlowRule) for intent in job[0])


class BackgroundSender:
    """A :class:`Sender` in its own thread behind a queue of ``queue_size`` detections.

    The packet loop holds the GIL almost all the time, and CPython hands it to a waiting
    thread only after the switch interval (5 ms by default); one call to trafexd waits
    for it several times, which cost tens of milliseconds per intent in
    ``bench/bench_trigger.py``. While the sender runs, the interval is
    ``switch_interval`` (0.1 ms); it matters only while the sender wants the GIL, the
    packet loop alone never switches. :meth:`close` restores the previous interval.
    """

    def __init__(
        self, sender: Sender, queue_size: int = 1000, *, switch_interval: float | None = 1e-4
    ) -> None:
        self.sender = sender
        self.stats = sender.stats
        self._queue: queue.Queue[_Job | None] = queue.Queue(maxsize=queue_size)
        self._thread = threading.Thread(target=self._run, name="trafex-sender", daemon=True)
        self._full_reported = False
        self._switch_interval = switch_interval
        self._previous_interval: float | None = None

    def start(self) -> BackgroundSender:
        if self._switch_interval is not None:
            self._previous_interval = sys.getswitchinterval()
            sys.setswitchinterval(self._switch_interval)
        self._thread.start()
        return self

    def submit(self, intents: Sequence[TriggerIntent], started: float) -> bool:
        """Queue one detection's intents; never blocks. False: dropped (queue full)."""
        try:
            self._queue.put_nowait((tuple(intents), started))
        except queue.Full:
            self.stats.dropped += len(intents)
            if not self._full_reported:
                self._full_reported = True
                print(
                    f"trafex detect: {self._queue.maxsize} detections wait for the controller; "
                    "intents beyond that are dropped (counted)",
                    file=self.sender.err,
                    flush=True,
                )
            return False
        return True

    def _run(self) -> None:
        get, get_nowait = self._queue.get, self._queue.get_nowait
        send = self.sender.send_many
        carried: list[_Job | None] = []  # taken from the queue, not sent yet
        while True:
            job = carried.pop() if carried else get()
            if job is None:
                return
            jobs = [job]
            # Detections of flows queued meanwhile go in the same AddFlows (found
            # together, e.g. in one batch of a capture file, they do not wait for each
            # other's call); a detection with routes is sent on its own.
            while _flows_only(jobs[-1]) and len(jobs) < MAX_COALESCED:
                try:
                    more = get_nowait()
                except queue.Empty:
                    break
                if more is None or not _flows_only(more):
                    carried.append(more)
                    break
                jobs.append(more)
            try:
                send(jobs)
            except Exception as error:  # a closed channel, a bug: count it, keep going
                self.sender.fail_all([i for intents, _ in jobs for i in intents], error)

    def close(self, timeout: float = 5.0) -> None:
        """Send what is queued (for at most ``timeout`` seconds), then stop the thread.

        What is still queued after that is counted as dropped.
        """
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._queue.put(None, timeout=max(0.01, deadline - time.monotonic()))
                break
            except queue.Full:
                if time.monotonic() >= deadline:
                    break
        self._thread.join(max(0.0, deadline - time.monotonic()))
        if self._thread.is_alive():
            while True:
                try:
                    job = self._queue.get_nowait()
                except queue.Empty:
                    break
                if job is not None:
                    self.stats.dropped += len(job[0])
            self._queue.put_nowait(None)  # the thread ends after its current call
        if self._previous_interval is not None:
            sys.setswitchinterval(self._previous_interval)
            self._previous_interval = None
        self.sender.close()
