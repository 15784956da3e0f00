"""What the trigger policy asks trafexd for: a rule or a route, with TTL, reason, origin.

The rule or route is the model's own value (:class:`~trafex.model.flowspec.FlowRule`,
:class:`~trafex.model.route.UnicastRoute`), so it was validated when it was built,
exactly as trafexd validates it.
"""

from __future__ import annotations

from dataclasses import dataclass

from trafex.detect.detection import JSONValue
from trafex.model.flowspec import FlowRule
from trafex.model.grammar import component_texts, render_actions, render_rule
from trafex.model.route import UnicastRoute, format_community, format_large_community


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

    def to_dict(self) -> dict[str, JSONValue]:
        out: dict[str, JSONValue] = {"kind": self.kind}
        item = self.item
        if isinstance(item, FlowRule):
            out["text"] = render_rule(item)
            out["family"] = item.family.value
            out["match"] = dict(component_texts(item.match).items())
            out["actions"] = render_actions(item.actions)
        else:
            out["prefix"] = str(item.prefix)
            out["next_hop"] = str(item.next_hop) if item.next_hop is not None else "self"
            out["communities"] = [format_community(c) for c in item.communities]
            if item.large_communities:
                out["large_communities"] = [
                    format_large_community(c) for c in item.large_communities
                ]
            if item.local_preference is not None:
                out["local_preference"] = item.local_preference
            if item.med is not None:
                out["med"] = item.med
        out["ttl"] = self.ttl_seconds
        out["reason"] = self.reason
        out["origin"] = self.origin
        out["refresh"] = self.refresh
        return out


def route_text(route: UnicastRoute) -> str:
    """``3001:10:66::5/128 next-hop self community [65000:666]`` (ExaBGP's words)."""
    parts = [str(route.prefix), "next-hop", str(route.next_hop) if route.next_hop else "self"]
    if route.communities:
        parts.append("community [" + " ".join(format_community(c) for c in route.communities) + "]")
    if route.large_communities:
        parts.append(
            "large-community ["
            + " ".join(format_large_community(c) for c in route.large_communities)
            + "]"
        )
    if route.local_preference is not None:
        parts.append(f"local-preference {route.local_preference}")
    if route.med is not None:
        parts.append(f"med {route.med}")
    return " ".join(parts)
