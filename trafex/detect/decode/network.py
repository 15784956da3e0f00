"""The decoder's IP layer: Ethernet types, IPv4 and IPv6, TCP and UDP, tunnels, fragments.

Lengths follow tshark: the TCP segment length comes from the IP header
(bounded by the frame's length on the wire, ``rlen``), not from the captured
bytes, so snaplen-cut packets are still analysed. A packet too short for the
headers read, or with impossible header lengths, is counted in ``bad`` and
skipped. IP fragments are counted, shown to per-packet detectors (their ports
0) and reassembled (:mod:`~trafex.detect.decode.reassembly`, as tshark does);
a reassembled datagram is decoded again for everything else. An atomic IPv6
fragment (offset 0, no more fragments) is an ordinary packet. IP-in-IP, GRE,
VXLAN, GENEVE and Teredo are opened, at most ``MAX_TUNNEL_DEPTH`` deep.

Every method takes the buffer ``buf``, where the header starts (``q``), where
the captured bytes end (``end``), the bytes left on the wire from ``q``
(``rlen``) and the packet time in ns (``ts``).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence

from trafex.detect.decode.dispatch import NO_PORTS, DetectorCalls
from trafex.detect.decode.reassembly import FragmentCache
from trafex.detect.detection import Detection
from trafex.detect.detectors.base import Detector
from trafex.detect.flows.table import TcpFlowTable
from trafex.model.protocols import PROTO_TCP, PROTO_UDP

ETH_IPV4 = 0x0800
ETH_IPV6 = 0x86DD
VLAN_TYPES = frozenset({0x8100, 0x88A8, 0x9100, 0x9200})  # a 4-byte tag follows
ETH_PPPOE_SESSION = 0x8864
ETH_MPLS = frozenset({0x8847, 0x8848})
ETH_TEB = 0x6558  # transparent Ethernet bridging: an Ethernet frame follows
SNAP = b"\xaa\xaa\x03"  # an 802.2 LLC header announcing a SNAP header

IP_TUNNELS = frozenset({4, 41, 47})  # IP-in-IP, IPv6-in-IP, GRE (IANA protocol numbers)
UDP_VXLAN = 4789
UDP_GENEVE = 6081
UDP_TEREDO = 3544
MAX_TUNNEL_DEPTH = 4

_IP4 = struct.Struct("!BxHHHBB")
_IP6 = struct.Struct("!IHBB")
_TCP = struct.Struct("!HHIIHH")
_UDP = struct.Struct("!HHH")
_IPV6_EXT = frozenset({0, 43, 60, 51, 135, 139, 140})  # and 44, the fragment header


class IpDecoder(DetectorCalls):
    """IP packets (and what carries them after an Ethernet type) into the flow table
    and the detectors."""

    def __init__(
        self,
        detectors: Sequence[Detector],
        flows: TcpFlowTable | None,
        emit: Callable[[Detection], None],
    ) -> None:
        super().__init__(detectors, emit)
        # The flow table is kept only when a detector wants retransmissions.
        self.flows = flows if self.on_retransmission else None
        self.non_ip = 0
        self.fragments = 0
        self.fragment_cache = FragmentCache()
        self._depth = 0

    # -- after an Ethernet type --------------------------------------------------------

    def ethertype(self, et: int, buf: bytes, q: int, end: int, rlen: int, ts: int) -> None:
        """Everything after an Ethernet type field: VLAN tags, PPPoE, MPLS, SNAP, IP."""
        while True:
            if et == ETH_IPV4:
                self.ip4(buf, q, end, rlen, ts)
                return
            if et == ETH_IPV6:
                self.ip6(buf, q, end, rlen, ts)
                return
            if et in VLAN_TYPES:
                if q + 4 > end:
                    self.bad += 1
                    return
                et = (buf[q + 2] << 8) | buf[q + 3]
                q += 4
                rlen -= 4
            elif et < 0x0600 and buf[q : q + 3] == SNAP and q + 8 <= end:
                # An 802.3 length field, then LLC and SNAP: the Ethernet type follows.
                et = (buf[q + 6] << 8) | buf[q + 7]
                q += 8
                rlen -= 8
            else:
                self._ethertype_other(et, buf, q, end, rlen, ts)
                return

    def _ethertype_other(self, et: int, buf: bytes, q: int, end: int, rlen: int, ts: int) -> None:
        """PPPoE, MPLS, bridged Ethernet; anything else is not IP."""
        if et == ETH_PPPOE_SESSION:
            if q + 8 > end:
                self.bad += 1
                return
            # The PPPoE length (PPP protocol field included) bounds the IP packet.
            plen = ((buf[q + 4] << 8) | buf[q + 5]) - 2
            rlen = min(rlen - 8, plen)
            self.ppp_proto((buf[q + 6] << 8) | buf[q + 7], buf, q + 8, end, rlen, ts)
        elif et in ETH_MPLS:
            while True:  # labels up to the bottom of the stack
                if q + 4 > end:
                    self.bad += 1
                    return
                bottom = buf[q + 2] & 1
                q += 4
                rlen -= 4
                if bottom:
                    break
            self.ip_by_version(buf, q, end, rlen, ts)
        elif et == ETH_TEB:
            self._inner_ether(buf, q, end, rlen, ts)
        else:
            self.non_ip += 1

    def _inner_ether(self, buf: bytes, q: int, end: int, rlen: int, ts: int) -> None:
        """An Ethernet frame inside a tunnel."""
        if self._depth >= MAX_TUNNEL_DEPTH or q + 14 > end:
            return
        self._depth += 1
        try:
            self.ethertype((buf[q + 12] << 8) | buf[q + 13], buf, q + 14, end, rlen - 14, ts)
        finally:
            self._depth -= 1

    def ip_by_version(self, buf: bytes, q: int, end: int, rlen: int, ts: int) -> None:
        """An IP packet of either version (its first nibble says which)."""
        if q >= end:
            self.bad += 1
            return
        version = buf[q] >> 4
        if version == 4:
            self.ip4(buf, q, end, rlen, ts)
        elif version == 6:
            self.ip6(buf, q, end, rlen, ts)
        else:
            self.bad += 1

    def ppp_proto(self, proto: int, buf: bytes, q: int, end: int, rlen: int, ts: int) -> None:
        """What follows a PPP protocol field."""
        if proto == 0x0021:
            self.ip4(buf, q, end, rlen, ts)
        elif proto == 0x0057:
            self.ip6(buf, q, end, rlen, ts)
        else:
            self.non_ip += 1

    # -- IP ----------------------------------------------------------------------------

    def ip4(self, buf: bytes, q: int, end: int, rlen: int, ts: int) -> None:
        """An IPv4 packet."""
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
            # Reassembled per (identification, protocol, source, destination).
            key = buf[q + 4 : q + 6] + buf[q + 9 : q + 10] + buf[q + 12 : q + 20]
            offset, more = (frag & 0x1FFF) << 3, bool(frag & 0x2000)
            self._fragment(buf, q, end, ts, 4, proto, ttl, tot, key, offset, more, p)
        elif proto == PROTO_TCP:
            self._tcp(buf, q + 12, 8, p, end, tot - ihl, ts, 4, ttl, tot)
        elif proto == PROTO_UDP:
            self._udp(buf, q + 12, 8, p, end, tot - ihl, ts, 4, ttl, tot)
        else:
            self._other(buf, q + 12, 8, proto, ttl, tot, p, end, tot - ihl, ts)

    def ip6(self, buf: bytes, q: int, end: int, rlen: int, ts: int) -> None:
        """An IPv6 packet, its extension headers skipped."""
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
                    # Reassembled per (identification, source, destination).
                    key = buf[p + 4 : p + 8] + buf[q + 8 : q + 40]
                    offset, more = frag & 0xFFF8, bool(frag & 1)
                    self._fragment(buf, q, end, ts, 6, buf[p], hlim, tot, key, offset, more, p + 8)
                    return
                nh = buf[p]
                p += 8
            else:  # AH counts 4-byte words past 2, the others 8-byte words past 1
                ln = (buf[p + 1] + 2) << 2 if nh == 51 else (buf[p + 1] + 1) << 3
                nh = buf[p]
                p += ln
        l4len = tot - (p - q)
        if l4len < 0:
            self.bad += 1
        elif nh == PROTO_TCP:
            self._tcp(buf, q + 8, 32, p, end, l4len, ts, 6, hlim, tot)
        elif nh == PROTO_UDP:
            self._udp(buf, q + 8, 32, p, end, l4len, ts, 6, hlim, tot)
        else:
            self._other(buf, q + 8, 32, nh, hlim, tot, p, end, l4len, ts)

    def _fragment(
        self,
        buf: bytes,
        q: int,
        end: int,
        ts: int,
        version: int,
        proto: int,
        ttl: int,
        tot: int,
        key: bytes,
        offset: int,
        more: bool,
        data: int,
    ) -> None:
        """An IP fragment (the IP header at ``q``, its data from ``data``): counted,
        shown to per-packet detectors, kept until its datagram is whole, which is then
        decoded."""
        self.fragments += 1
        if self.per_packet:
            a, alen = (q + 12, 8) if version == 4 else (q + 8, 32)
            self.packet(
                buf, a, alen, ts, version, ttl, tot, 0, 0, 0, 0, 0, 0, 0, 0, 0, proto, True,
                NO_PORTS,
            )  # fmt: skip
        if q + tot > end:
            return  # not all captured
        whole = self.fragment_cache.add(key, offset, more, buf[data : q + tot], ts)
        if whole is None:
            return
        if version == 4:  # the header without options, as one unfragmented datagram
            header = bytearray(buf[q : q + 20])
            header[0] = 0x45
            header[2:4] = (20 + len(whole)).to_bytes(2, "big")
            header[6:8] = b"\0\0"
        else:  # the fixed header, the fragment's next header after it
            header = bytearray(buf[q : q + 40])
            header[4:6] = len(whole).to_bytes(2, "big")
            header[6] = proto
        self._reassembled(bytes(header) + whole, ts)

    def _reassembled(self, datagram: bytes, ts: int) -> None:
        """Decode a reassembled datagram (per-packet detectors saw its fragments)."""
        if self._depth >= MAX_TUNNEL_DEPTH:
            return
        per_packet = self.per_packet
        self.per_packet = ()
        self._depth += 1
        try:
            self.ip_by_version(datagram, 0, len(datagram), len(datagram), ts)
        finally:
            self.per_packet = per_packet
            self._depth -= 1

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
        """A packet that is neither TCP nor UDP (the addresses at ``buf[a : a + alen]``):
        per-packet detectors see it; IP-in-IP and GRE are opened."""
        if self.per_packet:
            version = 4 if alen == 8 else 6
            self.packet(
                buf, a, alen, ts, version, ttl, tot, 0, 0, 0, 0, 0, 0, 0, 0, 0, proto, False,
                NO_PORTS,
            )  # fmt: skip
        if proto in IP_TUNNELS:
            self._ip_tunnel(proto, buf, p, end, l4len, ts)

    def _ip_tunnel(self, proto: int, buf: bytes, p: int, end: int, rlen: int, ts: int) -> None:
        """IP-in-IP, IPv6-in-IP and GRE: decode the inner packet (depth-limited)."""
        if self._depth >= MAX_TUNNEL_DEPTH:
            return
        self._depth += 1
        try:
            if proto == 4:
                self.ip4(buf, p, end, rlen, ts)
            elif proto == 41:
                self.ip6(buf, p, end, rlen, ts)
            elif p + 4 <= end:  # GRE
                flags = buf[p]
                inner = (buf[p + 2] << 8) | buf[p + 3]
                hlen = 4 + 4 * ((flags >> 7 & 1) + (flags >> 5 & 1) + (flags >> 4 & 1))
                if buf[p + 1] & 7 == 0:
                    self.ethertype(inner, buf, p + hlen, end, rlen - hlen, ts)
        finally:
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
        """A TCP segment (the addresses at ``buf[a : a + alen]``, its header at ``p``)."""
        if p + 20 > end:
            self.bad += 1
            return
        sport, dport, seq, ack, offflags, win = _TCP.unpack_from(buf, p)
        hlen = (offflags >> 10) & 0x3C
        seglen = l4len - hlen
        if hlen < 20 or seglen < 0:
            self.bad += 1
            return
        flags = offflags & 0xFF
        n = 0
        flows = self.flows
        if flows is not None:
            key = buf[a : p + 4] if a + alen == p else buf[a : a + alen] + buf[p : p + 4]
            n = flows.segment(key, seq, ack, flags, win, seglen, ts)
        watched = self.watched_tcp
        if n or watched[sport] or watched[dport]:
            self.packet(
                buf, a, alen, ts, version, ttl, tot, sport, dport, flags, seq, ack, n, p + hlen,
                end, seglen, 6, False, self.tcp_ports,
            )  # fmt: skip

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
        """A UDP datagram (the addresses at ``buf[a : a + alen]``, its header at ``p``)."""
        if p + 8 > end or l4len < 8:
            self.bad += 1
            return
        sport, dport, ulen = _UDP.unpack_from(buf, p)
        ports = self.udp_ports if ulen >= 8 else NO_PORTS  # no payload when bad
        if self.per_packet or (ports and (sport in ports or dport in ports)):
            self.packet(
                buf, a, alen, ts, version, ttl, tot, sport, dport, 0, 0, 0, 0, p + 8, end,
                min(ulen, l4len) - 8, 17, False, ports,
            )  # fmt: skip
        if ulen < 8:
            self.bad += 1
            return
        ulen = min(ulen, l4len)
        stop = min(end, p + ulen)
        if dport in {UDP_VXLAN, UDP_GENEVE} or UDP_TEREDO in (sport, dport):
            self._udp_tunnel(sport, dport, buf, p + 8, stop, ulen - 8, ts)

    def _udp_tunnel(
        self, sport: int, dport: int, buf: bytes, q: int, end: int, rlen: int, ts: int
    ) -> None:
        """VXLAN, GENEVE and Teredo: decode the inner frame or packet (depth-limited)."""
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
                    self.ethertype(proto, buf, q + hlen, end, rlen - hlen, ts)
            else:  # Teredo: optional authentication and origin indication, then IPv6
                x = q
                if buf[x : x + 2] == b"\x00\x01" and x + 4 <= end:
                    x += 4 + buf[x + 2] + buf[x + 3] + 9
                if buf[x : x + 2] == b"\x00\x00":
                    x += 8
                if x < end and buf[x] >> 4 == 6:
                    self.ip6(buf, x, end, rlen - (x - q), ts)
        finally:
            self._depth -= 1
