"""Intents: a rule or a route with who asked for it, why, and until when."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field, replace

from trafex.model.flowspec import FlowRule
from trafex.model.grammar import render_rule
from trafex.model.route import UnicastRoute

ORIGIN_CLI = "cli"
ORIGIN_API = "api"
#: The longest TTL an intent may have: 10 years, in seconds (trafexd refuses longer).
MAX_TTL = 10 * 365 * 86400


def new_id(kind: str) -> str:
    """A short random id: ``fs-`` for FlowSpec rules, ``rt-`` for routes."""
    return f"{kind}-{secrets.token_hex(6)}"


@dataclass(frozen=True, slots=True)
class IntentMeta:
    """Bookkeeping shared by every intent. Times are UNIX seconds."""

    id: str
    reason: str
    origin: str
    created_at: float
    updated_at: float
    expires_at: float | None = None

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and self.expires_at <= now

    def refreshed(self, *, now: float, ttl: float | None, reason: str, origin: str) -> IntentMeta:
        """The same intent asked for again: keep its id and creation time."""
        return replace(
            self,
            updated_at=now,
            expires_at=now + ttl if ttl else None,
            reason=reason or self.reason,
            origin=origin or self.origin,
        )


@dataclass(frozen=True, slots=True)
class FlowIntent:
    meta: IntentMeta
    rule: FlowRule
    # The rule's canonical text, rendered on first use: the store, the API's answer
    # and the event for one change all need it.
    _text: str | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def key(self) -> str:
        return self.rule.key

    @property
    def text(self) -> str:
        """The rule in trafex's one-line grammar (:func:`render_rule`), rendered once."""
        if self._text is None:
            object.__setattr__(self, "_text", render_rule(self.rule))
        assert self._text is not None
        return self._text


@dataclass(frozen=True, slots=True)
class RouteIntent:
    meta: IntentMeta
    route: UnicastRoute

    @property
    def key(self) -> str:
        return self.route.key


Intent = FlowIntent | RouteIntent
