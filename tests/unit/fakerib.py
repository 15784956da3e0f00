"""Fakes of trafexd's edges for unit tests: GoBGP's global RIB, and a clock.

:class:`FakeRib` stands where :class:`~trafex.bgp.client.GobgpClient` does (it is a
:class:`~trafex.control.executor.PathClient`). Like faucet's ``clib/fakeoftable.py``
for a switch's table, it applies what trafexd sends as gobgpd does (an announce of an
NLRI it holds replaces that path; a withdraw of one it lacks does nothing) and answers
:meth:`FakeRib.rib` keyed as ``GobgpClient.rib`` is, so a test asserts on what GoBGP
would hold rather than on the calls made. It can hold paths trafex cannot model
(foreign ones), fail sends or reads on demand, hold sends until released, and restart
(forget everything, as gobgpd does: it keeps injected paths in memory only).

Imported as ``tests.unit.fakerib``: run pytest from the repository's root with
``python -m pytest`` (as ``make test`` does).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trafex.bgp.client import SidecarError, Withdrawable
from trafex.control.controller import Controller
from trafex.control.events import EventBus
from trafex.control.reconcile import Announceable, Signature, signature
from trafex.control.store import Store


class FakeRib:
    """gobgpd's global RIB of locally originated paths, in memory."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._paths: dict[str, Signature] = {}  # key → signature, as GobgpClient.rib()
        self._foreign: set[str] = set()  # paths held that trafex cannot model
        self.foreign = 0  # foreign paths seen by the last rib(), as GobgpClient.foreign
        self.log: list[tuple[str, str]] = []  # (announce|withdraw, key) of each path taken
        self.reads = 0  # rib() calls answered
        self.gate: threading.Event | None = None  # when set: each send waits for it
        self.sending = threading.Event()  # set once a send has started
        self.fail: SidecarError | None = None  # raised by every send while set
        self.down = False  # unreachable: sends and reads fail as unavailable

    # -- the client's side --------------------------------------------------------------

    def announce(self, items: Iterable[Announceable], *, batch_size: int = 1000) -> None:
        """Add each path, replacing the one of the same NLRI."""
        self._arrive("announce")
        with self._lock:
            for item in items:
                self.log.append(("announce", item.key))
                self._paths[item.key] = signature(item)

    def withdraw(self, items: Iterable[Withdrawable], *, batch_size: int = 1000) -> None:
        """Remove the path of each NLRI (whatever its attributes)."""
        self._arrive("withdraw")
        with self._lock:
            for item in items:
                self.log.append(("withdraw", item.key))
                self._paths.pop(item.key, None)

    def rib(self) -> dict[str, Signature]:
        """What GoBGP announces on trafex's behalf, by key; counts the foreign paths."""
        self._reachable("ListPath")
        with self._lock:
            self.reads += 1
            self.foreign = len(self._foreign)
            return dict(self._paths)

    def walk_rib(self) -> Iterator[tuple[str, Signature]]:
        """:meth:`rib`, streamed as :meth:`GobgpClient.walk_rib` streams it. The paths
        are those held when the walk starts (gobgpd's ListPath also walks a snapshot
        of its table)."""
        yield from self.rib().items()

    def _arrive(self, action: str) -> None:
        """A send starts: held while the gate is closed, then refused or taken."""
        self.sending.set()
        if self.gate is not None and not self.gate.wait(10):
            raise AssertionError("a send was held for 10 s: the test never released it")
        self._reachable(action)
        if self.fail is not None:
            raise self.fail

    def _reachable(self, action: str) -> None:
        if self.down:
            raise SidecarError(f"gobgpd is unreachable ({action}): fake", unavailable=True)

    # -- the test's side ----------------------------------------------------------------

    @property
    def paths(self) -> dict[str, Signature]:
        """What the RIB holds now (trafex's paths, not the foreign ones)."""
        with self._lock:
            return dict(self._paths)

    @property
    def foreign_paths(self) -> set[str]:
        with self._lock:
            return set(self._foreign)

    def add_foreign(self, name: str) -> None:
        """A path trafex cannot model (added with the gobgp CLI, say)."""
        with self._lock:
            self._foreign.add(name)

    def restart(self) -> None:
        """gobgpd restarted: every path is gone."""
        with self._lock:
            self._paths.clear()
            self._foreign.clear()


def holding(*items: Announceable) -> dict[str, Signature]:
    """What a RIB holding exactly ``items`` answers."""
    return {item.key: signature(item) for item in items}


class Clock:
    """The controller's clock, moved by hand."""

    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class Rig:
    """A controller on a real store (in a temp dir), a fake RIB and a hand clock."""

    controller: Controller
    rib: FakeRib
    clock: Clock
    store: Store
    events: EventBus


@contextmanager
def rig(
    directory: Path, *, rib: FakeRib | None = None, store: Store | None = None, **options: Any
) -> Iterator[Rig]:
    """A :class:`Rig` with its store in ``directory`` (or ``store``); ``options`` go to
    :class:`Controller`. Closed (sends finished, store closed) on the way out."""
    rib = rib if rib is not None else FakeRib()
    clock, events = Clock(), EventBus()
    store = store if store is not None else Store(directory)
    controller = Controller(store, rib, events, clock=clock, **options)
    try:
        yield Rig(controller, rib, clock, store, events)
    finally:
        controller.close()
        store.close()
