"""Retransmit detector: a TCP flow direction that retransmits ``threshold`` segments.

The counting is the flow table's (Wireshark's ``tcp.analysis.retransmission``
semantics, per direction of the 4-tuple, kept across a reuse of the ports);
this detector only decides when to speak: once per direction, when its count
reaches the threshold.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from trafex.detect.confkeys import Table, check_keys, get_int
from trafex.detect.detection import Detection, FlowDirection, JSONValue
from trafex.detect.detector import NOTHING, DetectorBase, Interests
from trafex.detect.packet import PROTO_NAMES, PacketView, addr_to_str

NAME = "retransmit"


@dataclass(frozen=True, slots=True)
class RetransmitConfig:
    threshold: int = 3  # at most 65535: the flow table saturates its counts there

    @classmethod
    def from_table(cls, table: Table, where: str = f"detect.{NAME}") -> RetransmitConfig:
        check_keys(table, {"threshold"}, where)
        return cls(threshold=get_int(table, "threshold", where, 3, minimum=1, maximum=0xFFFF))


@dataclass(frozen=True, slots=True)
class RetransmitEvidence:
    retransmits: int
    threshold: int

    def to_dict(self) -> dict[str, JSONValue]:
        return {"retransmits": self.retransmits, "threshold": self.threshold}


class RetransmitDetector(DetectorBase):
    """Fires once per flow direction when its retransmissions reach the threshold."""

    name = NAME
    interests = Interests(retransmissions=True)

    def __init__(self, config: RetransmitConfig) -> None:
        self.config = config

    def on_retransmission(self, pkt: PacketView, count: int) -> Sequence[Detection]:
        if count != self.config.threshold:
            return NOTHING
        flow = FlowDirection(
            src=addr_to_str(pkt.src),
            sport=pkt.sport,
            dst=addr_to_str(pkt.dst),
            dport=pkt.dport,
            proto=PROTO_NAMES.get(pkt.proto, str(pkt.proto)),
        )
        evidence = RetransmitEvidence(retransmits=count, threshold=self.config.threshold)
        return (Detection(detector=NAME, ts=pkt.ts / 1e9, evidence=evidence, flow=flow),)


def from_config(table: Table) -> RetransmitDetector:
    return RetransmitDetector(RetransmitConfig.from_table(table))
