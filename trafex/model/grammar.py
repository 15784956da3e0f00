"""The FlowSpec text grammar: ExaBGP's one-line form, GoBGP's keywords, and back.

Accepted (one string, the way ExaBGP scripts and GoBGP's CLI write rules)::

    source 3001:1:a::10/128 destination 3001:4:b::10/128 redirect 6:302
    announce flow route destination 10.0.0.1/32 protocol [ =tcp =udp ]
        destination-port >=1024&<=2048 rate-limit 9600
    match { destination 10.0.0.1/32; tcp-flags [ syn ]; } then { discard; }
    match destination 2001:db8::/64 8 protocol tcp then action sample-terminal

Numeric components take ``== = != > >= < <= true false`` terms: ``&`` ANDs a term with
the previous one, several space-separated terms (or a ``[ … ]`` list) are ORed. A
``true``/``false`` term matches whatever the value, but still carries one on the wire
(part of the rule's identity): ``true`` is value 0, ``true:5`` value 5. Bitmask
components take ``=`` (all bits), ``!`` (not) and ``!=`` with TCP flags as GoBGP's letters
(``FSRPAUEC``) or names (``syn+ack``), fragments as ``dont-fragment is-fragment
first-fragment last-fragment not-a-fragment``.

:func:`render_rule` writes the canonical text; ``parse_rule(render_rule(r)) == r``.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from trafex.model import protocols
from trafex.model.actions import FlowActions, RouteTarget
from trafex.model.components import (
    COMPONENT,
    COMPONENTS,
    FRAGMENT_IS,
    FRAGMENT_NAMES,
    Component,
    ComponentKind,
    Family,
)
from trafex.model.errors import ValidationError
from trafex.model.flowspec import FlowMatch, FlowPrefix, FlowRule
from trafex.model.protocols import (
    ICMP_TYPES,
    TCP_FLAG_NAMES,
    tcp_flags_value,
)
from trafex.model.terms import BitmaskTerm, NumericTerm

# Every spelling of a component the grammar reads (from the component table).
_COMPONENT_WORDS = {word: c for c in COMPONENTS for word in (c.keyword, *c.aliases)}
ACTION_KEYWORDS = frozenset({"discard", "rate-limit", "redirect", "mark", "action"})
_NOISE = frozenset({"announce", "withdraw", "flow", "match", "then"})
_FAMILY_WORDS = frozenset({"ipv4", "ipv6", "inet", "inet6"})
_ALL_KEYWORDS = frozenset(_COMPONENT_WORDS) | ACTION_KEYWORDS
_STOP_WORDS = _ALL_KEYWORDS | _NOISE | _FAMILY_WORDS | {"route", "accept"}

_NUMERIC_TERM = re.compile(r"^(==|=|!=|>=|<=|>|<)?(.+)$")
_TRUE_FALSE_TERM = re.compile(r"^(true|false)(?::(.+))?$", re.IGNORECASE)
_BITMASK_TERM = re.compile(r"^(!=|=!|==|=|!)?(.+)$")


def tokenize(text: str) -> list[str]:
    """Split on blanks; braces and semicolons are noise, brackets are tokens."""
    spaced = re.sub(r"[{};]", " ", text)
    spaced = spaced.replace("[", " [ ").replace("]", " ] ")
    return spaced.split()


@dataclass
class _Parsed:
    family: Family | None = None
    prefixes: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    components: dict[str, list[str]] = field(default_factory=dict)
    actions: dict[str, list[str]] = field(default_factory=dict)


def _take_values(tokens: Sequence[str], start: int, keyword: str) -> tuple[list[str], int]:
    """The value tokens after a keyword: a ``[ … ]`` list, or tokens up to the next keyword."""
    if start < len(tokens) and tokens[start] == "[":
        try:
            end = tokens.index("]", start)
        except ValueError:
            raise ValidationError("unclosed '['", field=keyword) from None
        return list(tokens[start + 1 : end]), end + 1
    index = start
    while index < len(tokens) and tokens[index].lower() not in _STOP_WORDS:
        if tokens[index] in ("[", "]"):
            break
        index += 1
    return list(tokens[start:index]), index


def _split(text: str) -> _Parsed:
    tokens = tokenize(text)
    parsed = _Parsed()
    index = 0
    while index < len(tokens):
        token = tokens[index]
        word = token.lower()
        index += 1
        component = _COMPONENT_WORDS.get(word)
        if component is not None:
            index = _read_component(tokens, index, component, parsed)
        elif word in ACTION_KEYWORDS:
            index = _read_action(tokens, index, word, parsed)
        else:
            index = _read_other(tokens, index, token, parsed)
    return parsed


def _read_component(
    tokens: Sequence[str], index: int, component: Component, parsed: _Parsed
) -> int:
    """A prefix (and an IPv6 offset) or a component's terms, from ``tokens[index]``;
    the index after them."""
    name = component.keyword
    if name in parsed.prefixes or name in parsed.components:
        raise ValidationError("given twice", field=name)
    if component.kind is ComponentKind.PREFIX:
        if index >= len(tokens):
            raise ValidationError("needs a prefix", field=name)
        offset = None
        if index + 1 < len(tokens) and tokens[index + 1].isdigit():
            offset = tokens[index + 1]
        parsed.prefixes[name] = (tokens[index], offset)
        return index + (1 if offset is None else 2)
    values, index = _take_values(tokens, index, name)
    if not values:
        raise ValidationError("needs a value", field=name)
    parsed.components[name] = values
    return index


def _read_action(tokens: Sequence[str], index: int, word: str, parsed: _Parsed) -> int:
    if word in parsed.actions:
        raise ValidationError("given twice", field=word)
    if word == "discard":
        parsed.actions[word] = []
        return index
    if index >= len(tokens) or tokens[index].lower() in _ALL_KEYWORDS:
        raise ValidationError("needs a value", field=word)
    parsed.actions[word] = [tokens[index]]
    return index + 1


def _read_other(tokens: Sequence[str], index: int, token: str, parsed: _Parsed) -> int:
    """A family word, noise or ExaBGP's ``route NAME``; anything else is refused."""
    word = token.lower()
    if word in _FAMILY_WORDS:
        parsed.family = Family.IPV6 if word in ("ipv6", "inet6") else Family.IPV4
        return index
    if word in _NOISE:
        return index
    if word == "route":
        # ExaBGP's "route NAME" (config blocks): skip a name, but not a keyword or a
        # family word ("route ipv6 protocol =6", a rule without a prefix).
        named = index < len(tokens) and tokens[index].lower() not in _STOP_WORDS
        return index + 1 if named else index
    if word == "accept":
        raise ValidationError("accept is no action: give discard, rate-limit, redirect, mark")
    raise ValidationError(f"unknown keyword {token!r}")


def _int(text: str, what: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        raise ValidationError(f"{text!r} is not a number", field=what) from None


def _term_texts(values: Sequence[str], keyword: str) -> Iterator[tuple[str, bool]]:
    """Each term's text in ``values`` and whether it ANDs with the one before: ``&``
    inside a token ANDs, separate tokens OR, and a token that starts with ``&`` ANDs
    with the previous token's last term (ExaBGP writes ``>=1024 &<=2048``)."""
    seen = False
    for token in values:
        for position, part in enumerate(token.split("&")):
            if not part:
                if position == 0 and token.startswith("&") and seen:
                    continue
                raise ValidationError(f"empty term in {token!r}", field=keyword)
            yield part, position > 0 or (token.startswith("&") and seen)
            seen = True


def parse_numeric(
    values: Sequence[str], keyword: str, names: Callable[[str], int | None] | None = None
) -> tuple[NumericTerm, ...]:
    """``['>=1024&<=2048', '=8080']`` → terms (``&`` ANDs, separate tokens OR)."""
    terms: list[NumericTerm] = []
    for part, and_ in _term_texts(values, keyword):
        match = _TRUE_FALSE_TERM.match(part) or _NUMERIC_TERM.match(part)
        if match is None:  # pragma: no cover - the pattern matches any non-empty text
            raise ValidationError(f"bad term {part!r}", field=keyword)
        op, value_text = (match.group(1) or "=").lower(), match.group(2)
        if value_text is None:  # a bare true/false
            value = 0
        else:
            named = names(value_text.lower()) if names else None
            value = named if named is not None else _int(value_text, keyword)
        terms.append(NumericTerm.of(op, value, and_=and_))
    return tuple(terms)


def _tcp_flags_value(text: str) -> int:
    parts = re.split(r"[+|,]", text.lower())
    if all(p in TCP_FLAG_NAMES for p in parts):
        value = 0
        for part in parts:
            value |= TCP_FLAG_NAMES[part]
        return value
    letters = tcp_flags_value(text)
    return letters if letters is not None else _int(text, "tcp-flags")


def _fragment_value(text: str) -> int:
    value = 0
    for part in re.split(r"[+|,]", text.lower()):
        if part in FRAGMENT_NAMES:
            value |= FRAGMENT_NAMES[part]
        else:
            value |= _int(part, "fragment")
    return value


def parse_bitmask(values: Sequence[str], keyword: str) -> tuple[BitmaskTerm, ...]:
    """``['=S&!A', 'F']`` or ``['!is-fragment']`` → terms."""
    terms: list[BitmaskTerm] = []
    for part, and_ in _term_texts(values, keyword):
        if keyword == "fragment" and part.lower() == "not-a-fragment":
            terms.append(BitmaskTerm(FRAGMENT_IS, not_=True, and_=and_))
            continue
        match = _BITMASK_TERM.match(part)
        if match is None:  # pragma: no cover - the pattern matches any non-empty text
            raise ValidationError(f"bad term {part!r}", field=keyword)
        op, value_text = match.group(1) or "", match.group(2)
        parse_value = _tcp_flags_value if keyword == "tcp-flags" else _fragment_value
        terms.append(
            BitmaskTerm(
                parse_value(value_text),
                match="=" in op,
                not_="!" in op,
                and_=and_,
            )
        )
    return tuple(terms)


def _value_names(keyword: str, family: Family) -> Callable[[str], int | None] | None:
    if keyword == "protocol":
        return protocols.PROTOCOLS.get
    if keyword == "icmp-type":
        return ICMP_TYPES[family.version].get
    return None


def parse_component(keyword: str, values: Sequence[str], family: Family) -> tuple[object, ...]:
    """Parse one component's value tokens (used by the text grammar and CLI options)."""
    if COMPONENT[keyword].bitmask:
        return parse_bitmask(values, keyword)
    return parse_numeric(values, keyword, _value_names(keyword, family))


def _prefix(name: str, prefix_text: str, offset: str | None) -> FlowPrefix:
    """One prefix component; a bare address is a host prefix of its own family."""
    text = prefix_text
    if "/" not in prefix_text:
        try:
            address = ipaddress.ip_address(prefix_text)
        except ValueError:
            raise ValidationError(f"not a prefix: {prefix_text!r}", field=name) from None
        text = f"{prefix_text}/{address.max_prefixlen}"
    if offset is not None:
        text = f"{text}/{offset}"
    return FlowPrefix.parse(text, field_name=name)


def _parse_prefixes(parsed: _Parsed) -> dict[str, FlowPrefix]:
    """Every prefix, each checked on its own first, so that an error names the bad
    parts (all of them) rather than a family mix they only seem to make."""
    out: dict[str, FlowPrefix] = {}
    errors: list[ValidationError] = []
    for name, (prefix_text, offset) in parsed.prefixes.items():
        try:
            out[name] = _prefix(name, prefix_text, offset)
        except ValidationError as error:
            errors.append(error)
    if errors:
        first, *others = errors
        rest = "".join(f"; {other}" for other in others)
        raise ValidationError(first.message + rest, field=first.field)
    return out


def _infer_family(parsed: _Parsed, prefixes: dict[str, FlowPrefix], hint: Family | None) -> Family:
    families = set()
    for name, prefix in prefixes.items():
        families.add(prefix.family)
        if len(families) > 1:
            raise ValidationError("mixes IPv4 and IPv6 prefixes", field=name)
    explicit = parsed.family or hint
    if families:
        (family,) = families
        if explicit is not None and explicit is not family:
            raise ValidationError(f"{explicit.value} rule with {family.value} prefixes")
        return family
    if explicit is not None:
        return explicit
    return Family.IPV6 if "flow-label" in parsed.components else Family.IPV4


def _build_match(parsed: _Parsed, hint: Family | None) -> FlowMatch:
    prefixes = _parse_prefixes(parsed)
    family = _infer_family(parsed, prefixes, hint)
    kwargs: dict[str, object] = dict(prefixes)
    for keyword, values in parsed.components.items():
        kwargs[COMPONENT[keyword].attribute] = parse_component(keyword, values, family)
    return FlowMatch(family, **kwargs)  # type: ignore[arg-type]


def parse_rate(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValidationError(f"{text!r} is not a rate in bytes/s", field="rate-limit") from None


def parse_traffic_action(text: str) -> tuple[bool, bool]:
    """``sample``, ``terminal`` or ``sample-terminal`` → (sample, terminal)."""
    words = set(re.split(r"[-+,]", text.lower()))
    if not words <= {"sample", "terminal"}:
        raise ValidationError(f"{text!r}: use sample, terminal or sample-terminal", "action")
    return "sample" in words, "terminal" in words


def parse_dscp(text: str) -> int:
    return _int(text, "mark")


def _build_actions(parsed: _Parsed) -> FlowActions:
    actions = parsed.actions
    rate: float | None = None
    if "discard" in actions:
        if "rate-limit" in actions:
            raise ValidationError("discard and rate-limit are both a traffic-rate", "discard")
        rate = 0.0
    elif "rate-limit" in actions:
        rate = parse_rate(actions["rate-limit"][0])
    redirect = RouteTarget.parse(actions["redirect"][0]) if "redirect" in actions else None
    mark = parse_dscp(actions["mark"][0]) if "mark" in actions else None
    sample, terminal = (
        parse_traffic_action(actions["action"][0]) if "action" in actions else (False, False)
    )
    return FlowActions(rate=rate, redirect=redirect, mark=mark, sample=sample, terminal=terminal)


def parse_rule(text: str, family: Family | None = None) -> FlowRule:
    """A whole rule (match and actions) from one string."""
    parsed = _split(text)
    return FlowRule(_build_match(parsed, family), _build_actions(parsed))


def parse_match(text: str, family: Family | None = None) -> FlowMatch:
    """Only the match; any actions in the text are ignored (for deleting by match)."""
    return _build_match(_split(text), family)


# The text and JSON of a rule live in trafex.model.render; the grammar is the face of
# both directions, so importers of render_rule & co. may keep importing them from here.
from trafex.model.render import (  # noqa: E402
    component_texts,
    format_rate,
    render_actions,
    render_match,
    render_rule,
    rule_dict,
)

__all__ = [
    "ACTION_KEYWORDS",
    "FRAGMENT_NAMES",
    "component_texts",
    "format_rate",
    "parse_bitmask",
    "parse_component",
    "parse_dscp",
    "parse_match",
    "parse_numeric",
    "parse_rate",
    "parse_rule",
    "parse_traffic_action",
    "render_actions",
    "render_match",
    "render_rule",
    "rule_dict",
    "tokenize",
]
