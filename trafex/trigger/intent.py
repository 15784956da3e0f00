"""What the trigger policy asks trafexd for: a rule or a route, with TTL, reason, origin.

The rule or route is the model's own value (:class:`~trafex.model.flowspec.FlowRule`,
:class:`~trafex.model.route.UnicastRoute`), so it was validated when it was built,
exactly as trafexd validates it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from trafex.model.flowspec import FlowRule
from trafex.model.render import render_rule, rule_dict
from trafex.model.route import UnicastRoute, route_dict, route_text


@dataclass(frozen=True, slots=True)
class TriggerIntent:
    """One intent to send: ``item`` is a FlowSpec rule or a unicast route.

    ``ttl`` None: no expiry. ``origin`` is the detector's name. ``refresh``: the same
    intent was sent before and is sent again to push its expiry back.
    """

    item: FlowRule | UnicastRoute
    ttl: float | None
    reason: str
    origin: str
    refresh: bool = False

    @property
    def kind(self) -> str:
        return "flow" if isinstance(self.item, FlowRule) else "route"

    @property
    def key(self) -> str:
        """The intent's identity: the route's prefix or the rule's canonical NLRI."""
        return f"{self.kind}:{self.item.key}"

    @property
    def ttl_seconds(self) -> int:
        """The TTL as trafex's API carries it (whole seconds, 0: never expires)."""
        return max(1, round(self.ttl)) if self.ttl else 0

    def text(self) -> str:
        """One line: the rule in trafex's grammar, or the route with its attributes."""
        item = self.item
        if isinstance(item, FlowRule):
            return render_rule(item)
        return route_text(item)

    def line(self) -> str:
        """The ``--dry-run`` line: ``intent flow|route <text> ttl=… origin=…``."""
        ttl = f"{self.ttl_seconds}s" if self.ttl_seconds else "none"
        refresh = " refresh" if self.refresh else ""
        return f"intent {self.kind} {self.text()} ttl={ttl} origin={self.origin}{refresh}"

    def to_dict(self) -> dict[str, Any]:
        """The intent as JSON: its kind, the rule's or route's own JSON (the shape
        ``trafex-ctl --json`` gives them), and the TTL, reason, origin and refresh."""
        item = self.item
        body = rule_dict(item) if isinstance(item, FlowRule) else route_dict(item)
        return {
            "kind": self.kind,
            **body,
            "ttl": self.ttl_seconds,
            "reason": self.reason,
            "origin": self.origin,
            "refresh": self.refresh,
        }
