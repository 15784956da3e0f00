"""Guardrails: rules that are valid FlowSpec but that trafexd refuses to send. Pure.

Every add passes them, whatever its origin (trafex-ctl, gRPC, HTTP, a detector: all
reach :func:`trafex.control.changes.decide_add`). Each refusal is a
:class:`GuardError` naming the guard and the rule:

- ``protected``: no discard, rate-limit or redirect overlapping a protected prefix,
  and no route inside one (trafexd's BGP neighbors always; ``[guard] protected``);
- ``breadth``: no discard or rate-limit broader than /24 (IPv4) or /48 (IPv6), or
  with no destination, unless the request says ``force``;
- ``origin``: an origin with a ``[guard.origins.NAME]`` table acts only on
  destinations (rules) and prefixes (routes) inside its prefixes (a rule with no
  destination is outside). The origin is what the request declares: this is a safety
  guard against a misconfigured sensor, not an authentication boundary;
- ``caps`` and ``rate`` (:mod:`trafex.control.caps`): how many intents may be in
  force, and how fast one origin may ask.

``max_terms_per_component`` (default 5): FRR 8.4 answers a component with more than
five operator/value terms with an UPDATE-error NOTIFICATION, which resets the session
and drops every rule on it. Set 0 to lift the limit for receivers that accept more.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any

from trafex.config import NO_LIMIT, Parse, Range, Table, str_list
from trafex.model.errors import TrafexError, ValidationError
from trafex.model.flowspec import ATTRIBUTE, FlowRule
from trafex.model.grammar import render_rule
from trafex.model.route import UnicastRoute

DEFAULT_MAX_TERMS = 5


def check_rule(rule: FlowRule, *, max_terms: int = DEFAULT_MAX_TERMS) -> None:
    """Raise :class:`ValidationError` naming the component that breaks a guardrail."""
    if not max_terms:
        return
    for keyword, attribute in ATTRIBUTE.items():
        count = len(getattr(rule.match, attribute))
        if count > max_terms:
            raise ValidationError(
                f"{count} terms, above the limit of {max_terms} ([controller] "
                "max_terms_per_component; FRR 8.4 resets the BGP session beyond 5)",
                field=keyword,
            )


# -- guards on intents: protected prefixes, breadth -------------------------------------

IPNet = ipaddress.IPv4Network | ipaddress.IPv6Network


class GuardError(TrafexError):
    """A request refused by a guard (gRPC FAILED_PRECONDITION); the message names the
    guard and the rule: ``guard breadth: discard towards ::/0 is broader than /48``."""

    def __init__(self, guard: str, message: str) -> None:
        super().__init__(f"guard {guard}: {message}")
        self.guard = guard


def networks(value: Any) -> tuple[IPNet, ...]:
    """A TOML list of prefixes (``192.0.2.0/24``; host bits unset) as networks."""
    out = []
    for text in str_list(value):
        try:
            out.append(ipaddress.ip_network(text))
        except ValueError as error:
            raise ValueError(f"not a prefix: {text!r}") from error
    return tuple(out)


@dataclass(frozen=True, slots=True)
class Guards:
    """``[guard]``: the guards' settings, each default stated here once (trafexd's
    defaults; ``Guards()`` is them). Read from trafexd's config by :func:`read_guards`;
    trafexd adds its BGP neighbors to ``protected``
    (:func:`~trafex.control.config.guards_of`). A cap or rate of 0 is no limit."""

    protected: Annotated[tuple[IPNet, ...], Parse(networks)] = ()
    max_breadth_v4: Annotated[int, Range(0, 32)] = 24
    max_breadth_v6: Annotated[int, Range(0, 128)] = 48
    max_rules: Annotated[int, NO_LIMIT] = 10_000  # active FlowSpec rules, all origins
    max_routes: Annotated[int, NO_LIMIT] = 10_000  # active unicast routes, all origins
    max_rules_per_origin: Annotated[int, NO_LIMIT] = 0
    max_routes_per_origin: Annotated[int, NO_LIMIT] = 0
    rate_per_origin: Annotated[float, NO_LIMIT] = 0.0  # intents asked/s (updates too)
    burst_per_origin: Annotated[int, Range(1)] = 100  # the rate's bucket size
    dry_run: bool = False  # validate and guard every request, announce nothing
    # [guard.origins.NAME] prefixes: what one origin (a sensor, a tenant) may act on
    origins: Mapping[str, tuple[IPNet, ...]] = field(default_factory=dict)

    @property
    def capped(self) -> bool:
        """True when any cap is set."""
        return any(
            (self.max_rules, self.max_routes, self.max_rules_per_origin, self.max_routes_per_origin)
        )


def read_guards(table: Table) -> Guards:
    """:class:`Guards` from the ``[guard]`` table, with its ``[guard.origins.NAME]``
    tables (one key: ``prefixes``, default none)."""
    origins = {name: _origin(origin) for name, origin in table.named_tables("origins")}
    return table.read(Guards, origins=origins)


def _origin(table: Table) -> tuple[IPNet, ...]:
    none: tuple[IPNet, ...] = ()
    prefixes = table.convert("prefixes", networks, none)
    table.done()
    return prefixes


def check_intent(
    item: FlowRule | UnicastRoute, guards: Guards, *, force: bool = False, origin: str = ""
) -> None:
    """Raise :class:`GuardError` when a guard refuses ``item`` asked for by ``origin``."""
    if isinstance(item, FlowRule):
        _check_flow(item, guards, force)
    else:
        _check_route(item, guards)
    allowed = guards.origins.get(origin)
    if allowed is not None:
        _check_origin(item, origin, allowed)


def describe(item: FlowRule | UnicastRoute) -> str:
    """The rule's one-line text, or ``route PREFIX``: how refusals name what they refuse."""
    if isinstance(item, FlowRule):
        return render_rule(item)
    return f"route {item.prefix}"


def _check_origin(item: FlowRule | UnicastRoute, origin: str, allowed: tuple[IPNet, ...]) -> None:
    if isinstance(item, FlowRule):
        destination = item.match.destination
        network = destination.network if destination is not None else None
    else:
        network = item.prefix
    inside = network is not None and any(
        network.version == mine.version and network.subnet_of(mine)  # type: ignore[arg-type]
        for mine in allowed
    )
    if inside:
        return
    where = f"only inside {', '.join(map(str, allowed))}" if allowed else "on no prefix"
    raise GuardError(
        "origin",
        f"origin {origin!r} may act {where} ([guard.origins.{origin}] prefixes); "
        f"refused: {describe(item)}",
    )


def _verb(rule: FlowRule) -> str | None:
    actions = rule.actions
    if actions.discard:
        return "discard"
    if actions.rate is not None:
        return f"rate-limit {actions.rate:g}"
    if actions.redirect is not None:
        return "redirect"
    return None


def _check_flow(rule: FlowRule, guards: Guards, force: bool) -> None:
    verb = _verb(rule)
    if verb is None:
        return
    destination = rule.match.destination
    network = destination.network if destination is not None else None
    # The messages are written only for a refusal: this runs for every rule of a batch.
    for protected in guards.protected:
        if network is None or network.overlaps(protected):
            raise GuardError(
                "protected", f"{verb} {_towards(network)} overlaps protected prefix {protected}"
            )
    if verb == "redirect" or force:
        return
    if network is None:
        raise GuardError(
            "breadth", f"{verb} with no destination matches every address (use --force)"
        )
    limit = guards.max_breadth_v4 if network.version == 4 else guards.max_breadth_v6
    if network.prefixlen < limit:
        raise GuardError(
            "breadth", f"{verb} towards {network} is broader than /{limit} (use --force)"
        )


def _towards(network: IPNet | None) -> str:
    return f"towards {network}" if network is not None else "with no destination"


def _check_route(route: UnicastRoute, guards: Guards) -> None:
    for protected in guards.protected:
        if route.prefix.overlaps(protected):
            raise GuardError(
                "protected", f"route {route.prefix} overlaps protected prefix {protected}"
            )
