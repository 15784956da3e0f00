"""The reconciler's decisions: what to announce and what to withdraw. Pure.

Desired state (the store) and actual state (GoBGP's RIB, as
:meth:`~trafex.bgp.client.GobgpClient.rib` reads it) are both maps from an intent's
key to what is on the wire for it: the rule or route, and its signature (the actions
of a FlowSpec rule, or the whole route). The plan makes the RIB equal the store; only
the executor, through the GoBGP client, carries it out.
"""

from __future__ import annotations

from collections.abc import Mapping
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


def plan(desired: Mapping[str, Announceable], actual: Mapping[str, Signature]) -> Plan:
    """Announce what is missing or different, withdraw what nobody asked for.

    A route in the RIB is withdrawn as itself; a FlowSpec rule by the match its key
    encodes (its actions do not matter to a withdraw).
    """
    missing: list[Announceable] = []
    changed: list[Announceable] = []
    for key, item in desired.items():
        if key not in actual:
            missing.append(item)
        elif actual[key] != signature(item):
            changed.append(item)
    extra: list[Withdrawable] = []
    undecodable: list[tuple[str, str]] = []
    for key, held in actual.items():
        if key in desired:
            continue
        if isinstance(held, UnicastRoute):
            extra.append(held)
            continue
        try:
            extra.append(decode_key(key))
        except ValidationError as error:
            undecodable.append((key, str(error)))
    return Plan(tuple(missing), tuple(changed), tuple(extra), tuple(undecodable))


def result_of(todo: Plan, foreign: int) -> ReconcileResult:
    return ReconcileResult(len(todo.announce), todo.withdrawn, foreign)


def reconciled_event(result: ReconcileResult, reason: str, now: float) -> Event:
    return Event(
        EventKind.RECONCILED,
        subject=reason,
        detail=f"announced {result.announced}, withdrew {result.withdrawn}",
        time=now,
    )
