"""What a detector reports: frozen, typed values, independent of how packets were parsed.

Addresses are :mod:`ipaddress` values and protocols their numbers, so what consumes a
detection (the trigger's mapping, a metric) never parses text; :meth:`Detection.to_dict`
writes them as text (``"proto": "tcp"``) for people and JSON lines.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Protocol

from trafex.model.protocols import protocol_name

JSONValue = str | int | float | bool | None | list["JSONValue"] | dict[str, "JSONValue"]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True, slots=True)
class FlowDirection:
    """One direction of a flow: the packets from ``src:sport`` to ``dst:dport`` of IP
    protocol number ``proto``."""

    src: IPAddress
    sport: int
    dst: IPAddress
    dport: int
    proto: int

    def to_dict(self) -> dict[str, JSONValue]:
        return {
            "src": str(self.src),
            "sport": self.sport,
            "dst": str(self.dst),
            "dport": self.dport,
            "proto": protocol_name(self.proto),
        }

    def reverse(self) -> FlowDirection:
        """The opposite direction of the same flow."""
        return FlowDirection(self.dst, self.dport, self.src, self.sport, self.proto)

    def __str__(self) -> str:
        """``tcp 3001:1:a::10:5000 -> 3001:4:b::10:80``."""
        return f"{protocol_name(self.proto)} {self.src}:{self.sport} -> {self.dst}:{self.dport}"


class Evidence(Protocol):
    """Why a detector fired; each detector has its own frozen evidence type."""

    def to_dict(self) -> dict[str, JSONValue]:
        """The evidence as JSON-ready key/values, merged into the detection's object."""
        ...


@dataclass(frozen=True, slots=True)
class Detection:
    """One finding: which detector, when (seconds since the epoch), what and why.

    ``flow`` is set when the finding is about one flow direction, ``host`` when it
    is about one address (a flood's target, a DNS client).
    """

    detector: str
    ts: float
    evidence: Evidence
    flow: FlowDirection | None = None
    host: IPAddress | None = None

    def to_dict(self) -> dict[str, JSONValue]:
        """The detection as one flat JSON object (``--json`` prints one per line)."""
        out: dict[str, JSONValue] = {"detector": self.detector}
        if self.flow is not None:
            out["flow"] = self.flow.to_dict()
        if self.host is not None:
            out["host"] = str(self.host)
        out.update(self.evidence.to_dict())
        out["ts"] = round(self.ts, 6)
        return out
