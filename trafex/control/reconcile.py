"""The reconciler's decisions: what to announce and what to withdraw. Pure.

Desired state (the store) and actual state (GoBGP's RIB) are both maps from an
intent's key to its signature: the actions of a FlowSpec rule, or a whole route. The
plan makes the RIB equal the store; only the GoBGP client carries it out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from trafex.model.flowspec import FlowActions, FlowRule
from trafex.model.route import UnicastRoute

Announceable = FlowRule | UnicastRoute
Signature = FlowActions | UnicastRoute | None


def signature(item: Announceable) -> Signature:
    return item.actions if isinstance(item, FlowRule) else item


@dataclass(frozen=True, slots=True)
class Plan:
    announce: tuple[Announceable, ...]
    withdraw_keys: tuple[str, ...]

    @property
    def empty(self) -> bool:
        return not self.announce and not self.withdraw_keys


def plan(desired: Mapping[str, Announceable], actual: Mapping[str, Signature]) -> Plan:
    """Announce what is missing or different, withdraw what nobody asked for."""
    announce = tuple(item for key, item in desired.items() if actual.get(key) != signature(item))
    withdraw = tuple(key for key in actual if key not in desired)
    return Plan(announce, withdraw)
