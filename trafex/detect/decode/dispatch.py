"""The end of decoding: the detector calls, and the one place a PacketView is filled.

Detectors are called only for what they asked for (see
:class:`~trafex.detect.detectors.base.Interests`); the shared
:class:`~trafex.detect.packet.PacketView` is filled (in
:meth:`DetectorCalls.packet`) only then, so the common packet allocates nothing.
The IP and link layers of the decoder (:mod:`~trafex.detect.decode.network`,
:mod:`~trafex.detect.decode.links`) build on this class.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from trafex.detect.detection import Detection
from trafex.detect.detectors.base import Detector
from trafex.detect.packet import PacketView

PayloadHook = Callable[[PacketView, bytes], Sequence[Detection]]
NO_PORTS: Mapping[int, Sequence[PayloadHook]] = {}
"""No payload wanted (``ports`` of :meth:`DetectorCalls.packet`)."""


class DetectorCalls:
    """The detectors' hooks, grouped by what they want, and the decoder's counters."""

    def __init__(self, detectors: Sequence[Detector], emit: Callable[[Detection], None]) -> None:
        self.pkt = PacketView()
        self._emit = emit
        self.detections = 0
        self.bad = 0  # frames too short for their headers, or with impossible lengths
        self.per_packet = tuple(d.on_packet for d in detectors if d.interests.packets)
        self.on_retransmission = tuple(
            d.on_retransmission for d in detectors if d.interests.retransmissions
        )
        udp: dict[int, list[PayloadHook]] = {}
        tcp: dict[int, list[PayloadHook]] = {}
        for d in detectors:
            for port in d.interests.udp_ports:
                udp.setdefault(port, []).append(d.on_payload)
            for port in d.interests.tcp_ports:
                tcp.setdefault(port, []).append(d.on_payload)
        self.udp_ports = {k: tuple(v) for k, v in udp.items()}
        self.tcp_ports = {k: tuple(v) for k, v in tcp.items()}
        # watched_tcp[port] is set for a TCP port whose segments some detector wants to
        # see: a port it watches, or every port when it wants every packet (one index,
        # no set lookup: the fast path tests it for every segment).
        self.watched_tcp = bytearray(b"\x01" * 65536 if self.per_packet else 65536)
        for port in self.tcp_ports:
            self.watched_tcp[port] = 1

    def packet(
        self,
        buf: bytes,
        a: int,
        alen: int,
        ts: int,
        version: int,
        ttl: int,
        length: int,
        sport: int,
        dport: int,
        flags: int,
        seq: int,
        ack: int,
        retransmits: int,
        data: int,
        end: int,
        datalen: int,
        proto: int,
        fragment: bool,
        ports: Mapping[int, Sequence[PayloadHook]],
    ) -> None:
        """The detector calls for one packet that some detector wants: its
        retransmission (``retransmits``: the flow table's count; 0: not one), the
        packet, its payload on a port of ``ports`` (the TCP or UDP ports watched;
        empty: none). This is where the shared view is filled.

        The source and destination addresses are ``buf[a : a + alen]``; ``length`` is
        the IP length; the payload starts at ``data``, ``datalen`` bytes by the
        headers, cut at ``end`` (the end of the captured bytes). TCP ``flags``,
        ``seq`` and ``ack`` are 0 for other protocols; a ``fragment``'s ports are 0.
        """
        pkt = self.pkt
        half = a + (alen >> 1)
        pkt.ts = ts
        pkt.version = version
        pkt.src = buf[a:half]
        pkt.dst = buf[half : a + alen]
        pkt.proto = proto
        pkt.sport = sport
        pkt.dport = dport
        pkt.ttl = ttl
        pkt.length = length
        pkt.tcp_flags = flags
        pkt.seq = seq
        pkt.ack = ack
        pkt.fragment = fragment
        if retransmits:
            for on_retransmission in self.on_retransmission:
                found = on_retransmission(pkt, retransmits)
                if found:
                    self.deliver(found)
        for on_packet in self.per_packet:
            found = on_packet(pkt)
            if found:
                self.deliver(found)
        if ports and (sport in ports or dport in ports):
            stop = min(end, data + datalen)
            payload = buf[data:stop] if stop > data else b""
            for on_payload in ports.get(sport) or ports[dport]:
                found = on_payload(pkt, payload)
                if found:
                    self.deliver(found)

    def deliver(self, found: Sequence[Detection]) -> None:
        """Count and emit detections."""
        for detection in found:
            self.detections += 1
            self._emit(detection)
