"""The reconciler's decisions: what to announce and what to withdraw. Pure.

Desired state (the store) and actual state (GoBGP's RIB, as
:meth:`~trafex.bgp.client.GobgpClient.rib` reads it) are both maps from an intent's
key to what is on the wire for it: the rule or route, and its signature (the actions
of a FlowSpec rule, or the whole route). The plan makes the RIB equal the store; only
the executor, through the GoBGP client, carries it out.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from trafex.bgp.client import Withdrawable
from trafex.control.events import Event, EventKind
from trafex.model.errors import ValidationError
from trafex.model.flowspec import FlowActions, FlowRule
from trafex.model.nlri import decode_key
from trafex.model.route import UnicastRoute

Announceable = FlowRule | UnicastRoute
Signature = FlowActions | UnicastRoute | None


def signature(item: Announceable) -> Signature:
    return item.actions if isinstance(item, FlowRule) else item


@dataclass(frozen=True, slots=True)
class Plan:
    """What makes the RIB equal the store."""

    missing: tuple[Announceable, ...] = ()  # stored, absent from the RIB: announce
    changed: tuple[Announceable, ...] = ()  # in the RIB with other actions: announce again
    extra: tuple[Withdrawable, ...] = ()  # in the RIB, not stored: withdraw
    # Extra keys that name no path trafex can build, with why: logged, left alone.
    undecodable: tuple[tuple[str, str], ...] = ()

    @property
    def announce(self) -> tuple[Announceable, ...]:
        return self.missing + self.changed

    @property
    def withdrawn(self) -> int:
        """How many RIB keys nobody asked for."""
        return len(self.extra) + len(self.undecodable)

    @property
    def empty(self) -> bool:
        return not self.missing and not self.changed and not self.withdrawn


@dataclass(frozen=True, slots=True)
class ReconcileResult:
    announced: int
    withdrawn: int
    foreign: int  # paths in the RIB that trafex cannot model: left alone


class PlanBuilder:
    """A plan built while the RIB streams in, one path at a time: nothing of the RIB
    is kept but the plan itself (at 100,000 rules, a copy of the RIB is some 100,000
    short-lived objects per reconcile, and the allocator's arenas they leave behind
    made trafexd grow under churn).

    ``unseen`` is the store's rules and routes by key, taken before the RIB is read,
    and becomes the builder's: each key the RIB holds is taken out of it, so what is
    left at the end is what the RIB lacks (no second set of keys is built).
    :meth:`finish` checks the plan against the store as it is then, so a change made
    while the RIB streamed in is neither undone nor repeated.
    """

    __slots__ = ("_changed", "_extra", "_undecodable", "_unseen")

    def __init__(self, unseen: dict[str, Announceable]) -> None:
        self._unseen = unseen
        self._changed: list[Announceable] = []
        self._extra: list[Withdrawable] = []
        self._undecodable: list[tuple[str, str]] = []

    def see(self, key: str, held: Signature) -> None:
        """One path of the RIB: its key and what it carries."""
        item = self._unseen.pop(key, None)
        if item is not None:
            if held != signature(item):
                self._changed.append(item)
        elif isinstance(held, UnicastRoute):
            self._extra.append(held)  # a route is withdrawn as itself
        else:
            try:
                self._extra.append(decode_key(key))  # a rule by the match its key encodes
            except ValidationError as error:
                self._undecodable.append((key, str(error)))

    def finish(self, current: Callable[[str], Announceable | None] | None = None) -> Plan:
        """The plan. With ``current`` (a key's item in the store now, or None), only
        what still holds: an item announced if the store still has that very item, a
        key withdrawn if the store still lacks it."""
        missing = list(self._unseen.values())
        changed, extra = self._changed, self._extra
        if current is not None:
            missing = [item for item in missing if current(item.key) is item]
            changed = [item for item in changed if current(item.key) is item]
            extra = [item for item in extra if current(item.key) is None]
        return Plan(tuple(missing), tuple(changed), tuple(extra), tuple(self._undecodable))


def plan(desired: Mapping[str, Announceable], actual: Mapping[str, Signature]) -> Plan:
    """Announce what is missing or different, withdraw what nobody asked for.

    A route in the RIB is withdrawn as itself; a FlowSpec rule by the match its key
    encodes (its actions do not matter to a withdraw).
    """
    builder = PlanBuilder(dict(desired))
    for key, held in actual.items():
        builder.see(key, held)
    return builder.finish()


def result_of(todo: Plan, foreign: int) -> ReconcileResult:
    return ReconcileResult(len(todo.announce), todo.withdrawn, foreign)


def reconciled_event(result: ReconcileResult, reason: str, now: float) -> Event:
    return Event(
        EventKind.RECONCILED,
        subject=reason,
        detail=f"announced {result.announced}, withdrew {result.withdrawn}",
        time=now,
    )
