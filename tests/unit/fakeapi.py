"""trafexd's real API over a fake controller, in process, for unit tests of its clients.

:class:`FakeController` is what :class:`~trafex.api.servicer.TrafexServicer` needs of
the controller, kept in memory: it records each change, can fail one (``fail`` returns
the exception the controller would raise), and can hold each change until released
(``gate``; ``entered`` tells that a change has reached it). :func:`serve` runs the real
servicer over a controller on a loopback port: the one fake servicer of the tests.

Imported as ``tests.unit.fakeapi``: run pytest from the repository's root with
``python -m pytest`` (as ``make test`` does).
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from trafex.api.server import ApiServer
from trafex.api.servicer import IntentController, TrafexServicer
from trafex.bgp.client import PeerInfo
from trafex.control.controller import IntentOptions, NotFoundError
from trafex.control.events import EventBus
from trafex.control.status import SidecarStatus, Status
from trafex.model.flowspec import FlowRule
from trafex.model.intent import FlowIntent, Intent, IntentMeta, RouteIntent, new_id
from trafex.model.route import UnicastRoute

Item = FlowRule | UnicastRoute
ControllerT = TypeVar("ControllerT", bound=IntentController)

STATUS = Status(
    version="0.1.0",
    asn=65010,
    router_id="192.0.2.10",
    flows=1,
    routes=2,
    last_reconcile=1_700_000_000.0,
    sidecar=SidecarStatus(
        healthy=True,
        api="127.0.0.1:50051",
        version="3.25.0",
        managed=True,
        pid=4242,
        restarts=1,
        error="",
        send_failures=3,
        last_send_error="gobgpd said no",
        queued_paths=7,
    ),
    peers=(
        PeerInfo("3001:2:e10a::2", 65000, "established", ("ipv6-unicast",), 0, 2, 1_699_999_000.0),
        PeerInfo("192.0.2.2", 65001, "active", ("ipv4-flowspec",), 0, 0, None),
    ),
)


class FakeController:
    """The controller's side of the API in memory; times are 1, 2, 3, ... per change."""

    def __init__(self) -> None:
        self.changes: list[
            tuple[str, list[Any]]
        ] = []  # ("add", [(item, options)]) | ("remove", [intent])
        self.fail: Callable[[Sequence[Any]], Exception | None] = lambda items: None
        self.gate: threading.Event | None = None
        self.entered = threading.Event()
        self._intents: dict[str, Intent] = {}
        self._clock = itertools.count(1)
        self._lock = threading.Lock()

    def _change(self, action: str, items: Sequence[Any]) -> None:
        self.entered.set()
        if self.gate is not None:
            assert self.gate.wait(10), "the test never released the gate"
        with self._lock:
            self.changes.append((action, list(items)))
        error = self.fail(items)
        if error is not None:
            raise error

    def add(self, items: Sequence[tuple[Item, IntentOptions]]) -> list[tuple[Intent, bool]]:
        self._change("add", items)
        results: list[tuple[Intent, bool]] = []
        with self._lock:
            for item, options in items:
                existing = self._intents.get(item.key)
                now = float(next(self._clock))
                meta = IntentMeta(
                    id=existing.meta.id if existing else new_id(_kind(item)),
                    reason=options.reason,
                    origin=options.origin,
                    created_at=existing.meta.created_at if existing else now,
                    updated_at=now,
                    expires_at=now + options.ttl if options.ttl else None,
                )
                intent: Intent = (
                    FlowIntent(meta, item)
                    if isinstance(item, FlowRule)
                    else RouteIntent(meta, item)
                )
                self._intents[item.key] = intent
                results.append((intent, existing is None))
        return results

    def remove(self, intents: Iterable[Intent]) -> list[Intent]:
        chosen = list(intents)
        self._change("remove", chosen)
        with self._lock:
            gone = [i for i in chosen if self._intents.get(i.key) is i]
            for intent in gone:
                del self._intents[intent.key]
        return gone

    def remove_ids(self, ids: Iterable[str]) -> tuple[list[Intent], list[str]]:
        found, missing = [], []
        for ident in ids:
            try:
                found.append(self.by_id(ident))
            except NotFoundError:
                missing.append(ident)
        return self.remove(found), missing

    def by_id(self, ident: str) -> Intent:
        with self._lock:
            for intent in self._intents.values():
                if intent.meta.id == ident:
                    return intent
        raise NotFoundError(f"no intent with id {ident!r}")

    def by_key(self, key: str) -> Intent:
        with self._lock:
            if key in self._intents:
                return self._intents[key]
        raise NotFoundError("no rule or route with that match")

    def flows(self) -> list[FlowIntent]:
        with self._lock:
            return [i for i in self._intents.values() if isinstance(i, FlowIntent)]

    def routes(self) -> list[RouteIntent]:
        with self._lock:
            return [i for i in self._intents.values() if isinstance(i, RouteIntent)]

    def holding(self, *items: Item) -> list[Intent]:
        """Store ``items`` as if added earlier (not recorded as a change)."""
        intents = [intent for intent, _ in self.add([(item, IntentOptions()) for item in items])]
        self.changes.clear()
        return intents


def _kind(item: Item) -> str:
    return "fs" if isinstance(item, FlowRule) else "rt"


@dataclass
class Api(Generic[ControllerT]):
    controller: ControllerT
    events: EventBus
    target: str  # HOST:PORT of the API


@contextmanager
def serve(
    controller: ControllerT, *, port: int = 0, status: Status = STATUS
) -> Iterator[Api[ControllerT]]:
    """The real servicer over ``controller`` on ``127.0.0.1:port`` (0: a free port);
    GetStatus answers ``status``. Stopped (and its event stream ended) on the way out."""
    events = EventBus()
    servicer = TrafexServicer(controller, events, lambda: status)
    server = ApiServer(servicer, f"127.0.0.1:{port}", workers=4).start()
    try:
        yield Api(controller, events, f"127.0.0.1:{server.port}")
    finally:
        events.close()
        server.stop(None)
