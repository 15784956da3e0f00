"""The Detector protocol and its do-nothing base class."""

from __future__ import annotations

from trafex.detect.detectors.base import NOTHING, Detector, DetectorBase, Interests
from trafex.detect.packet import PacketView


def test_base_hooks_do_nothing() -> None:
    """Every hook of DetectorBase returns no detection and wants nothing by default."""
    det: Detector = DetectorBase()
    pkt = PacketView()
    assert det.on_packet(pkt) == det.on_payload(pkt, b"") == NOTHING
    assert det.on_retransmission(pkt, 1) == det.on_tick(0) == NOTHING
    det.reload()
    assert det.interests == Interests()
    assert not det.interests.packets and not det.interests.udp_ports
