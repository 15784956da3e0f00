"""The decoder's link layers, and its entry point: one frame at a time.

:meth:`Decoder.handler` gives the frame handler of a link type; a handler
takes a frame where it lies in the source's buffer (``buf`` from offset
``off``, ``caplen`` bytes captured, ``wirelen`` on the wire, ``ts`` in ns). No
per-packet object is created on the common path: fields go to local
variables, the flow key is one slice of the buffer.

Ethernet has a fast path (:meth:`Decoder.ether`) for the frame most captures
are made of: IPv4 without options or IPv6 without extension headers, TCP, not
a fragment; it calls the detectors only for a retransmission or a watched
port. Anything else takes the general path (:meth:`Decoder.ether_general`,
then :mod:`~trafex.detect.decode.network`).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence

from trafex.detect.capture.linktypes import (
    LINKTYPE_ETHERNET,
    LINKTYPE_FDDI,
    LINKTYPE_IEEE802_11,
    LINKTYPE_IEEE802_11_RADIOTAP,
    LINKTYPE_IPV4,
    LINKTYPE_IPV6,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_LOOP,
    LINKTYPE_MASK,
    LINKTYPE_NFLOG,
    LINKTYPE_NULL,
    LINKTYPE_PPP,
    LINKTYPE_PPP_HDLC,
    LINKTYPE_RAW,
    LINKTYPE_RAW_BSD,
    LINKTYPE_RAW_BSD2,
)
from trafex.detect.decode.network import ETH_IPV4, ETH_IPV6, SNAP, IpDecoder
from trafex.detect.detection import Detection
from trafex.detect.detectors.base import Detector
from trafex.detect.flows.table import TcpFlowTable

FrameHandler = Callable[[bytes, int, int, int, int], None]
"""(buf, off, caplen, wirelen, ts): decode one frame."""

# Ethernet + IPv4 (no options) + TCP, and Ethernet + IPv6 (no extension header) + TCP,
# each read with one call on the fast path.
# The TCP data offset and flags are read as two bytes: two small ints (cached by
# CPython, so no allocation) instead of one 16-bit field to mask and shift.
_ETH_IP4_TCP = struct.Struct("!14xBxH2xHBB10xHHIIBBH")
_ETH_IP6_TCP = struct.Struct("!14xIHBB32xHHIIBBH")


# The handler (a method name) of each link type decoded. (Names, not bound methods: a
# decoder keeping its own bound methods would live until the cyclic GC, flow table too.)
_HANDLERS = {
    LINKTYPE_ETHERNET: "ether",
    LINKTYPE_NULL: "null",
    LINKTYPE_LOOP: "loop",
    LINKTYPE_RAW: "raw",
    LINKTYPE_RAW_BSD: "raw",
    LINKTYPE_RAW_BSD2: "raw",
    LINKTYPE_IPV4: "raw",
    LINKTYPE_IPV6: "raw",
    LINKTYPE_LINUX_SLL: "sll",
    LINKTYPE_LINUX_SLL2: "sll2",
    LINKTYPE_NFLOG: "nflog",
    LINKTYPE_FDDI: "fddi",
    LINKTYPE_IEEE802_11: "wlan",
    LINKTYPE_IEEE802_11_RADIOTAP: "radiotap",
    LINKTYPE_PPP: "ppp",
    LINKTYPE_PPP_HDLC: "ppp",
}


class Decoder(IpDecoder):
    """Turns frames into flow-table updates and detector calls; counts what it skips."""

    def __init__(
        self,
        detectors: Sequence[Detector],
        flows: TcpFlowTable | None,
        emit: Callable[[Detection], None],
    ) -> None:
        super().__init__(detectors, flows, emit)
        self.unsupported = 0  # frames of a link type not decoded

    def handler(self, linktype: int) -> FrameHandler:
        """The frame handler for a link-layer header type (unknown types are counted)."""
        handler: FrameHandler = getattr(
            self, _HANDLERS.get(linktype & LINKTYPE_MASK, "unsupported_frame")
        )
        return handler

    def unsupported_frame(self, buf: bytes, off: int, caplen: int, wirelen: int, ts: int) -> None:
        """A frame of a link type not decoded: counted."""
        self.unsupported += 1

    # -- Ethernet ----------------------------------------------------------------------

    def ether(self, buf: bytes, off: int, caplen: int, wirelen: int, ts: int) -> None:
        """An Ethernet frame; the fast path here, anything else to ether_general()."""
        flows = self.flows
        if caplen >= 54 and flows is not None:
            # One struct call reads every field, the flow key is one slice of the frame
            # (the addresses, alen bytes from a, then the ports), and the detectors are
            # called (packet()) only for a retransmission or a watched port.
            et = (buf[off + 12] << 8) | buf[off + 13]
            if et == ETH_IPV4:
                vihl, tot, frag, ttl, proto, sport, dport, seq, ack, doff, flags, win = (
                    _ETH_IP4_TCP.unpack_from(buf, off)
                )
                if vihl != 0x45 or proto != 6 or frag & 0x3FFF or tot < 40:
                    self.ether_general(buf, off, caplen, wirelen, ts)
                    return
                version, a, alen, head = 4, off + 26, 8, 20
            elif et == ETH_IPV6 and caplen >= 74:
                vtc, plen, nh, ttl, sport, dport, seq, ack, doff, flags, win = (
                    _ETH_IP6_TCP.unpack_from(buf, off)
                )
                if nh != 6 or vtc >> 28 != 6 or not plen:
                    self.ether_general(buf, off, caplen, wirelen, ts)
                    return
                version, a, alen, head, tot = 6, off + 22, 32, 40, 40 + plen
            else:
                self.ether_general(buf, off, caplen, wirelen, ts)
                return
            tot = tot if tot <= wirelen - 14 else wirelen - 14  # no min() call here
            hlen = (doff >> 2) & 0x3C
            seglen = tot - head - hlen
            if hlen < 20 or seglen < 0:
                self.bad += 1
                return
            n = flows.segment(buf[a : a + alen + 4], seq, ack, flags, win, seglen, ts)
            watched = self.watched_tcp
            if n or watched[sport] or watched[dport]:
                self.packet(
                    buf, a, alen, ts, version, ttl, tot, sport, dport, flags, seq, ack, n,
                    a + alen + hlen, off + caplen, seglen, 6, False, self.tcp_ports,
                )  # fmt: skip
            return
        self.ether_general(buf, off, caplen, wirelen, ts)

    def ether_general(self, buf: bytes, off: int, caplen: int, wirelen: int, ts: int) -> None:
        """Any Ethernet frame (the general path, after ether()'s fast path)."""
        if caplen < 14:
            self.bad += 1
            return
        et = (buf[off + 12] << 8) | buf[off + 13]
        if et == ETH_IPV4:
            self.ip4(buf, off + 14, off + caplen, wirelen - 14, ts)
        elif et == ETH_IPV6:
            self.ip6(buf, off + 14, off + caplen, wirelen - 14, ts)
        else:
            self.ethertype(et, buf, off + 14, off + caplen, wirelen - 14, ts)

    # -- other link layers -------------------------------------------------------------

    def raw(self, buf: bytes, off: int, caplen: int, wirelen: int, ts: int) -> None:
        self.ip_by_version(buf, off, off + caplen, wirelen, ts)

    def null(self, buf: bytes, off: int, caplen: int, wirelen: int, ts: int) -> None:
        if caplen < 4:
            self.bad += 1
            return
        family = int.from_bytes(buf[off : off + 4], "little")
        if family > 0xFFFF:
            family = int.from_bytes(buf[off : off + 4], "big")
        self._bsd_family(family, buf, off, caplen, wirelen, ts)

    def loop(self, buf: bytes, off: int, caplen: int, wirelen: int, ts: int) -> None:
        if caplen < 4:
            self.bad += 1
            return
        family = int.from_bytes(buf[off : off + 4], "big")
        self._bsd_family(family, buf, off, caplen, wirelen, ts)

    def _bsd_family(
        self, family: int, buf: bytes, off: int, caplen: int, wirelen: int, ts: int
    ) -> None:
        if family == 2:
            self.ip4(buf, off + 4, off + caplen, wirelen - 4, ts)
        elif family in (10, 24, 28, 30):
            self.ip6(buf, off + 4, off + caplen, wirelen - 4, ts)
        else:
            self.non_ip += 1

    def sll(self, buf: bytes, off: int, caplen: int, wirelen: int, ts: int) -> None:
        if caplen < 16:
            self.bad += 1
            return
        et = (buf[off + 14] << 8) | buf[off + 15]
        self.ethertype(et, buf, off + 16, off + caplen, wirelen - 16, ts)

    def sll2(self, buf: bytes, off: int, caplen: int, wirelen: int, ts: int) -> None:
        if caplen < 20:
            self.bad += 1
            return
        et = (buf[off] << 8) | buf[off + 1]
        self.ethertype(et, buf, off + 20, off + caplen, wirelen - 20, ts)

    def ppp(self, buf: bytes, off: int, caplen: int, wirelen: int, ts: int) -> None:
        q = off
        if buf[q : q + 2] == b"\xff\x03":
            q += 2
        if q + 2 > off + caplen:
            self.bad += 1
            return
        proto = (buf[q] << 8) | buf[q + 1]
        self.ppp_proto(proto, buf, q + 2, off + caplen, wirelen - (q + 2 - off), ts)

    def fddi(self, buf: bytes, off: int, caplen: int, wirelen: int, ts: int) -> None:
        # Frame control (1), destination (6), source (6), then LLC/SNAP.
        q = off + 13
        if caplen < 21 or buf[q : q + 3] != SNAP:
            self.non_ip += 1
            return
        et = (buf[q + 6] << 8) | buf[q + 7]
        self.ethertype(et, buf, q + 8, off + caplen, wirelen - 21, ts)

    def radiotap(self, buf: bytes, off: int, caplen: int, wirelen: int, ts: int) -> None:
        if caplen < 8:
            self.bad += 1
            return
        hlen = buf[off + 2] | (buf[off + 3] << 8)
        if hlen < 8 or hlen > caplen:
            self.bad += 1
            return
        self.wlan(buf, off + hlen, caplen - hlen, wirelen - hlen, ts)

    def wlan(self, buf: bytes, off: int, caplen: int, wirelen: int, ts: int) -> None:
        if caplen < 24:
            self.bad += 1
            return
        fc0 = buf[off]
        fc1 = buf[off + 1]
        # Data frames only, not protected; null-function subtypes carry no data.
        if (fc0 >> 2) & 3 != 2 or fc1 & 0x40 or fc0 & 0x40:
            self.non_ip += 1
            return
        hlen = 24
        if fc1 & 3 == 3:
            hlen += 6
        if fc0 & 0x80:  # QoS data
            hlen += 6 if fc1 & 0x80 else 2  # +HTC
        q = off + hlen
        if q + 8 > off + caplen or buf[q : q + 3] != SNAP:
            self.non_ip += 1
            return
        et = (buf[q + 6] << 8) | buf[q + 7]
        self.ethertype(et, buf, q + 8, off + caplen, wirelen - hlen - 8, ts)

    def nflog(self, buf: bytes, off: int, caplen: int, wirelen: int, ts: int) -> None:
        end = off + caplen
        if caplen < 4:
            self.bad += 1
            return
        family = buf[off]
        q = off + 4
        while q + 4 <= end:
            tlv_len = buf[q] | (buf[q + 1] << 8)
            tlv_type = buf[q + 2] | (buf[q + 3] << 8)
            if tlv_len < 4:
                break
            if tlv_type == 9:  # NFULA_PAYLOAD
                body_end = min(q + tlv_len, end)
                rlen = tlv_len - 4
                if family == 2:
                    self.ip4(buf, q + 4, body_end, rlen, ts)
                elif family == 10:
                    self.ip6(buf, q + 4, body_end, rlen, ts)
                else:
                    self.ip_by_version(buf, q + 4, body_end, rlen, ts)
                return
            q += (tlv_len + 3) & ~3
        self.non_ip += 1
