"""A FlowSpec rule as text and as JSON: the canonical one-line form that
:mod:`trafex.model.grammar` parses back, and the stable JSON of ``trafex-ctl --json``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from trafex.model.actions import FlowActions
from trafex.model.components import (
    FRAGMENT_DONT,
    FRAGMENT_FIRST,
    FRAGMENT_IS,
    FRAGMENT_LAST,
    FRAGMENT_NAMES,
    FRAGMENT_ORDER,
    TERM_COMPONENTS,
    Component,
    Family,
)
from trafex.model.flowspec import FlowMatch, FlowRule
from trafex.model.protocols import PROTOCOL_NAMES, tcp_flags_text
from trafex.model.terms import BitmaskTerm, NumericTerm


def _render_numeric(keyword: str, terms: Sequence[NumericTerm], family: Family) -> str:
    names: dict[int, str] = {}
    if keyword == "protocol":
        names = PROTOCOL_NAMES
    branches: list[str] = []
    for term in terms:
        if term.op in ("true", "false"):
            text = f"{term.op}:{term.value}" if term.value else term.op
        else:
            text = f"{term.op}{names.get(term.value, term.value)}"
        if term.and_ and branches:
            branches[-1] += "&" + text
        else:
            branches.append(text)
    return branches[0] if len(branches) == 1 else "[ " + " ".join(branches) + " ]"


def _render_flags(value: int) -> str:
    if value and value <= 0xFF:
        return tcp_flags_text(value)
    return hex(value)


def _render_fragment(value: int) -> str:
    names = [n for n in FRAGMENT_ORDER if value & FRAGMENT_NAMES[n]]
    rest = value & ~(FRAGMENT_DONT | FRAGMENT_IS | FRAGMENT_FIRST | FRAGMENT_LAST)
    if rest or not names:
        names.append(hex(rest))
    return "+".join(names)


def _render_bitmask(keyword: str, terms: Sequence[BitmaskTerm]) -> str:
    branches: list[str] = []
    for term in terms:
        op = ("!" if term.not_ else "") + ("=" if term.match else "")
        value = (
            _render_flags(term.value) if keyword == "tcp-flags" else _render_fragment(term.value)
        )
        text = op + value
        if term.and_ and branches:
            branches[-1] += "&" + text
        else:
            branches.append(text)
    return branches[0] if len(branches) == 1 else "[ " + " ".join(branches) + " ]"


def _render_terms(component: Component, terms: tuple[Any, ...], family: Family) -> str:
    """One component's terms (of the kind the component holds) as text."""
    if component.bitmask:
        return _render_bitmask(component.keyword, terms)
    return _render_numeric(component.keyword, terms, family)


def render_match(match: FlowMatch) -> str:
    parts: list[str] = []
    if match.destination is None and match.source is None:
        parts.append(match.family.value)
    parts.extend(f"{keyword} {text}" for keyword, text in component_texts(match).items())
    return " ".join(parts)


def format_rate(rate: float) -> str:
    return str(int(rate)) if rate.is_integer() else repr(rate)


def render_actions(actions: FlowActions) -> str:
    parts: list[str] = []
    if actions.discard:
        parts.append("discard")
    elif actions.rate is not None:
        parts.append(f"rate-limit {format_rate(actions.rate)}")
    if actions.redirect is not None:
        parts.append(f"redirect {actions.redirect}")
    if actions.mark is not None:
        parts.append(f"mark {actions.mark}")
    if actions.sample or actions.terminal:
        words = [w for w, on in (("sample", actions.sample), ("terminal", actions.terminal)) if on]
        parts.append("action " + "-".join(words))
    return " ".join(parts)


def render_rule(rule: FlowRule) -> str:
    """The canonical one-line text of a rule (ExaBGP's grammar, which trafex parses)."""
    return f"{render_match(rule.match)} {render_actions(rule.actions)}"


def component_texts(match: FlowMatch) -> dict[str, str]:
    """Each present component's canonical text, by keyword, in type order."""
    out: dict[str, str] = {}
    if match.destination is not None:
        out["destination"] = str(match.destination)
    if match.source is not None:
        out["source"] = str(match.source)
    for component in TERM_COMPONENTS:
        terms = getattr(match, component.attribute)
        if terms:
            out[component.keyword] = _render_terms(component, terms, match.family)
    return out


def rule_dict(rule: FlowRule, text: str | None = None) -> dict[str, Any]:
    """The rule as JSON (the stable shape of ``trafex-ctl --json``): its family, its
    canonical ``text`` (given when already rendered), each component's text, its
    actions and its NLRI in hex."""
    actions = rule.actions
    rate = None if actions.rate is None or actions.discard else float(format_rate(actions.rate))
    return {
        "family": rule.family.value,
        "text": render_rule(rule) if text is None else text,
        "match": component_texts(rule.match),
        "actions": {
            "discard": actions.discard,
            "rate_limit": rate,
            "redirect": str(actions.redirect) if actions.redirect else None,
            "mark": actions.mark,
            "sample": actions.sample,
            "terminal": actions.terminal,
        },
        "nlri": rule.match.encode().hex(),
    }
