"""The stored intents held in memory: by key, by id and by expiry. No I/O.

The table mirrors the store (the executor changes both, store first) and is what the
decision functions read. It is not thread-safe: the controller's lock guards it.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterable, Mapping

from trafex.model.flowspec import FlowRule
from trafex.model.intent import FlowIntent, Intent, RouteIntent
from trafex.model.route import UnicastRoute


def item_of(intent: Intent) -> FlowRule | UnicastRoute:
    """What an intent puts on the wire: its rule or its route."""
    return intent.rule if isinstance(intent, FlowIntent) else intent.route


def kind_of(intent: Intent) -> str:
    """``"rule"`` (FlowSpec) or ``"route"`` (unicast): what the caps count."""
    return "rule" if isinstance(intent, FlowIntent) else "route"


class IntentTable:
    """Intents by key (their canonical NLRI), by id, and by expiry time."""

    def __init__(self, intents: Iterable[Intent] = ()) -> None:
        self._by_key: dict[str, Intent] = {}
        self._ids: dict[str, str] = {}  # id → key
        # (expires_at, key) of every intent with a TTL, soonest first. An entry whose
        # intent is gone or has another expiry now is stale: skipped by due(), popped
        # by tidy() once its time has come. Finding what expires then costs what
        # expires, not a scan of every intent each second.
        self._expiries: list[tuple[float, str]] = []
        # Intents by kind and by (kind, origin), kept as they change: the caps read
        # them on every add, so they never cost a scan.
        self._kinds: Counter[str] = Counter()
        self._origins: Counter[tuple[str, str]] = Counter()
        self.apply(intents, ())

    # -- reads --------------------------------------------------------------------------

    @property
    def intents(self) -> Mapping[str, Intent]:
        """Every intent by key (read it with the lock held; do not keep it)."""
        return self._by_key

    def get(self, key: str) -> Intent | None:
        return self._by_key.get(key)

    def find(self, ident: str) -> Intent | None:
        """The intent with id ``ident``."""
        key = self._ids.get(ident)
        return None if key is None else self._by_key[key]

    def flows(self) -> list[FlowIntent]:
        return [i for i in self._by_key.values() if isinstance(i, FlowIntent)]

    def routes(self) -> list[RouteIntent]:
        return [i for i in self._by_key.values() if isinstance(i, RouteIntent)]

    def counts(self) -> tuple[int, int]:
        """(FlowSpec rules, routes)."""
        return self._kinds["rule"], self._kinds["route"]

    def count(self, kind: str, origin: str | None = None) -> int:
        """How many intents of ``kind`` (:func:`kind_of`) are held, from ``origin``
        (None: from every origin)."""
        if origin is None:
            return self._kinds[kind]
        return self._origins[(kind, origin)]

    def item(self, key: str) -> FlowRule | UnicastRoute | None:
        """What the intent of ``key`` puts on the wire, if one is held."""
        intent = self._by_key.get(key)
        return None if intent is None else item_of(intent)

    def by_origin(self) -> dict[tuple[str, str], int]:
        """How many intents are held by ``(kind, origin)``, those with any (kept as
        intents change: no scan)."""
        return {group: count for group, count in self._origins.items() if count}

    def desired(self) -> dict[str, FlowRule | UnicastRoute]:
        """What GoBGP should hold: each intent's rule or route, by key."""
        return {key: item_of(intent) for key, intent in self._by_key.items()}

    def due(self, now: float) -> list[Intent]:
        """The intents whose expiry has passed, soonest first. Changes nothing: it walks
        only the part of the heap at or before ``now`` (a parent is never later than
        its children)."""
        heap, size = self._expiries, len(self._expiries)
        hits: list[tuple[float, str]] = []
        todo = [0] if heap and heap[0][0] <= now else []
        while todo:
            index = todo.pop()
            entry = heap[index]
            intent = self._by_key.get(entry[1])
            if intent is not None and intent.meta.expires_at == entry[0]:
                hits.append(entry)
            for child in (2 * index + 1, 2 * index + 2):
                if child < size and heap[child][0] <= now:
                    todo.append(child)
        hits.sort()
        return [self._by_key[key] for key in dict.fromkeys(key for _when, key in hits)]

    # -- changes (the executor's, after the store took them) ----------------------------

    def apply(self, writes: Iterable[Intent], deletes: Iterable[Intent]) -> None:
        """Hold ``writes`` (new or replacing the intent of their key), forget ``deletes``."""
        for intent in writes:
            key = intent.key
            replaced = self._by_key.get(key)
            if replaced is not None:
                self._tally(replaced, -1)
            self._tally(intent, 1)
            self._by_key[key] = intent
            self._ids[intent.meta.id] = key
            if intent.meta.expires_at is not None:
                heapq.heappush(self._expiries, (intent.meta.expires_at, key))
        for intent in deletes:
            held_key = self._ids.get(intent.meta.id)  # the key, without building it again
            if held_key is None:
                continue
            held = self._by_key[held_key]
            if held is intent or held == intent:
                del self._by_key[held_key]
                del self._ids[intent.meta.id]
                self._tally(held, -1)

    def _tally(self, intent: Intent, step: int) -> None:
        kind, origins = kind_of(intent), self._origins
        self._kinds[kind] += step
        pair = (kind, intent.meta.origin)
        origins[pair] += step
        if not origins[pair]:
            del origins[pair]  # origins come and go: keep only those holding intents

    def tidy(self, now: float) -> None:
        """Pop the expiry entries at or before ``now`` that no longer count (their
        intent is gone, or expires at another time now): after each expiry run, as
        the entries of what it withdrew are among them."""
        heap = self._expiries
        while heap and heap[0][0] <= now:
            when, key = heap[0]
            intent = self._by_key.get(key)
            if intent is not None and intent.meta.expires_at == when:
                return  # still due: the store could not take its removal
            heapq.heappop(heap)
