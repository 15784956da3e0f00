"""Retransmit detector: a TCP flow direction that retransmits ``threshold`` segments.

The counting is the flow table's (Wireshark's ``tcp.analysis.retransmission``
semantics, per direction of the 4-tuple, kept across a reuse of the ports);
this detector only decides when to speak: once per direction, when its count
reaches the threshold, and again (``"repeat": true``) at most every
``repeat_after`` seconds of packet time while the direction keeps retransmitting,
so that a trigger policy can refresh its intent before the intent's TTL runs out.
``repeat_after = 0`` reports each direction once.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated

from trafex.config import Range
from trafex.detect.detection import Detection, FlowDirection, JSONValue
from trafex.detect.detectors.base import NOTHING, DetectorBase, Interests
from trafex.detect.detectors.spec import (
    Aim,
    DetectorSpec,
    Target,
    TriggerDefaults,
    equals,
    family_of,
    host_prefix,
    read_dataclass,
)
from trafex.detect.packet import PacketView, ip_of
from trafex.model.flowspec import FlowActions, FlowMatch, RouteTarget

NAME = "retransmit"


@dataclass(frozen=True, slots=True)
class RetransmitConfig:
    """``[detect.retransmit]``."""

    # At most 65535: the flow table saturates its counts there.
    threshold: Annotated[int, Range(1, 0xFFFF)] = 3
    # Seconds of packet time between reports of one direction; 0: once.
    repeat_after: Annotated[float, Range(0)] = 60.0
    # Directions remembered for repeat_after (the oldest are forgotten).
    max_reported: Annotated[int, Range(1)] = 100_000


@dataclass(frozen=True, slots=True)
class RetransmitEvidence:
    retransmits: int
    threshold: int
    repeat: bool = False  # reported before; still retransmitting

    def to_dict(self) -> dict[str, JSONValue]:
        return {"retransmits": self.retransmits, "threshold": self.threshold, "repeat": self.repeat}


class RetransmitDetector(DetectorBase):
    """Fires once per flow direction when its retransmissions reach the threshold, then
    at most every ``repeat_after`` seconds while it keeps retransmitting."""

    name = NAME
    interests = Interests(retransmissions=True)

    def __init__(self, config: RetransmitConfig) -> None:
        self.config = config
        self._repeat_ns = int(config.repeat_after * 1e9)
        # Direction → packet time (ns) of its last report, oldest first.
        self._reported: OrderedDict[tuple[bytes, int, bytes, int], int] = OrderedDict()

    def on_retransmission(self, pkt: PacketView, count: int) -> Sequence[Detection]:
        threshold = self.config.threshold
        if count < threshold or (count > threshold and not self._repeat_ns):
            return NOTHING
        key = (bytes(pkt.src), pkt.sport, bytes(pkt.dst), pkt.dport)
        repeat = count > threshold
        if repeat:
            last = self._reported.get(key)
            if last is not None and pkt.ts - last < self._repeat_ns:
                return NOTHING
        if self._repeat_ns:
            self._reported[key] = pkt.ts
            self._reported.move_to_end(key)
            if len(self._reported) > self.config.max_reported:
                self._reported.popitem(last=False)
        flow = FlowDirection(ip_of(pkt.src), pkt.sport, ip_of(pkt.dst), pkt.dport, pkt.proto)
        evidence = RetransmitEvidence(retransmits=count, threshold=threshold, repeat=repeat)
        return (Detection(detector=NAME, ts=pkt.ts / 1e9, evidence=evidence, flow=flow),)


def targets(detection: Detection, aim: Aim) -> list[Target]:
    """The flagged direction: its destination's host route, or a rule from source to
    destination with the protocol and ports ``aim.match`` asks for; ``aim.both``: the
    reverse direction too (the talk's demo redirects both)."""
    flow = detection.flow
    if flow is None:
        return []
    evidence = detection.evidence
    count = evidence.retransmits if isinstance(evidence, RetransmitEvidence) else "?"
    reason = f"retransmit: {count} retransmits {flow.src}:{flow.sport} -> {flow.dst}:{flow.dport}"
    directions = [(flow, reason)]
    if aim.both:
        directions.append((flow.reverse(), reason + " (reverse direction)"))
    if aim.route:
        return [Target(f.dst, why) for f, why in directions]
    return [Target(_match(f, aim.match), why) for f, why in directions]


def _match(flow: FlowDirection, wanted: frozenset[str]) -> FlowMatch:
    return FlowMatch(
        family_of(flow.src),
        destination=host_prefix(flow.dst),
        source=host_prefix(flow.src),
        protocol=equals(flow.proto) if "protocol" in wanted else (),
        source_port=equals(flow.sport) if "source-port" in wanted else (),
        destination_port=equals(flow.dport) if "destination-port" in wanted else (),
    )


SPEC = DetectorSpec(
    name=NAME,
    read=read_dataclass(RetransmitConfig),
    build=RetransmitDetector,
    trigger=TriggerDefaults(
        action="flowspec",
        ttl=600.0,
        # The talk's analysis VRF: redirect both directions to route-target 6:302.
        flow_actions=FlowActions(redirect=RouteTarget.parse("6:302")),
        match=("protocol",),
        match_choices=frozenset({"protocol", "source-port", "destination-port"}),
        both_directions=True,
        both_with=frozenset({"route", "flowspec"}),
    ),
    targets=targets,
)
