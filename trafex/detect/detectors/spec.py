"""What a detector declares next to itself: its config, its defaults, what it aims at.

A detector module defines one :class:`DetectorSpec` (``SPEC``) and the registry
(:mod:`trafex.detect.detectors.registry`) lists the specs. Everything else reads the
spec: the sensor's config reader (``[detect.NAME]``, read by
:meth:`trafex.config.Table.read` from the spec's config dataclass, whose field
defaults are the only statement of the defaults), the trigger's config reader
(``[trigger.NAME]``, defaults from :class:`TriggerDefaults`) and the trigger's
mapping, which turns the spec's :class:`Target` values into routes or rules with the
policy's actions. So a new detector is one module (and its tests).

Targets are model values (an address for a host route, a :class:`FlowMatch` for a
rule), built from the typed detection: no text is parsed on the way.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from trafex.config import Table
from trafex.detect.detection import Detection
from trafex.detect.detectors.base import Detector
from trafex.model.flowspec import Family, FlowActions, FlowMatch, FlowPrefix, NumericTerm

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Action = Literal["route", "flowspec", "none"]


@dataclass(frozen=True, slots=True)
class Aim:
    """What the trigger asks a detector's targets for: host routes (``route``) or rule
    matches, the match components the policy wants besides the addresses (``match``,
    from :attr:`TriggerDefaults.match_choices`) and the reverse direction too
    (``both``)."""

    route: bool
    match: frozenset[str] = frozenset()
    both: bool = False


@dataclass(frozen=True, slots=True)
class Target:
    """One intent's subject: an address (a /32 or /128 route) or a rule's match, and
    the reason the intent carries."""

    subject: IPAddress | FlowMatch
    reason: str


@dataclass(frozen=True, slots=True)
class TriggerDefaults:
    """A detector's trigger policy when ``[trigger.NAME]`` says nothing.

    ``match_choices``: the components its rules may take from a detection besides the
    addresses; ``both_with``: the actions for which ``both_directions`` applies.
    """

    action: Action
    ttl: float
    flow_actions: FlowActions
    match: tuple[str, ...] = ()
    match_choices: frozenset[str] = frozenset()
    both_directions: bool = False
    both_with: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class DetectorSpec:
    """A detector as trafex sees it: its name (``[detect.NAME]``, ``[trigger.NAME]``),
    how its table is read and the detector built, its trigger defaults, and
    ``targets``: a detection's subjects for an :class:`Aim`."""

    name: str
    read: Callable[[Table], Any]  # the [detect.NAME] table → the detector's config
    build: Callable[[Any], Detector]  # that config → the detector
    trigger: TriggerDefaults
    targets: Callable[[Detection, Aim], list[Target]]

    def detector(self, table: Table) -> Detector:
        """The detector configured by ``table`` (errors name the key)."""
        return self.build(self.read(table))


def read_dataclass(cls: type) -> Callable[[Table], Any]:
    """A spec's ``read`` for a config that is one plain dataclass."""
    return lambda table: table.read(cls)


# -- helpers for targets ------------------------------------------------------------------


def family_of(address: IPAddress) -> Family:
    return Family.IPV4 if address.version == 4 else Family.IPV6


def host_prefix(address: IPAddress) -> FlowPrefix:
    """The /32 or /128 of ``address`` as a rule's prefix component."""
    return FlowPrefix(ipaddress.ip_network(address))


def equals(value: int) -> tuple[NumericTerm, ...]:
    """A numeric component that matches exactly ``value``."""
    return (NumericTerm.of("=", value),)
