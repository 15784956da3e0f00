"""How trafex-ctl shows stored intents: their stable JSON shape and plain tables."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from trafex.model.intent import FlowIntent, Intent, IntentMeta
from trafex.model.render import rule_dict
from trafex.model.route import route_dict


def iso(seconds: float | None) -> str | None:
    """UNIX seconds as an ISO time in UTC; None (and 0: never set) as None."""
    if not seconds:
        return None
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _meta_dict(meta: IntentMeta) -> dict[str, Any]:
    return {
        "id": meta.id,
        "reason": meta.reason,
        "origin": meta.origin,
        "created_at": iso(meta.created_at),
        "updated_at": iso(meta.updated_at),
        "expires_at": iso(meta.expires_at),
    }


def intent_dict(intent: Intent) -> dict[str, Any]:
    """The stable JSON shape of a stored rule or route: its id, the rule's or route's
    own JSON (:func:`~trafex.model.grammar.rule_dict`,
    :func:`~trafex.model.route.route_dict`) and its meta."""
    meta = _meta_dict(intent.meta)
    if isinstance(intent, FlowIntent):
        body = rule_dict(intent.rule, intent.text)
    else:
        body = route_dict(intent.route)
    return {"id": meta.pop("id"), **body, **meta}


def expires_in(expires_at: str | None) -> str:
    if expires_at is None:
        return "-"
    left = datetime.fromisoformat(expires_at.replace("Z", "+00:00")).timestamp() - time.time()
    if left <= 0:
        return "now"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if left >= size:
            return f"{left / size:.0f}{unit}"
    return f"{left:.0f}s"


def table(rows: Sequence[Sequence[str]], header: Sequence[str]) -> str:
    if not rows:
        return "(none)"
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip()]
    for row in rows:
        lines.append("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return "\n".join(lines)
