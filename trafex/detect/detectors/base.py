"""The plug-in point: one :class:`Detector` protocol that every detector implements.

A detector says what it needs (:class:`Interests`) and the sensor calls it only
for that: every IP packet, the payload of UDP/TCP packets on some ports, or the
TCP segments that Wireshark's sequence analysis flags as retransmissions. Each
hook returns the detections it makes (usually the shared empty tuple). A new
detector (TTL priority, plain-HTTP requests, ...) is one module with one class
and a ``from_config`` function registered in
:mod:`trafex.detect.detectors.registry`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from trafex.detect.detection import Detection
from trafex.detect.packet import PacketView

NOTHING: tuple[Detection, ...] = ()


@dataclass(frozen=True, slots=True)
class Interests:
    """What a detector wants to see.

    ``packets``: every IP packet's header fields (costly: one call per packet).
    ``retransmissions``: TCP segments flagged as retransmissions.
    ``udp_ports`` / ``tcp_ports``: payload of packets from or to these ports.
    """

    packets: bool = False
    retransmissions: bool = False
    udp_ports: frozenset[int] = field(default_factory=frozenset)
    tcp_ports: frozenset[int] = field(default_factory=frozenset)


class Detector(Protocol):
    """A detector: small, configured from one TOML table, pure apart from its state."""

    @property
    def name(self) -> str:
        """The detector's name, also its config table name (``[detect.<name>]``)."""
        ...

    @property
    def interests(self) -> Interests: ...

    def on_packet(self, pkt: PacketView) -> Sequence[Detection]:
        """Called for every IP packet when ``interests.packets``."""
        ...

    def on_payload(self, pkt: PacketView, payload: bytes) -> Sequence[Detection]:
        """Called with the captured L4 payload for packets on ``udp_ports``/``tcp_ports``."""
        ...

    def on_retransmission(self, pkt: PacketView, count: int) -> Sequence[Detection]:
        """Called for each retransmitted TCP segment; ``count`` is its direction's total."""
        ...

    def on_tick(self, now_ns: int) -> Sequence[Detection]:
        """Called now and then with the current time (packet time for files)."""
        ...

    def reload(self) -> None:
        """Re-read external inputs (blocklist files); called on SIGHUP."""
        ...


class DetectorBase:
    """Convenience base: hooks that do nothing, so a detector overrides only its own."""

    name = "base"
    interests = Interests()

    def on_packet(self, pkt: PacketView) -> Sequence[Detection]:
        return NOTHING

    def on_payload(self, pkt: PacketView, payload: bytes) -> Sequence[Detection]:
        return NOTHING

    def on_retransmission(self, pkt: PacketView, count: int) -> Sequence[Detection]:
        return NOTHING

    def on_tick(self, now_ns: int) -> Sequence[Detection]:
        return NOTHING

    def reload(self) -> None:
        return None
