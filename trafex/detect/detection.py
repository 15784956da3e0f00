"""What a detector reports: frozen values, independent of how packets were parsed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

JSONValue = str | int | float | bool | None | list["JSONValue"] | dict[str, "JSONValue"]


@dataclass(frozen=True, slots=True)
class FlowDirection:
    """One direction of a flow: the packets from ``src:sport`` to ``dst:dport``."""

    src: str
    sport: int
    dst: str
    dport: int
    proto: str

    def to_dict(self) -> dict[str, JSONValue]:
        return {
            "src": self.src,
            "sport": self.sport,
            "dst": self.dst,
            "dport": self.dport,
            "proto": self.proto,
        }

    def reverse(self) -> FlowDirection:
        """The opposite direction of the same flow."""
        return FlowDirection(self.dst, self.dport, self.src, self.sport, self.proto)


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
    host: str | None = None

    def to_dict(self) -> dict[str, JSONValue]:
        """The detection as one flat JSON object (``--json`` prints one per line)."""
        out: dict[str, JSONValue] = {"detector": self.detector}
        if self.flow is not None:
            out["flow"] = self.flow.to_dict()
        if self.host is not None:
            out["host"] = self.host
        out.update(self.evidence.to_dict())
        out["ts"] = round(self.ts, 6)
        return out
