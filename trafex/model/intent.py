"""Intents: a rule or a route with who asked for it, why, and until when."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, replace

from trafex.model.flowspec import FlowRule
from trafex.model.route import UnicastRoute

ORIGIN_CLI = "cli"
ORIGIN_API = "api"


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

    @property
    def key(self) -> str:
        return self.rule.key


@dataclass(frozen=True, slots=True)
class RouteIntent:
    meta: IntentMeta
    route: UnicastRoute

    @property
    def key(self) -> str:
        return self.route.key


Intent = FlowIntent | RouteIntent
