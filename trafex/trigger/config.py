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

Every detector table takes ``action``, ``ttl``, ``hold_down`` and ``refresh_before``;
``action = "route"`` takes ``community large_community next_hop local_preference med``;
``action = "flowspec"`` takes ``discard rate_limit redirect mark match``;
``both_directions`` applies to retransmit (either action) and to dns with flowspec.
A key that does not apply to the table's action is an error naming it, as is any
unknown key. Values are validated by trafex's model (the same checks trafexd makes), so
a policy that loads never produces an intent trafexd refuses for its form.
"""

from __future__ import annotations

import ipaddress
import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from trafex.detect.confkeys import Table, check_keys, get_bool, get_float, get_int, get_str_list
from trafex.detect.errors import ConfigError
from trafex.model.errors import ValidationError
from trafex.model.flowspec import FlowActions, RouteTarget
from trafex.model.route import parse_community, parse_large_community

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Action = Literal["route", "flowspec", "none"]

DETECTORS = ("dns", "retransmit", "volumetric")
MAX_TTL = 10 * 365 * 86400  # trafexd refuses longer TTLs
REDIRECT_DEFAULT = "6:302"  # the talk's analysis VRF

_TOP_KEYS = {
    "max_intents_per_second",
    "burst",
    "hold_down",
    "send_timeout",
    "queue_size",
    *DETECTORS,
}
_COMMON_KEYS = {"action", "ttl", "hold_down", "refresh_before"}
_ROUTE_KEYS = {"community", "large_community", "next_hop", "local_preference", "med"}
_FLOW_ACTION_KEYS = {"discard", "rate_limit", "redirect", "mark"}
_FLOW_KEYS = {*_FLOW_ACTION_KEYS, "match"}
# What each detector's FlowSpec rule may take from its detection, besides the addresses.
MATCH_CHOICES: dict[str, frozenset[str]] = {
    "dns": frozenset(),
    "retransmit": frozenset({"protocol", "source-port", "destination-port"}),
    "volumetric": frozenset({"protocol", "destination-port", "source-port", "source"}),
}
_DEFAULT_ACTION: dict[str, Action] = {
    "dns": "route",
    "retransmit": "flowspec",
    "volumetric": "flowspec",
}
_DEFAULT_TTL = {"dns": 3600.0, "retransmit": 600.0, "volumetric": 300.0}
_DEFAULT_MATCH = {"dns": (), "retransmit": ("protocol",), "volumetric": ("protocol",)}
_DEFAULT_BOTH = {"dns": False, "retransmit": True, "volumetric": False}

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw]?)$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(value: object, key: str) -> float:
    """Seconds from a number or a text such as ``90s``, ``10m``, ``2h``, ``1d``, ``1w``."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ConfigError(key, f"expected seconds or a duration like '10m', got {value!r}")
    if isinstance(value, str):
        match = _DURATION.match(value.strip().lower())
        if not match:
            raise ConfigError(key, f"{value!r} is not a duration (90, '90s', '10m', '2h', '1d')")
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    else:
        seconds = float(value)
    if not math.isfinite(seconds) or seconds < 0:
        raise ConfigError(key, f"must be a duration >= 0, got {value!r}")
    return seconds


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
    max_intents_per_second: float = 50.0
    burst: int = 50
    send_timeout: float = 0.5
    queue_size: int = 1000
    detectors: Mapping[str, DetectorPolicy] = field(default_factory=dict)

    def policy_for(self, detector: str) -> DetectorPolicy | None:
        return self.detectors.get(detector)


def default_config() -> TriggerConfig:
    """The policy when the file has no ``[trigger]`` table (the talk's two demos)."""
    return parse_trigger({})


def _ttl(table: Table, where: str, default: float) -> float | None:
    ttl = parse_duration(table.get("ttl", default), f"{where}.ttl")
    if ttl > MAX_TTL:
        raise ConfigError(f"{where}.ttl", f"at most 10 years ({MAX_TTL} s), got {ttl:g}")
    if 0 < ttl < 1:
        raise ConfigError(f"{where}.ttl", f"at least 1 s (or 0: never expires), got {ttl:g}")
    return ttl or None


def _int_or_none(table: Table, key: str, where: str) -> int | None:
    if key not in table:
        return None
    return get_int(table, key, where, 0, maximum=0xFFFFFFFF)


def _next_hops(value: object, key: str) -> tuple[IPAddress, ...]:
    items = value if isinstance(value, list) else [value]
    out: list[IPAddress] = []
    for item in items:
        if not isinstance(item, str):
            raise ConfigError(key, f"expected 'self' or an address, got {item!r}")
        if item.strip().lower() == "self":
            continue
        try:
            address = ipaddress.ip_address(item.strip())
        except ValueError:
            raise ConfigError(key, f"not 'self' or an address: {item!r}") from None
        if any(a.version == address.version for a in out):
            raise ConfigError(key, f"two IPv{address.version} next-hops; give one per version")
        out.append(address)
    return tuple(out)


def _route_action(table: Table, where: str) -> RouteAction:
    try:
        communities = tuple(parse_community(c) for c in get_str_list(table, "community", where, []))
    except ValidationError as error:
        raise ConfigError(f"{where}.community", error.message) from None
    try:
        large = tuple(
            parse_large_community(c) for c in get_str_list(table, "large_community", where, [])
        )
    except ValidationError as error:
        raise ConfigError(f"{where}.large_community", error.message) from None
    return RouteAction(
        next_hops=_next_hops(table.get("next_hop", "self"), f"{where}.next_hop"),
        communities=communities,
        large_communities=large,
        local_preference=_int_or_none(table, "local_preference", where),
        med=_int_or_none(table, "med", where),
    )


_FIELD_TO_KEY = {"rate-limit": "rate_limit", "redirect": "redirect", "mark": "mark"}


def _flow_actions(table: Table, where: str, detector: str) -> FlowActions:
    given = [k for k in _FLOW_ACTION_KEYS if k in table]
    if not given:
        if detector == "volumetric":
            return FlowActions(rate=0.0)
        return FlowActions(redirect=RouteTarget.parse(REDIRECT_DEFAULT))
    rate: float | None = None
    if get_bool(table, "discard", where, False):
        rate = 0.0
    if "rate_limit" in table:
        if rate is not None:
            raise ConfigError(f"{where}.rate_limit", "discard and rate_limit are both a rate")
        rate = get_float(table, "rate_limit", where, 0.0)
        if rate == 0:
            raise ConfigError(f"{where}.rate_limit", "must be > 0 bytes/s (discard = true drops)")
    redirect = None
    if "redirect" in table:
        text = table["redirect"]
        if not isinstance(text, str):
            raise ConfigError(f"{where}.redirect", f"expected 'ASN:NN' or 'IPv4:NN', got {text!r}")
        try:
            redirect = RouteTarget.parse(text)
        except ValidationError as error:
            raise ConfigError(f"{where}.redirect", error.message) from None
    mark = get_int(table, "mark", where, 0, maximum=63) if "mark" in table else None
    try:
        return FlowActions(rate=rate, redirect=redirect, mark=mark)
    except ValidationError as error:
        key = _FIELD_TO_KEY.get(error.field or "", "discard" if rate == 0.0 else given[0])
        raise ConfigError(f"{where}.{key}", error.message) from None


def _flow_action(table: Table, where: str, detector: str) -> FlowAction:
    choices = MATCH_CHOICES[detector]
    if "match" in table and not choices:
        raise ConfigError(f"{where}.match", f"{detector} rules match only the address")
    match = get_str_list(table, "match", where, list(_DEFAULT_MATCH[detector]))
    for item in match:
        if item not in choices:
            raise ConfigError(
                f"{where}.match", f"unknown {item!r} (allowed: {', '.join(sorted(choices))})"
            )
    return FlowAction(actions=_flow_actions(table, where, detector), match=frozenset(match))


def _detector_policy(
    detector: str, table: Table, hold_down_default: float | None
) -> DetectorPolicy:
    where = f"trigger.{detector}"
    action = table.get("action", _DEFAULT_ACTION[detector])
    if action not in ("route", "flowspec", "none"):
        raise ConfigError(f"{where}.action", f"expected route, flowspec or none, got {action!r}")
    allowed = set(_COMMON_KEYS)
    if action == "route":
        allowed |= _ROUTE_KEYS
    elif action == "flowspec":
        allowed |= _FLOW_KEYS
    if detector == "retransmit" or (detector == "dns" and action == "flowspec"):
        allowed.add("both_directions")
    for key in table:
        if key not in allowed and key in {*_ROUTE_KEYS, *_FLOW_KEYS, "both_directions"}:
            raise ConfigError(
                f"{where}.{key}", f"does not apply to {detector} with action = {action!r}"
            )
    check_keys(table, allowed, where)
    ttl = _ttl(table, where, _DEFAULT_TTL[detector])
    if "hold_down" in table:
        hold_down = parse_duration(table["hold_down"], f"{where}.hold_down")
    elif hold_down_default is not None:
        hold_down = hold_down_default
    else:
        hold_down = ttl or 3600.0  # one intent per flow per TTL
    if "refresh_before" in table:
        refresh = parse_duration(table["refresh_before"], f"{where}.refresh_before")
        if ttl is not None and refresh >= ttl:
            raise ConfigError(f"{where}.refresh_before", f"must be below the ttl ({ttl:g} s)")
    else:
        refresh = (ttl or 0.0) / 3
    route = flow = None
    if action == "route":
        route = _route_action(table, where)
    elif action == "flowspec":
        flow = _flow_action(table, where, detector)
    both = get_bool(table, "both_directions", where, _DEFAULT_BOTH[detector])
    return DetectorPolicy(detector, action, ttl, hold_down, refresh, both, route, flow)


def parse_trigger(doc: Mapping[str, object]) -> TriggerConfig:
    """The ``[trigger]`` table of a parsed TOML document (absent: the defaults)."""
    trigger = doc.get("trigger", {})
    if not isinstance(trigger, Mapping):
        raise ConfigError("trigger", "expected a table")
    check_keys(trigger, _TOP_KEYS, "trigger")
    rate = get_float(trigger, "max_intents_per_second", "trigger", 50.0)
    burst = get_int(trigger, "burst", "trigger", max(1, math.ceil(rate)), minimum=1)
    hold_down = (
        parse_duration(trigger["hold_down"], "trigger.hold_down")
        if "hold_down" in trigger
        else None
    )
    timeout = get_float(trigger, "send_timeout", "trigger", 0.5)
    if timeout <= 0:
        raise ConfigError("trigger.send_timeout", "must be > 0 seconds")
    detectors: dict[str, DetectorPolicy] = {}
    for name in DETECTORS:
        table = trigger.get(name, {})
        if not isinstance(table, Mapping):
            raise ConfigError(f"trigger.{name}", "expected a table")
        detectors[name] = _detector_policy(name, table, hold_down)
    return TriggerConfig(
        max_intents_per_second=rate,
        burst=burst,
        send_timeout=timeout,
        queue_size=get_int(trigger, "queue_size", "trigger", 1000, minimum=1),
        detectors=detectors,
    )


def load_trigger_config(path: str | Path) -> TriggerConfig:
    """Read the ``[trigger]`` table of a TOML file; other tables are not looked at."""
    try:
        with open(path, "rb") as f:
            doc = tomllib.load(f)
    except OSError as exc:
        raise ConfigError(str(path), f"cannot read ({exc.strerror})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), f"not valid TOML ({exc})") from exc
    return parse_trigger(doc)
