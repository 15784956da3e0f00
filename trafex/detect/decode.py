"""The fast path: decode link, IP and TCP/UDP headers with ``struct`` and dispatch.

No per-packet object is created on the common path: a frame is handled where
it lies in the source's buffer (``buf`` from offset ``off``, ``caplen`` bytes
captured, ``wirelen`` on the wire), fields go to local variables, the flow
key is one slice of the buffer. Detectors are called only for what they asked
for (see :class:`~trafex.detect.detector.Interests`); the shared
:class:`~trafex.detect.packet.PacketView` is filled only then.

Lengths follow tshark: the TCP segment length comes from the IP header
(bounded by the frame's length on the wire), not from the captured bytes, so
snaplen-cut packets are still analysed. A frame too short for the headers the
fast path needs, or with impossible header lengths, is counted in ``bad`` and
skipped. IP fragments are counted and shown to per-packet detectors but their
transport headers are not parsed (no reassembly); an atomic IPv6 fragment (offset
0, no more fragments) is an ordinary packet.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from trafex.detect.detection import Detection
from trafex.detect.detector import Detector
from trafex.detect.flowtable import TcpFlowTable
from trafex.detect.packet import PacketView
from trafex.detect.reassembly import FragmentCache

if TYPE_CHECKING:
    from trafex.detect.batch import FrameBatcher

FrameHandler = Callable[[bytes, int, int, int, int], None]
PcapWalker = Callable[[bytes, int, int], tuple[int, int, int]]
"""Handles the classic-pcap records of ``buf[off:size]``; returns (offset of the first
record not handled, records handled, time of the last one in ns)."""

# Link-layer header types (https://www.tcpdump.org/linktypes.html).
LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_PPP = 9
LINKTYPE_FDDI = 10
LINKTYPE_RAW_BSD = 12
LINKTYPE_RAW_BSD2 = 14
LINKTYPE_PPP_HDLC = 50
LINKTYPE_RAW = 101
LINKTYPE_IEEE802_11 = 105
LINKTYPE_LOOP = 108
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IEEE802_11_RADIOTAP = 127
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_NFLOG = 239
LINKTYPE_LINUX_SLL2 = 276

ETH_IPV4 = 0x0800
ETH_IPV6 = 0x86DD
_VLAN_TYPES = frozenset({0x8100, 0x88A8, 0x9100, 0x9200})
ETH_PPPOE_SESSION = 0x8864
ETH_MPLS = frozenset({0x8847, 0x8848})
ETH_TEB = 0x6558

UDP_VXLAN = 4789
UDP_GENEVE = 6081
UDP_TEREDO = 3544
MAX_TUNNEL_DEPTH = 4

_IP4 = struct.Struct("!BxHHHBB")
# Ethernet + IPv4 (no options) + TCP, and Ethernet + IPv6 (no extension header) + TCP,
# each read with one call on the fast path.
# The TCP data offset and flags are read as two bytes: two small ints (cached by
# CPython, so no allocation) instead of one 16-bit field to mask and shift.
_ETH_IP4_TCP = struct.Struct("!14xBxH2xHBB10xHHIIBBH")
_ETH_IP6_TCP = struct.Struct("!14xIHBB32xHHIIBBH")
_IP6 = struct.Struct("!IHBB")
_TCP = struct.Struct("!HHIIHH")
_UDP = struct.Struct("!HHH")
_U16 = struct.Struct("!H")
_IPV6_EXT = frozenset({0, 43, 60, 51, 135, 139, 140})

_SNAP = b"\xaa\xaa\x03"
BATCH_MIN: int | None = 512  # see Decoder.batch_min


class Decoder:
    """Turns frames into flow-table updates and detector calls; counts what it skips."""

    def __init__(
        self,
        detectors: Sequence[Detector],
        flows: TcpFlowTable | None,
        emit: Callable[[Detection], None],
    ) -> None:
        self.pkt = PacketView()
        self._emit = emit
        self.bad = 0
        self.non_ip = 0
        self.fragments = 0
        self.unsupported = 0
        self.detections = 0
        self._depth = 0
        self._per_packet = tuple(d.on_packet for d in detectors if d.interests.packets)
        self._retrans = tuple(d.on_retransmission for d in detectors if d.interests.retransmissions)
        udp: dict[int, list[Callable[[PacketView, bytes], Sequence[Detection]]]] = {}
        tcp: dict[int, list[Callable[[PacketView, bytes], Sequence[Detection]]]] = {}
        for d in detectors:
            for port in d.interests.udp_ports:
                udp.setdefault(port, []).append(d.on_payload)
            for port in d.interests.tcp_ports:
                tcp.setdefault(port, []).append(d.on_payload)
        self._udp_ports = {k: tuple(v) for k, v in udp.items()}
        self._tcp_ports = {k: tuple(v) for k, v in tcp.items()}
        # ether()'s fast path calls _tcp_rest only for a retransmission or when
        # _tcp_want[sport] or _tcp_want[dport] is set: a port some detector watches,
        # or every port when a detector wants every packet (one index, no set lookup).
        self._tcp_want = bytearray(b"\x01" * 65536 if self._per_packet else 65536)
        for port in self._tcp_ports:
            self._tcp_want[port] = 1
        self._flows = flows if self._retrans else None
        self.fragment_cache = FragmentCache()
        # Chunks of at least this many pcap records are decoded in batches (see
        # trafex.detect.batch); None: always record by record.
        self.batch_min: int | None = BATCH_MIN
        self._batcher: FrameBatcher | None = None

    # -- link layers -------------------------------------------------------------------

    def handler(self, linktype: int) -> FrameHandler:
        """The frame handler for a link-layer header type (unknown types are counted)."""
        handlers: dict[int, FrameHandler] = {
            LINKTYPE_ETHERNET: self.ether,
            LINKTYPE_NULL: self.null,
            LINKTYPE_LOOP: self.loop,
            LINKTYPE_RAW: self.raw,
            LINKTYPE_RAW_BSD: self.raw,
            LINKTYPE_RAW_BSD2: self.raw,
            LINKTYPE_IPV4: self.raw,
            LINKTYPE_IPV6: self.raw,
            LINKTYPE_LINUX_SLL: self.sll,
            LINKTYPE_LINUX_SLL2: self.sll2,
            LINKTYPE_NFLOG: self.nflog,
            LINKTYPE_FDDI: self.fddi,
            LINKTYPE_IEEE802_11: self.wlan,
            LINKTYPE_IEEE802_11_RADIOTAP: self.radiotap,
            LINKTYPE_PPP: self.ppp,
            LINKTYPE_PPP_HDLC: self.ppp,
        }
        return handlers.get(linktype & 0x0FFFFFFF, self.unsupported_frame)

    def unsupported_frame(self, buf: bytes, off: int, caplen: int, wirelen: int, ts: int) -> None:
        self.unsupported += 1

    def ether(self, buf: bytes, off: int, caplen: int, wirelen: int, ts: int) -> None:
        flows = self._flows
        if caplen >= 54 and flows is not None:
            # Fast path: Ethernet, IPv4 without options or IPv6 without extension
            # headers, TCP, not a fragment. One struct call reads every field, the flow
            # key is one slice of the frame (the addresses, alen bytes from a, then the
            # ports), and the detectors are called (_tcp_rest) only for a retransmission
            # or a watched port. Anything else: _ether.
            et = (buf[off + 12] << 8) | buf[off + 13]
            if et == ETH_IPV4:
                vihl, tot, frag, ttl, proto, sport, dport, seq, ack, doff, flags, win = (
                    _ETH_IP4_TCP.unpack_from(buf, off)
                )
                if vihl != 0x45 or proto != 6 or frag & 0x3FFF or tot < 40:
                    self._ether(buf, off, caplen, wirelen, ts)
                    return
                version, a, alen, head = 4, off + 26, 8, 20
            elif et == ETH_IPV6 and caplen >= 74:
                vtc, plen, nh, ttl, sport, dport, seq, ack, doff, flags, win = (
                    _ETH_IP6_TCP.unpack_from(buf, off)
                )
                if nh != 6 or vtc >> 28 != 6 or not plen:
                    self._ether(buf, off, caplen, wirelen, ts)
                    return
                version, a, alen, head, tot = 6, off + 22, 32, 40, 40 + plen
            else:
                self._ether(buf, off, caplen, wirelen, ts)
                return
            tot = tot if tot <= wirelen - 14 else wirelen - 14  # no min() call here
            hlen = (doff >> 2) & 0x3C
            seglen = tot - head - hlen
            if hlen < 20 or seglen < 0:
                self.bad += 1
                return
            n = flows.segment(buf[a : a + alen + 4], seq, ack, flags, win, seglen, ts)
            want = self._tcp_want
            if n or want[sport] or want[dport]:
                self._tcp_rest(
                    buf,
                    a,
                    alen,
                    a + alen,
                    off + caplen,
                    ts,
                    version,
                    ttl,
                    tot,
                    sport,
                    dport,
                    seq,
                    ack,
                    flags,
                    hlen,
                    seglen,
                    n,
                )
            return
        self._ether(buf, off, caplen, wirelen, ts)

    # -- pcap records, walked here ----------------------------------------------------

    def pcap_walker(self, linktype: int, order: str, frac_ns: int) -> PcapWalker | None:
        """A walker for a chunk of classic-pcap records of ``linktype``, or None.

        ``order`` is the file's byte order (``<`` or ``>``), ``frac_ns`` turns a
        record's time fraction into nanoseconds. Only Ethernet with a flow table (a
        retransmission detector) has one: the batch walker (``trafex.detect.batch``),
        or with batches off the record loop calling ether() (:meth:`_walk_ether`).
        """
        if linktype & 0x0FFFFFFF != LINKTYPE_ETHERNET or self._flows is None:
            return None

        header = struct.Struct(order + "IIII").unpack_from

        def walk(buf: bytes, off: int, size: int) -> tuple[int, int, int]:
            return self._walk_ether(buf, off, size, header, frac_ns)

        if self.batch_min is None:
            return walk
        from trafex.detect.batch import BatchWalker

        return BatchWalker(self, self._flows, order, frac_ns, walk, self.batch_min)

    def frame_batcher(self, linktype: int) -> FrameBatcher | None:
        """The batcher for frames of ``linktype`` (pcapng), or None: Ethernet with a
        flow table, unless batches are off. One for every interface of that type, so
        that their frames share batches."""
        if linktype & 0x0FFFFFFF != LINKTYPE_ETHERNET or self._flows is None:
            return None
        if self.batch_min is None:
            return None
        if self._batcher is None:
            from trafex.detect.batch import FrameBatcher

            self._batcher = FrameBatcher(self, self._flows, self.batch_min)
        return self._batcher

    def _walk_ether(
        self,
        buf: bytes,
        off: int,
        size: int,
        header: Callable[[bytes, int], tuple[int, ...]],
        frac_ns: int,
    ) -> tuple[int, int, int]:
        """Handle the whole pcap records of ``buf[off:size]`` (Ethernet frames) with
        ``ether()``; returns (offset of the first record not handled, records handled,
        last packet time). The batch walker (``trafex.detect.batch``) falls back on
        this one where batches do not pay."""
        ether = self.ether
        packets = 0
        ts = 0
        last_sec = sec_ns = -1
        while off + 30 <= size:  # the last record(s) of a chunk are left to the reader
            rec = off
            sec, frac, caplen, wirelen = header(buf, rec)
            off = rec + 16 + caplen
            if off > size:
                off = rec
                break  # cut by the chunk's end (or corrupt): the reader decides
            packets += 1
            if sec != last_sec:  # a multi-digit int product, saved for most packets
                last_sec = sec
                sec_ns = sec * 1_000_000_000
            ts = sec_ns + frac * frac_ns
            ether(buf, rec + 16, caplen, wirelen, ts)
        return off, packets, ts

    def _ether(self, buf: bytes, off: int, caplen: int, wirelen: int, ts: int) -> None:
        """Any Ethernet frame (the general path, after ether()'s fast path)."""
        if caplen < 14:
            self.bad += 1
            return
        et = (buf[off + 12] << 8) | buf[off + 13]
        if et == ETH_IPV4:
            self._ip4(buf, off + 14, off + caplen, wirelen - 14, ts)
        elif et == ETH_IPV6:
            self._ip6(buf, off + 14, off + caplen, wirelen - 14, ts)
        else:
            self._ethertype(et, buf, off + 14, off + caplen, wirelen - 14, ts)

    def _ethertype(self, et: int, buf: bytes, q: int, end: int, rlen: int, ts: int) -> None:
        """Everything after an Ethernet type field: VLAN tags, PPPoE, MPLS, SNAP, IP."""
        while True:
            if et == ETH_IPV4:
                self._ip4(buf, q, end, rlen, ts)
                return
            if et == ETH_IPV6:
                self._ip6(buf, q, end, rlen, ts)
                return
            if et in _VLAN_TYPES:
                if q + 4 > end:
                    self.bad += 1
                    return
                et = (buf[q + 2] << 8) | buf[q + 3]
                q += 4
                rlen -= 4
            elif et == ETH_PPPOE_SESSION:
                if q + 8 > end:
                    self.bad += 1
                    return
                # The PPPoE length (PPP protocol field included) bounds the IP packet.
                plen = ((buf[q + 4] << 8) | buf[q + 5]) - 2
                rlen = min(rlen - 8, plen)
                self._ppp_proto((buf[q + 6] << 8) | buf[q + 7], buf, q + 8, end, rlen, ts)
                return
            elif et in ETH_MPLS:
                while True:
                    if q + 4 > end:
                        self.bad += 1
                        return
                    bottom = buf[q + 2] & 1
                    q += 4
                    rlen -= 4
                    if bottom:
                        break
                self._ip_by_version(buf, q, end, rlen, ts)
                return
            elif et < 0x0600:  # 802.3 length field: LLC, maybe SNAP
                if buf[q : q + 3] == _SNAP and q + 8 <= end:
                    et = (buf[q + 6] << 8) | buf[q + 7]
                    q += 8
                    rlen -= 8
                else:
                    self.non_ip += 1
                    return
            elif et == ETH_TEB:
                self._inner_ether(buf, q, end, rlen, ts)
                return
            else:
                self.non_ip += 1
                return

    def _inner_ether(self, buf: bytes, q: int, end: int, rlen: int, ts: int) -> None:
        if self._depth >= MAX_TUNNEL_DEPTH or q + 14 > end:
            return
        self._depth += 1
        try:
            self._ethertype((buf[q + 12] << 8) | buf[q + 13], buf, q + 14, end, rlen - 14, ts)
        finally:
            self._depth -= 1

    def _ip_by_version(self, buf: bytes, q: int, end: int, rlen: int, ts: int) -> None:
        if q >= end:
            self.bad += 1
            return
        version = buf[q] >> 4
        if version == 4:
            self._ip4(buf, q, end, rlen, ts)
        elif version == 6:
            self._ip6(buf, q, end, rlen, ts)
        else:
            self.bad += 1

    def _ppp_proto(self, proto: int, buf: bytes, q: int, end: int, rlen: int, ts: int) -> None:
        if proto == 0x0021:
            self._ip4(buf, q, end, rlen, ts)
        elif proto == 0x0057:
            self._ip6(buf, q, end, rlen, ts)
        else:
            self.non_ip += 1

    def raw(self, buf: bytes, off: int, caplen: int, wirelen: int, ts: int) -> None:
        self._ip_by_version(buf, off, off + caplen, wirelen, ts)

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
            self._ip4(buf, off + 4, off + caplen, wirelen - 4, ts)
        elif family in (10, 24, 28, 30):
            self._ip6(buf, off + 4, off + caplen, wirelen - 4, ts)
        else:
            self.non_ip += 1

    def sll(self, buf: bytes, off: int, caplen: int, wirelen: int, ts: int) -> None:
        if caplen < 16:
            self.bad += 1
            return
        et = (buf[off + 14] << 8) | buf[off + 15]
        self._ethertype(et, buf, off + 16, off + caplen, wirelen - 16, ts)

    def sll2(self, buf: bytes, off: int, caplen: int, wirelen: int, ts: int) -> None:
        if caplen < 20:
            self.bad += 1
            return
        et = (buf[off] << 8) | buf[off + 1]
        self._ethertype(et, buf, off + 20, off + caplen, wirelen - 20, ts)

    def ppp(self, buf: bytes, off: int, caplen: int, wirelen: int, ts: int) -> None:
        q = off
        if buf[q : q + 2] == b"\xff\x03":
            q += 2
        if q + 2 > off + caplen:
            self.bad += 1
            return
        proto = (buf[q] << 8) | buf[q + 1]
        self._ppp_proto(proto, buf, q + 2, off + caplen, wirelen - (q + 2 - off), ts)

    def fddi(self, buf: bytes, off: int, caplen: int, wirelen: int, ts: int) -> None:
        # Frame control (1), destination (6), source (6), then LLC/SNAP.
        q = off + 13
        if caplen < 21 or buf[q : q + 3] != _SNAP:
            self.non_ip += 1
            return
        et = (buf[q + 6] << 8) | buf[q + 7]
        self._ethertype(et, buf, q + 8, off + caplen, wirelen - 21, ts)

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
        if (fc0 >> 2) & 3 != 2 or fc1 & 0x40:  # data frames only, not protected
            self.non_ip += 1
            return
        hlen = 24
        if fc1 & 3 == 3:
            hlen += 6
        if fc0 & 0x80:  # QoS data
            hlen += 2
            if fc1 & 0x80:  # +HTC
                hlen += 4
        if fc0 & 0x40:  # null-function subtypes carry no data
            self.non_ip += 1
            return
        q = off + hlen
        if q + 8 > off + caplen or buf[q : q + 3] != _SNAP:
            self.non_ip += 1
            return
        et = (buf[q + 6] << 8) | buf[q + 7]
        self._ethertype(et, buf, q + 8, off + caplen, wirelen - hlen - 8, ts)

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
                    self._ip4(buf, q + 4, body_end, rlen, ts)
                elif family == 10:
                    self._ip6(buf, q + 4, body_end, rlen, ts)
                else:
                    self._ip_by_version(buf, q + 4, body_end, rlen, ts)
                return
            q += (tlv_len + 3) & ~3
        self.non_ip += 1

    # -- IP ----------------------------------------------------------------------------

    def _ip4(self, buf: bytes, q: int, end: int, rlen: int, ts: int) -> None:
        if q + 20 > end:
            self.bad += 1
            return
        vihl, tot, _ident, frag, ttl, proto = _IP4.unpack_from(buf, q)
        ihl = (vihl & 0x0F) << 2
        if vihl >> 4 != 4 or ihl < 20 or tot < ihl:
            self.bad += 1
            return
        tot = min(tot, rlen)
        p = q + ihl
        if frag & 0x3FFF:
            self.fragments += 1
            if self._per_packet:
                self._packet(
                    ts,
                    4,
                    buf[q + 12 : q + 16],
                    buf[q + 16 : q + 20],
                    proto,
                    0,
                    0,
                    ttl,
                    tot,
                    0,
                    0,
                    0,
                    True,
                )
            if q + tot <= end:
                key = buf[q + 4 : q + 6] + buf[q + 9 : q + 10] + buf[q + 12 : q + 20]
                whole = self.fragment_cache.add(
                    key, (frag & 0x1FFF) << 3, bool(frag & 0x2000), buf[p : q + tot], ts
                )
                if whole is not None:
                    header = bytearray(buf[q : q + 20])
                    header[0] = 0x45
                    header[2:4] = (20 + len(whole)).to_bytes(2, "big")
                    header[6:8] = b"\0\0"
                    self._reassembled(bytes(header) + whole, ts)
            return
        if proto == 6:
            self._tcp(buf, q + 12, 8, p, end, tot - ihl, ts, 4, ttl, tot)
        elif proto == 17:
            self._udp(buf, q + 12, 8, p, end, tot - ihl, ts, 4, ttl, tot)
        else:
            self._other(buf, q + 12, 4, proto, ttl, tot, p, end, tot - ihl, ts)

    def _ip6(self, buf: bytes, q: int, end: int, rlen: int, ts: int) -> None:
        if q + 40 > end:
            self.bad += 1
            return
        vtc, plen, nh, hlim = _IP6.unpack_from(buf, q)
        if vtc >> 28 != 6:
            self.bad += 1
            return
        tot = 40 + plen
        if tot > rlen or (plen == 0 and nh == 0):
            tot = rlen
        p = q + 40
        while nh in _IPV6_EXT or nh == 44:
            if p + 8 > end:
                self.bad += 1
                return
            if nh == 44:
                frag = (buf[p + 2] << 8) | buf[p + 3]
                if frag & 0xFFF9:
                    self.fragments += 1
                    if self._per_packet:
                        self._packet(
                            ts,
                            6,
                            buf[q + 8 : q + 24],
                            buf[q + 24 : q + 40],
                            buf[p],
                            0,
                            0,
                            hlim,
                            tot,
                            0,
                            0,
                            0,
                            True,
                        )
                    if q + tot <= end:
                        key = buf[p + 4 : p + 8] + buf[q + 8 : q + 40]
                        whole = self.fragment_cache.add(
                            key, frag & 0xFFF8, bool(frag & 1), buf[p + 8 : q + tot], ts
                        )
                        if whole is not None:
                            header = bytearray(buf[q : q + 40])
                            header[4:6] = len(whole).to_bytes(2, "big")
                            header[6] = buf[p]
                            self._reassembled(bytes(header) + whole, ts)
                    return
                nh = buf[p]
                p += 8
            elif nh == 51:
                nh, ln = buf[p], (buf[p + 1] + 2) << 2
                p += ln
            else:
                nh, ln = buf[p], (buf[p + 1] + 1) << 3
                p += ln
        l4len = tot - (p - q)
        if l4len < 0:
            self.bad += 1
            return
        if nh == 6:
            self._tcp(buf, q + 8, 32, p, end, l4len, ts, 6, hlim, tot)
        elif nh == 17:
            self._udp(buf, q + 8, 32, p, end, l4len, ts, 6, hlim, tot)
        else:
            self._other(buf, q + 8, 16, nh, hlim, tot, p, end, l4len, ts)

    def _other(
        self,
        buf: bytes,
        a: int,
        alen: int,
        proto: int,
        ttl: int,
        tot: int,
        p: int,
        end: int,
        l4len: int,
        ts: int,
    ) -> None:
        """A packet that is neither TCP nor UDP (IPv4 or IPv6: ``alen`` 4 or 16, the
        source address at ``a``, the destination right after it): per-packet
        detectors see it; IP-in-IP and GRE are opened."""
        if self._per_packet:
            version = 4 if alen == 4 else 6
            src, dst = buf[a : a + alen], buf[a + alen : a + 2 * alen]
            self._packet(ts, version, src, dst, proto, 0, 0, ttl, tot, 0, 0, 0, False)
        if proto in {4, 41, 47}:
            self._ip_tunnel(proto, buf, p, end, l4len, ts)

    def _ip_tunnel(self, proto: int, buf: bytes, p: int, end: int, rlen: int, ts: int) -> None:
        """IP-in-IP, IPv6-in-IP and GRE: decode the inner packet (depth-limited)."""
        if self._depth >= MAX_TUNNEL_DEPTH:
            return
        self._depth += 1
        try:
            if proto == 4:
                self._ip4(buf, p, end, rlen, ts)
            elif proto == 41:
                self._ip6(buf, p, end, rlen, ts)
            elif p + 4 <= end:  # GRE
                flags = buf[p]
                inner = (buf[p + 2] << 8) | buf[p + 3]
                hlen = 4 + 4 * ((flags >> 7 & 1) + (flags >> 5 & 1) + (flags >> 4 & 1))
                if buf[p + 1] & 7 == 0:
                    self._ethertype(inner, buf, p + hlen, end, rlen - hlen, ts)
        finally:
            self._depth -= 1

    def _reassembled(self, datagram: bytes, ts: int) -> None:
        """Decode a reassembled datagram (per-packet detectors saw its fragments)."""
        if self._depth >= MAX_TUNNEL_DEPTH:
            return
        per_packet = self._per_packet
        self._per_packet = ()
        self._depth += 1
        try:
            self._ip_by_version(datagram, 0, len(datagram), len(datagram), ts)
        finally:
            self._per_packet = per_packet
            self._depth -= 1

    # -- transport ---------------------------------------------------------------------

    def _tcp(
        self,
        buf: bytes,
        a: int,
        alen: int,
        p: int,
        end: int,
        l4len: int,
        ts: int,
        version: int,
        ttl: int,
        tot: int,
    ) -> None:
        if p + 20 > end:
            self.bad += 1
            return
        sport, dport, seq, ack, offflags, win = _TCP.unpack_from(buf, p)
        hlen = (offflags >> 10) & 0x3C
        seglen = l4len - hlen
        if hlen < 20 or seglen < 0:
            self.bad += 1
            return
        n = 0
        flows = self._flows
        if flows is not None:
            key = buf[a : p + 4] if a + alen == p else buf[a : a + alen] + buf[p : p + 4]
            n = flows.segment(key, seq, ack, offflags & 0xFF, win, seglen, ts)
        if n or self._per_packet or self._tcp_ports:
            self._tcp_rest(
                buf,
                a,
                alen,
                p,
                end,
                ts,
                version,
                ttl,
                tot,
                sport,
                dport,
                seq,
                ack,
                offflags & 0xFF,
                hlen,
                seglen,
                n,
            )

    def _tcp_rest(
        self,
        buf: bytes,
        a: int,
        alen: int,
        p: int,
        end: int,
        ts: int,
        version: int,
        ttl: int,
        tot: int,
        sport: int,
        dport: int,
        seq: int,
        ack: int,
        flags: int,
        hlen: int,
        seglen: int,
        retransmits: int,
    ) -> None:
        """The detector calls for a TCP segment: retransmission, per-packet, payload."""
        if retransmits:
            pkt = self._fill(ts, version, buf, a, alen, 6, sport, dport, ttl, tot, flags, seq, ack)
            for on_retrans in self._retrans:
                found = on_retrans(pkt, retransmits)
                if found:
                    self._deliver(found)
        per_packet = self._per_packet
        if per_packet:
            # _fill inlined: this runs for every TCP packet when a detector wants them all.
            pkt = self.pkt
            half = a + (alen >> 1)
            pkt.ts = ts
            pkt.version = version
            pkt.src = buf[a:half]
            pkt.dst = buf[half : a + alen]
            pkt.proto = 6
            pkt.sport = sport
            pkt.dport = dport
            pkt.ttl = ttl
            pkt.length = tot
            pkt.tcp_flags = flags
            pkt.seq = seq
            pkt.ack = ack
            pkt.fragment = False
            for on_packet in per_packet:
                found = on_packet(pkt)
                if found:
                    self._deliver(found)
        ports = self._tcp_ports
        if ports and (sport in ports or dport in ports):
            handlers = ports.get(sport) or ports[dport]
            start = p + hlen
            stop = min(end, start + seglen)
            payload = buf[start:stop] if stop > start else b""
            pkt = self._fill(ts, version, buf, a, alen, 6, sport, dport, ttl, tot, flags, seq, ack)
            for on_payload in handlers:
                found = on_payload(pkt, payload)
                if found:
                    self._deliver(found)

    def _udp(
        self,
        buf: bytes,
        a: int,
        alen: int,
        p: int,
        end: int,
        l4len: int,
        ts: int,
        version: int,
        ttl: int,
        tot: int,
    ) -> None:
        if p + 8 > end or l4len < 8:
            self.bad += 1
            return
        sport, dport, ulen = _UDP.unpack_from(buf, p)
        if self._per_packet:
            self._packet(
                ts,
                version,
                buf[a : a + (alen >> 1)],
                buf[a + (alen >> 1) : a + alen],
                17,
                sport,
                dport,
                ttl,
                tot,
                0,
                0,
                0,
                False,
            )
        if ulen < 8:
            self.bad += 1
            return
        ulen = min(ulen, l4len)
        stop = min(end, p + ulen)
        if self._udp_ports:
            handlers = self._udp_ports.get(sport) or self._udp_ports.get(dport)
            if handlers:
                payload = buf[p + 8 : stop]
                pkt = self._fill(ts, version, buf, a, alen, 17, sport, dport, ttl, tot, 0, 0, 0)
                for on_payload in handlers:
                    found = on_payload(pkt, payload)
                    if found:
                        self._deliver(found)
        if dport in {UDP_VXLAN, UDP_GENEVE} or UDP_TEREDO in (sport, dport):
            self._udp_tunnel(sport, dport, buf, p + 8, stop, ulen - 8, ts)

    def _udp_tunnel(
        self, sport: int, dport: int, buf: bytes, q: int, end: int, rlen: int, ts: int
    ) -> None:
        if self._depth >= MAX_TUNNEL_DEPTH or q + 8 > end:
            return
        self._depth += 1
        try:
            if dport == UDP_VXLAN:
                if buf[q] & 0x08:
                    self._inner_ether(buf, q + 8, end, rlen - 8, ts)
            elif dport == UDP_GENEVE:
                hlen = 8 + ((buf[q] & 0x3F) << 2)
                proto = (buf[q + 2] << 8) | buf[q + 3]
                if proto == ETH_TEB:
                    self._inner_ether(buf, q + hlen, end, rlen - hlen, ts)
                else:
                    self._ethertype(proto, buf, q + hlen, end, rlen - hlen, ts)
            else:  # Teredo: optional authentication and origin indication, then IPv6
                x = q
                if buf[x : x + 2] == b"\x00\x01" and x + 4 <= end:
                    x += 4 + buf[x + 2] + buf[x + 3] + 9
                if buf[x : x + 2] == b"\x00\x00":
                    x += 8
                if x < end and buf[x] >> 4 == 6:
                    self._ip6(buf, x, end, rlen - (x - q), ts)
        finally:
            self._depth -= 1

    # -- detector calls ----------------------------------------------------------------

    def _fill(
        self,
        ts: int,
        version: int,
        buf: bytes,
        a: int,
        alen: int,
        proto: int,
        sport: int,
        dport: int,
        ttl: int,
        tot: int,
        flags: int,
        seq: int,
        ack: int,
    ) -> PacketView:
        pkt = self.pkt
        half = alen >> 1
        pkt.ts = ts
        pkt.version = version
        pkt.src = buf[a : a + half]
        pkt.dst = buf[a + half : a + alen]
        pkt.proto = proto
        pkt.sport = sport
        pkt.dport = dport
        pkt.ttl = ttl
        pkt.length = tot
        pkt.tcp_flags = flags
        pkt.seq = seq
        pkt.ack = ack
        pkt.fragment = False
        return pkt

    def _packet(
        self,
        ts: int,
        version: int,
        src: bytes,
        dst: bytes,
        proto: int,
        sport: int,
        dport: int,
        ttl: int,
        tot: int,
        flags: int,
        seq: int,
        ack: int,
        fragment: bool,
    ) -> None:
        pkt = self.pkt
        pkt.ts = ts
        pkt.version = version
        pkt.src = src
        pkt.dst = dst
        pkt.proto = proto
        pkt.sport = sport
        pkt.dport = dport
        pkt.ttl = ttl
        pkt.length = tot
        pkt.tcp_flags = flags
        pkt.seq = seq
        pkt.ack = ack
        pkt.fragment = fragment
        for on_packet in self._per_packet:
            found = on_packet(pkt)
            if found:
                self._deliver(found)

    def _deliver(self, found: Sequence[Detection]) -> None:
        for detection in found:
            self.detections += 1
            self._emit(detection)
