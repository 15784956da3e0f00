"""Guardrails: rules that are valid FlowSpec but that trafexd refuses to send. Pure.

``max_terms_per_component`` (default 5): FRR 8.4 answers a component with more than
five operator/value terms with an UPDATE-error NOTIFICATION, which resets the session
and drops every rule on it. Set 0 to lift the limit for receivers that accept more.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from trafex.model.errors import TrafexError, ValidationError
from trafex.model.flowspec import ATTRIBUTE, FlowRule
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


@dataclass(frozen=True, slots=True)
class Guards:
    """The guards' settings (``[guard]``, plus trafexd's BGP neighbors as protected)."""

    protected: tuple[IPNet, ...] = ()
    max_breadth_v4: int = 24
    max_breadth_v6: int = 48


def check_intent(item: FlowRule | UnicastRoute, guards: Guards, *, force: bool = False) -> None:
    """Raise :class:`GuardError` when a guard refuses ``item``. Pure."""
    if isinstance(item, FlowRule):
        _check_flow(item, guards, force)
    else:
        _check_route(item, guards)


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
    towards = f"towards {network}" if network is not None else "with no destination"
    for protected in guards.protected:
        if network is None or network.overlaps(protected):
            raise GuardError("protected", f"{verb} {towards} overlaps protected prefix {protected}")
    if verb == "redirect" or force:
        return
    if network is None:
        raise GuardError("breadth", f"{verb} {towards} matches every address (use --force)")
    limit = guards.max_breadth_v4 if network.version == 4 else guards.max_breadth_v6
    if network.prefixlen < limit:
        raise GuardError("breadth", f"{verb} {towards} is broader than /{limit} (use --force)")


def _check_route(route: UnicastRoute, guards: Guards) -> None:
    for protected in guards.protected:
        if route.prefix.overlaps(protected):
            raise GuardError(
                "protected", f"route {route.prefix} overlaps protected prefix {protected}"
            )
