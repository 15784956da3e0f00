"""Guardrails: rules that are valid FlowSpec but that trafexd refuses to send. Pure.

``max_terms_per_component`` (default 5): FRR 8.4 answers a component with more than
five operator/value terms with an UPDATE-error NOTIFICATION, which resets the session
and drops every rule on it. Set 0 to lift the limit for receivers that accept more.
"""

from __future__ import annotations

from trafex.model.errors import ValidationError
from trafex.model.flowspec import ATTRIBUTE, FlowRule

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
