"""The trigger policy's configuration: the ``[trigger]`` table of the sensor's TOML file.

```toml
[trigger]
max_intents_per_second = 50   # global token bucket, all detectors together (0: no limit)
burst = 50                    # intents that may leave at once (default: the rate, at least 1)
hold_down = "5m"              # default for every detector (default: each detector's ttl)
send_timeout = 0.5            # seconds: deadline of one call to trafexd
queue_size = 1000             # intents waiting for the sender; more are dropped (counted)

[trigger.dns]                 # default: a /32 or /128 route per answer, next-hop self, 1h
action = "route"              # route | flowspec | none
ttl = "1h"                    # 90, "90s", "10m", "2h", "1d"; 0: never expires
community = ["65000:666"]
next_hop = "self"             # or an address, or one IPv4 and one IPv6 address in a list

[trigger.retransmit]          # default: redirect 6:302, both directions, protocol tcp, 10m
action = "flowspec"
redirect = "6:302"            # or rate_limit = 125000 (bytes/s), discard = true, mark = 10
both_directions = true
match = ["protocol"]          # add "source-port", "destination-port" for the exact flow

[trigger.volumetric]          # default: discard towards the host, protocol from evidence, 5m
action = "flowspec"
discard = true
match = ["protocol", "destination-port"]   # also "source-port", "source" (a rule per top source)
```

Each detector's defaults are stated once, next to the detector (its spec's
:class:`~trafex.detect.detectors.spec.TriggerDefaults`); the keys are read by trafex's
one strict reader (:class:`trafex.config.Table`).
Every detector table takes ``action``, ``ttl``, ``hold_down`` and ``refresh_before``;
``action = "route"`` takes ``community large_community next_hop local_preference med``;
``action = "flowspec"`` takes ``discard rate_limit redirect mark match``;
``both_directions`` applies to retransmit (either action) and to dns with flowspec.
A key that does not apply to the table's action is an error naming it, as is any
unknown key. Values are validated by trafex's model (the same checks trafexd makes), so
a policy that loads never produces an intent trafexd refuses for its form.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from trafex.config import (
    NO_LIMIT,
    ConfigError,
    Parse,
    Range,
    Table,
    duration,
    integer,
    number,
    read_toml,
    str_list,
)
from trafex.detect.detectors.registry import REGISTRY
from trafex.detect.detectors.spec import Action, DetectorSpec
from trafex.model.flowspec import FlowActions, RouteTarget
from trafex.model.intent import MAX_TTL
from trafex.model.route import parse_community, parse_large_community

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_COMMON_KEYS = ("action", "ttl", "hold_down", "refresh_before")
_ROUTE_KEYS = ("community", "large_community", "next_hop", "local_preference", "med")
_FLOW_ACTION_KEYS = ("discard", "rate_limit", "redirect", "mark")
_FLOW_KEYS = (*_FLOW_ACTION_KEYS, "match")
_ACTIONS = ("route", "flowspec", "none")


@dataclass(frozen=True, slots=True)
class RouteAction:
    """How a detection becomes unicast routes: one /32 or /128 per address.

    ``next_hops`` holds at most one address per IP version; a route whose version has
    none is sent without a next-hop, which trafexd turns into next-hop-self.
    """

    next_hops: tuple[IPAddress, ...] = ()
    communities: tuple[int, ...] = ()
    large_communities: tuple[tuple[int, int, int], ...] = ()
    local_preference: int | None = None
    med: int | None = None

    def next_hop_for(self, version: int) -> IPAddress | None:
        for address in self.next_hops:
            if address.version == version:
                return address
        return None


@dataclass(frozen=True, slots=True)
class FlowAction:
    """How a detection becomes FlowSpec rules: their actions, and what they match."""

    actions: FlowActions
    match: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class DetectorPolicy:
    """One detector's action. ``ttl`` None: the intent never expires.

    ``both_directions``: retransmit, a rule (or route) for the reverse direction too; dns
    with FlowSpec, a rule from the address besides the one towards it.

    A repeat of an intent within ``hold_down`` seconds of its last sending is suppressed,
    unless less than ``refresh_before`` seconds of its TTL are left: then it is sent again
    (a refresh), so an intent never lapses while its condition keeps firing.
    """

    detector: str
    action: Action
    ttl: float | None
    hold_down: float
    refresh_before: float
    both_directions: bool = False
    route: RouteAction | None = None
    flow: FlowAction | None = None


@dataclass(frozen=True, slots=True)
class TriggerConfig:
    """The ``[trigger]`` table; ``detectors`` from its detector tables."""

    max_intents_per_second: Annotated[float, NO_LIMIT] = 50.0
    burst: Annotated[int | None, Range(1)] = None  # None: the rate, at least 1
    hold_down: Annotated[float | None, Parse(duration)] = None  # None: each detector's ttl
    send_timeout: Annotated[float, Range(above=0)] = 0.5  # seconds per call to trafexd
    queue_size: Annotated[int, Range(1)] = 1000  # intents waiting for the sender
    detectors: Mapping[str, DetectorPolicy] = field(default_factory=dict)

    @property
    def bucket(self) -> int:
        """Intents that may leave at once: ``burst``, else the rate (at least 1)."""
        if self.burst is not None:
            return self.burst
        return max(1, math.ceil(self.max_intents_per_second))

    def policy_for(self, detector: str) -> DetectorPolicy | None:
        return self.detectors.get(detector)


def default_config() -> TriggerConfig:
    """The policy when the file has no ``[trigger]`` table (the talk's two demos)."""
    return parse_trigger({})


# -- value parsers --------------------------------------------------------------------------


def _ttl(value: Any) -> float | None:
    """A TTL: 1 s .. 10 years, or 0 (None: never expires)."""
    ttl = duration(value)
    if ttl > MAX_TTL:
        raise ValueError(f"at most 10 years ({MAX_TTL} s), got {ttl:g}")
    if 0 < ttl < 1:
        raise ValueError(f"at least 1 s (or 0: never expires), got {ttl:g}")
    return ttl or None


def _next_hops(value: Any) -> tuple[IPAddress, ...]:
    out: list[IPAddress] = []
    for item in value if isinstance(value, list) else [value]:
        if not isinstance(item, str):
            raise ValueError(f"expected 'self' or an address, got {item!r}")
        if item.strip().lower() == "self":
            continue
        try:
            address = ipaddress.ip_address(item.strip())
        except ValueError:
            raise ValueError(f"not 'self' or an address: {item!r}") from None
        if any(a.version == address.version for a in out):
            raise ValueError(f"two IPv{address.version} next-hops; give one per version")
        out.append(address)
    return tuple(out)


def _communities(value: Any) -> tuple[int, ...]:
    return tuple(parse_community(c) for c in str_list(value))


def _large_communities(value: Any) -> tuple[tuple[int, int, int], ...]:
    return tuple(parse_large_community(c) for c in str_list(value))


_u32 = integer(Range(0, 0xFFFFFFFF))
_rate = number(Range(above=0, note="bytes/s; discard = true drops"))
_mark = integer(Range(0, 63))


# -- the tables -----------------------------------------------------------------------------


def _route_action(table: Table) -> RouteAction:
    return RouteAction(
        next_hops=table.convert("next_hop", _next_hops, ()),
        communities=table.convert("community", _communities, ()),
        large_communities=table.convert("large_community", _large_communities, ()),
        local_preference=table.convert("local_preference", _u32, None),
        med=table.convert("med", _u32, None),
    )


def _flow_actions(table: Table, spec: DetectorSpec) -> FlowActions:
    given = [k for k in _FLOW_ACTION_KEYS if k in table]
    if not given:
        return spec.trigger.flow_actions
    rate = 0.0 if table.take("discard", bool, False) else None
    if "rate_limit" in table and rate is not None:
        raise table.error("rate_limit", "discard and rate_limit are both a rate")
    rate = table.convert("rate_limit", _rate, rate)
    redirect = table.convert("redirect", _route_target, None)
    mark = table.convert("mark", _mark, None)
    try:
        return FlowActions(rate=rate, redirect=redirect, mark=mark)
    except ValueError as error:  # a ValidationError: name the first action key given
        raise table.error(given[0], str(error)) from None


def _route_target(value: Any) -> RouteTarget:
    if not isinstance(value, str):
        raise TypeError(f"expected 'ASN:NN' or 'IPv4:NN', got {value!r}")
    return RouteTarget.parse(value)


def _flow_action(table: Table, spec: DetectorSpec) -> FlowAction:
    choices = spec.trigger.match_choices
    if "match" in table and not choices:
        raise table.error("match", f"{spec.name} rules match only the address")

    def match(value: Any) -> frozenset[str]:
        items = str_list(value)
        for item in items:
            if item not in choices:
                raise ValueError(f"unknown {item!r} (allowed: {', '.join(sorted(choices))})")
        return frozenset(items)

    chosen = table.convert("match", match, frozenset(spec.trigger.match))
    return FlowAction(actions=_flow_actions(table, spec), match=chosen)


def _check_keys(table: Table, spec: DetectorSpec, action: str) -> None:
    """Refuse a key of another action (naming the action) before any unknown key."""
    allowed = {*_COMMON_KEYS}
    allowed |= set(_ROUTE_KEYS if action == "route" else ())
    allowed |= set(_FLOW_KEYS if action == "flowspec" else ())
    if action in spec.trigger.both_with:
        allowed.add("both_directions")
    for key in table.data:
        if key not in allowed and key in {*_ROUTE_KEYS, *_FLOW_KEYS, "both_directions"}:
            raise table.error(key, f"does not apply to {spec.name} with action = {action!r}")


def _detector_policy(spec: DetectorSpec, table: Table, hold_down: float | None) -> DetectorPolicy:
    defaults = spec.trigger
    action = table.convert("action", _action, defaults.action)
    _check_keys(table, spec, action)
    ttl = table.convert("ttl", _ttl, defaults.ttl or None)
    # One intent per flow per TTL, unless [trigger] or the table says otherwise.
    hold = table.convert(
        "hold_down", duration, hold_down if hold_down is not None else ttl or 3600.0
    )
    refresh = table.convert("refresh_before", duration, None)
    if refresh is not None and ttl is not None and refresh >= ttl:
        raise table.error("refresh_before", f"must be below the ttl ({ttl:g} s)")
    route = _route_action(table) if action == "route" else None
    flow = _flow_action(table, spec) if action == "flowspec" else None
    both = defaults.both_directions
    if action in defaults.both_with:
        both = table.take("both_directions", bool, both)
    table.done()
    refresh = (ttl or 0.0) / 3 if refresh is None else refresh
    return DetectorPolicy(spec.name, action, ttl, hold, refresh, both, route, flow)


def _action(value: Any) -> Action:
    if value not in _ACTIONS:
        raise ValueError(f"expected route, flowspec or none, got {value!r}")
    return value  # type: ignore[no-any-return]


def parse_trigger(doc: Mapping[str, object]) -> TriggerConfig:
    """The ``[trigger]`` table of a parsed TOML document (absent: the defaults); raises
    :class:`~trafex.config.ConfigError` naming the key."""
    trigger = Table(doc.get("trigger", {}), "trigger")
    tables = {name: trigger.table(name) for name in REGISTRY}
    hold_down = trigger.convert("hold_down", duration, None)
    config = trigger.read(TriggerConfig, hold_down=hold_down, detectors={})
    detectors = {
        name: _detector_policy(REGISTRY[name], table, hold_down) for name, table in tables.items()
    }
    return dataclasses.replace(config, detectors=detectors)


def load_trigger_config(path: str | Path) -> TriggerConfig:
    """Read the ``[trigger]`` table of a TOML file; other tables are not looked at."""
    return parse_trigger(read_toml(Path(path)))


__all__ = [
    "ConfigError",
    "DetectorPolicy",
    "FlowAction",
    "RouteAction",
    "TriggerConfig",
    "default_config",
    "load_trigger_config",
    "parse_trigger",
]
