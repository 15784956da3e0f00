"""ExaBGP's API commands (the lines its helper processes write) → trafex's model.

The talk's sensors drive ExaBGP through an HTTP ``POST /command`` whose ``command`` field
is one line of ExaBGP's API; trafexd's HTTP endpoint takes the same lines and this
module reads them into a typed command, never into a process's stdin::

    announce route 3001:10:66::5/128 next-hop self
    announce route 192.0.2.66/32 next-hop 192.0.2.1 community [65000:666 no-export] med 50
    withdraw route 3001:10:66::5/128 next-hop self
    announce flow route source 3001:1:a::10/128 destination 3001:4:b::10/128 redirect 6:302
    announce flow route { match { destination 10.0.0.1/32; } then { discard; } }
    withdraw flow route source 3001:1:a::10/128 destination 3001:4:b::10/128

A route takes what :class:`~trafex.model.route.UnicastRoute` carries: ``next-hop self``
(the sidecar's own address, the default) or an address, ``community``,
``large-community`` (one value, or a ``[ … ]`` list), ``local-preference`` and ``med``;
any other attribute is refused by name. A flow route's text after ``flow route`` is
trafex's FlowSpec grammar (:func:`~trafex.model.grammar.parse_rule`), which reads
ExaBGP's one-line and ``{ match … then … }`` forms alike. A withdraw names what to
remove: the route's prefix (its attributes are checked, then ignored), or the flow's
match (its actions, if given, are ignored, as ExaBGP does).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import ClassVar, Literal

from trafex.model.errors import ValidationError
from trafex.model.flowspec import FlowMatch, FlowRule
from trafex.model.grammar import parse_match, parse_rule
from trafex.model.route import UnicastRoute, parse_route

__all__ = ["Announce", "Command", "Verb", "Withdraw", "parse_command"]

Verb = Literal["announce", "withdraw"]
_LIST_ATTRIBUTES = ("community", "large-community")
_ROUTE_ATTRIBUTES = ("next-hop", *_LIST_ATTRIBUTES, "local-preference", "med")
_SUPPORTED = ", ".join(_ROUTE_ATTRIBUTES)
MAX_COMMAND = 16 * 1024  # characters: far more than any one rule needs


@dataclass(frozen=True, slots=True)
class Announce:
    """Add (or update) a rule or a route."""

    item: FlowRule | UnicastRoute
    verb: ClassVar[Verb] = "announce"

    @property
    def key(self) -> str:
        return self.item.key


@dataclass(frozen=True, slots=True)
class Withdraw:
    """Remove the rule with this match, or the route at this prefix."""

    item: FlowMatch | UnicastRoute
    verb: ClassVar[Verb] = "withdraw"

    @property
    def key(self) -> str:
        return self.item.key


Command = Announce | Withdraw


def parse_command(text: str) -> Command:
    """One ExaBGP API command → :class:`Announce` or :class:`Withdraw`; a
    :class:`ValidationError` names the bad part (``field`` ``command`` for the
    command's own words, else the attribute or FlowSpec component)."""
    if len(text) > MAX_COMMAND:
        raise ValidationError(f"longer than {MAX_COMMAND} characters", field="command")
    line = text.strip()
    if "\n" in line or "\r" in line:
        raise ValidationError("one command per request (found a line break)", field="command")
    # Braces apart, so that "route{" reads as "route {" (ExaBGP's block form).
    words = re.sub(r"([{}])", r" \1 ", line).split(maxsplit=2)
    verb = _verb(words[0] if words else "")
    kind = words[1].lower() if len(words) > 1 else ""
    rest = words[2] if len(words) > 2 else ""
    if kind == "route":
        route = _parse_route(rest)
        return Announce(route) if verb == "announce" else Withdraw(route)
    if kind == "flow":
        body = _after_route(rest)
        return Announce(parse_rule(body)) if verb == "announce" else Withdraw(parse_match(body))
    got = repr(words[1]) if kind else "nothing"
    raise ValidationError(
        f"expected 'route' or 'flow route' after {verb!r}, got {got}", field="command"
    )


def _verb(word: str) -> Verb:
    lowered = word.lower()
    if lowered == "announce":
        return "announce"
    if lowered == "withdraw":
        return "withdraw"
    if lowered == "neighbor":
        raise ValidationError(
            "neighbor selectors are not supported: trafex announces to every neighbor",
            field="command",
        )
    if not word:
        raise ValidationError("empty: give 'announce ...' or 'withdraw ...'", field="command")
    raise ValidationError(
        f"unknown command {word!r}: trafex takes 'announce' and 'withdraw'", field="command"
    )


def _after_route(text: str) -> str:
    """The rule text after ``flow``, which must start with ``route``."""
    words = text.split(maxsplit=1)
    if not words or words[0].lower() != "route":
        got = repr(words[0]) if words else "nothing"
        raise ValidationError(f"expected 'route' after 'flow', got {got}", field="command")
    return words[1] if len(words) > 1 else ""


# -- routes -----------------------------------------------------------------------------


@dataclass
class _RouteParts:
    """A route's words, by attribute, before :func:`parse_route` reads them."""

    prefix: str
    values: dict[str, list[str]] = field(default_factory=dict)

    def set(self, name: str, values: list[str]) -> None:
        if name in self.values:
            raise ValidationError("given twice", field=name)
        if name not in _LIST_ATTRIBUTES and len(values) > 1:
            raise ValidationError("takes one value, not a list", field=name)
        self.values[name] = values

    def one(self, name: str) -> str | None:
        values = self.values.get(name)
        return values[0] if values else None

    def number(self, name: str) -> int | None:
        value = self.one(name)
        if value is None:
            return None
        if not (value.isascii() and value.isdigit()):
            raise ValidationError(f"{value!r} is not a number", field=name)
        return int(value)

    def route(self) -> UnicastRoute:
        hop = self.one("next-hop") or "self"
        return parse_route(
            self.prefix,
            "self" if hop.lower() == "self" else hop,
            self.values.get("community", ()),
            self.values.get("large-community", ()),
            self.number("local-preference"),
            self.number("med"),
        )


def _tokens(text: str) -> list[str]:
    if re.search(r"[{};]", text):
        raise ValidationError(
            "a route is one line ('PREFIX next-hop self|IP ...'), not a '{ ... }' block",
            field="command",
        )
    return text.replace("[", " [ ").replace("]", " ] ").split()


def _values(tokens: list[str], index: int, name: str) -> tuple[list[str], int]:
    """One value, or a ``[ … ]`` list of them, from ``tokens[index]``; the next index."""
    if index >= len(tokens):
        raise ValidationError("needs a value", field=name)
    if tokens[index] == "[":
        try:
            end = tokens.index("]", index)
        except ValueError:
            raise ValidationError("unclosed '['", field=name) from None
        values = tokens[index + 1 : end]
        if not values or "[" in values:
            raise ValidationError("needs values inside '[ ]'", field=name)
        return values, end + 1
    if tokens[index] == "]":
        raise ValidationError("']' without '['", field=name)
    return [tokens[index]], index + 1


def _parse_route(text: str) -> UnicastRoute:
    """``PREFIX [next-hop self|IP] [community …] [large-community …]
    [local-preference N] [med N]``, the attributes in any order."""
    tokens = _tokens(text)
    if not tokens or tokens[0] in ("[", "]"):
        raise ValidationError("a route needs a prefix", field="prefix")
    parts = _RouteParts(tokens[0])
    index = 1
    while index < len(tokens):
        name = tokens[index].lower()
        if name not in _ROUTE_ATTRIBUTES:
            raise ValidationError(
                f"not supported (a route takes {_SUPPORTED})", field=tokens[index]
            )
        values, index = _values(tokens, index + 1, name)
        parts.set(name, values)
    return parts.route()
