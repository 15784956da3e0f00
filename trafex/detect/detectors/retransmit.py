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

from trafex.detect.confkeys import Table, check_keys, get_float, get_int
from trafex.detect.detection import Detection, FlowDirection, JSONValue
from trafex.detect.detectors.base import NOTHING, DetectorBase, Interests
from trafex.detect.packet import PROTO_NAMES, PacketView, addr_to_str

NAME = "retransmit"


@dataclass(frozen=True, slots=True)
class RetransmitConfig:
    threshold: int = 3  # at most 65535: the flow table saturates its counts there
    repeat_after: float = 60.0  # s of packet time between reports of one direction; 0: once
    max_reported: int = 100_000  # directions remembered for repeat_after (oldest forgotten)

    @classmethod
    def from_table(cls, table: Table, where: str = f"detect.{NAME}") -> RetransmitConfig:
        check_keys(table, {"threshold", "repeat_after", "max_reported"}, where)
        return cls(
            threshold=get_int(table, "threshold", where, 3, minimum=1, maximum=0xFFFF),
            repeat_after=get_float(table, "repeat_after", where, 60.0),
            max_reported=get_int(table, "max_reported", where, 100_000, minimum=1),
        )


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
        flow = FlowDirection(
            src=addr_to_str(pkt.src),
            sport=pkt.sport,
            dst=addr_to_str(pkt.dst),
            dport=pkt.dport,
            proto=PROTO_NAMES.get(pkt.proto, str(pkt.proto)),
        )
        evidence = RetransmitEvidence(retransmits=count, threshold=threshold, repeat=repeat)
        return (Detection(detector=NAME, ts=pkt.ts / 1e9, evidence=evidence, flow=flow),)


def from_config(table: Table) -> RetransmitDetector:
    return RetransmitDetector(RetransmitConfig.from_table(table))
