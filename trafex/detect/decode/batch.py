"""Ethernet frames decoded in batches with numpy: the sensor's fast path.

Frame by frame (:meth:`~trafex.detect.decode.links.Decoder.ether`), the sensor
spends about 2 µs of interpreter time on every packet, most of it on the
in-order segment of a known TCP conversation, where nothing can be detected. A
batch does the same work for up to ``MAX_BATCH`` frames with array operations,
and leaves to Python only the packets where something can happen. The result
is the same, byte for byte: the flow table's records, the counters and the
detections, in packet order (tests compare the two on random and mutated
traffic).

How, in three steps:

1. **Fields.** Every header field the fast path reads is gathered for all
   frames at once (:class:`~trafex.detect.decode.fields.FrameFields`). For
   each *eligible* frame (one the fast path takes, also past one or two VLAN
   tags) its direction is looked up in the flow table, and conversations seen
   for the first time are opened then, in packet order (as ``segment()`` would
   open them: same records).
2. **Flow table, in rounds.** Conversations are independent, so each is
   followed on its own, its segments in order: each conversation's in-order
   prefix is written at once (:mod:`~trafex.detect.decode.prefix`), then its
   first segment left goes through ``segment()`` (a handshake, a
   retransmission...), and the next round starts from there. After a few
   rounds, or when few segments are left, the rest go through ``segment()`` in
   order.
3. **Detectors, in packet order.** The retransmission counts that
   ``segment()`` returned are kept per frame; then, in packet order, a
   retransmission or a segment on a watched port (DNS over TCP) goes to the
   detectors and a frame the fast path does not take (UDP, ICMP, other types)
   to the decoder's general path. Neither touches the flow table.

Frames that the decoder would take to the flow table by another path (IPv6
extension headers, IPv4 options, a fragment, a tunnel, MPLS, three VLAN tags)
are *unsafe*: each is decoded on its own between two batches, in its place. A
run with many of them (a capture of tunnels) goes frame by frame, as does the
rest of a run when new conversations could fill the flow table (which ones are
then evicted depends on every conversation's last time), and a run too small
to pay for the array set-up.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from trafex.detect.capture.frames import I64, Frames
from trafex.detect.decode.fields import (
    ADDR4,
    ADDR6,
    IP,
    KEY4,
    KEY6,
    TCP6,
    FrameFields,
)
from trafex.detect.decode.links import Decoder
from trafex.detect.decode.network import (
    ETH_IPV4,
    ETH_IPV6,
    ETH_MPLS,
    ETH_PPPOE_SESSION,
    ETH_TEB,
    IP_TUNNELS,
    UDP_GENEVE,
    UDP_TEREDO,
    UDP_VXLAN,
    VLAN_TYPES,
)
from trafex.detect.decode.prefix import advance
from trafex.detect.flows.table import TcpFlowTable
from trafex.model.protocols import PROTO_ICMPV6, PROTO_TCP, PROTO_UDP

MAX_BATCH = 4096
"""Frames per batch at most. The detections of one batch reach the sender together
(and queue for it); a thread waiting for the GIL waits at most ~1 ms per batch (C
loops: index look-ups, lists). Larger batches are ~5% faster."""
MAX_ROUNDS = 8
"""Rounds of prefix steps per batch; what is left then goes through segment() in order."""
MIN_ROUND = 64
"""Fewer pending segments than this: segment() one by one is cheaper than a round."""
UNSAFE_SHARE = 64
"""More than one unsafe frame in this many: the run goes frame by frame."""

# Ethernet types the decoder looks into (IP, VLAN tags, PPPoE, MPLS, bridged
# Ethernet; 802.3 lengths that may carry SNAP are below 0x0600): a packet of any
# other type cannot reach the flow table.
_DECODED_ETHERTYPES = sorted(
    {ETH_IPV4, ETH_IPV6, *VLAN_TYPES, ETH_PPPOE_SESSION, *ETH_MPLS, ETH_TEB}
)
_IP4_TO_FLOWS = sorted({PROTO_TCP, *IP_TUNNELS})  # TCP, or a tunnel that may carry it
_IP6_HARMLESS = (
    PROTO_UDP,
    PROTO_ICMPV6,
)  # UDP, ICMPv6: what cannot lead to TCP past the IPv6 header
_TUNNEL_UDP_PORTS = (UDP_VXLAN, UDP_GENEVE, UDP_TEREDO)


class FrameBatcher:
    """Runs of Ethernet frames with a flow table, in batches (see the module's doc)."""

    def __init__(self, decoder: Decoder, flows: TcpFlowTable, min_records: int) -> None:
        self._decoder = decoder
        self._flows = flows
        self.min_records = min_records
        self.unsafe_share = UNSAFE_SHARE
        self.min_round = MIN_ROUND
        self.max_batch = MAX_BATCH
        self._watched = np.frombuffer(bytes(decoder.watched_tcp), dtype=np.uint8).astype(bool)
        self.batched = 0  # frames handled in batches (the rest went one by one)
        self.in_order = 0  # of which in-order segments taken by the prefix step

    def frames(self, frames: Frames) -> None:
        """Decode a run of Ethernet frames as ``Decoder.ether()`` would, one by one."""
        n = len(frames)
        buf = frames.buf
        done = 0
        if n >= self.min_records:
            done = max(self._run(buf, FrameFields(buf, *frames.arrays())), 0)
        if done < n:
            ether = self._decoder.ether
            offsets, caplens, wirelens, times = frames.lists()
            for i in range(done, n):
                ether(buf, offsets[i], caplens[i], wirelens[i], times[i])

    def _run(self, buf: bytes, fields: FrameFields) -> int:
        """Decode a run's frames: how many (from the first) were decoded; -1: none,
        decode them one by one (too many unsafe ones)."""
        n = len(fields)
        unsafe = self._unsafe(fields).tolist()
        if len(unsafe) * self.unsafe_share > n:  # e.g. a capture of tunnels: one by one
            return -1
        # Parts between the unsafe frames, each in batches; an unsafe frame on its own,
        # as ether() takes it.
        lo = 0
        step = self.max_batch
        for hi in [*unsafe, n]:
            for part in range(lo, hi, step):
                if not self._batch(buf, fields.part(part, min(part + step, hi))):
                    # New conversations could fill the table: which ones are then
                    # evicted depends on every conversation's last time, one by one.
                    return part
            if hi < n:
                self._decoder.ether(
                    buf,
                    int(fields.frame[hi]),
                    int(fields.caplen[hi]),
                    int(fields.wirelen[hi]),
                    int(fields.ts[hi]),
                )
            lo = hi + 1
        return n

    def _batch(self, buf: bytes, fields: FrameFields) -> bool:
        """Steps 2 and 3 for frames that no unsafe one interrupts; False (and nothing
        done) when new conversations could fill the flow table."""
        flows = self._flows
        n = len(fields)
        idx = np.full(n, -1, dtype=np.int64)
        e4 = np.flatnonzero(fields.eligible & ~fields.v6)
        e6 = np.flatnonzero(fields.eligible & fields.v6)
        if len(e4):
            idx[e4] = flows.records(fields.keys(e4, ADDR4, KEY4))
        if len(e6):
            idx[e6] = flows.records(fields.keys(e6, ADDR6, KEY6))
        new = np.flatnonzero(fields.eligible & (idx < 0))
        if len(new):
            if len(flows) + len(new) >= flows.config.max_flows:
                return False
            # New conversations are opened first, in packet order (the order
            # segment() would open them in, so they get the same records).
            bases = fields.base[new].tolist()
            v6s = fields.v6[new].tolist()
            times = fields.ts[new].tolist()
            idx[new] = [
                flows.track(_key(buf, base, v6), ts)
                for base, v6, ts in zip(bases, v6s, times, strict=True)
            ]
        counts = np.zeros(n, dtype=np.int64)  # retransmission counts from segment()
        self._analyse(buf, fields, np.flatnonzero(fields.eligible), idx, counts)
        self._detect(buf, fields, counts)
        self.batched += n
        return True

    def _analyse(
        self, buf: bytes, fields: FrameFields, pending: I64, idx: I64, counts: I64
    ) -> None:
        """Step 2 for the eligible frames ``pending`` (known directions ``idx``), in
        rounds: each conversation's in-order prefix at once, then its first other
        segment through ``segment()``, then the next prefix... A conversation's
        segments stay in order; conversations are independent of each other."""
        segment = self._flows.segment
        rounds = 0
        while len(pending) >= self.min_round and rounds < MAX_ROUNDS:
            rounds += 1
            took = advance(self._flows.slab, fields, pending, idx[pending])
            self.in_order += int(np.count_nonzero(took))
            pending = pending[~took]
            if not len(pending):
                return
            # Each conversation's first segment left (pending is in packet order;
            # the conversations' order does not matter).
            _, first = np.unique(idx[pending] >> 1, return_index=True)
            heads = pending[first]
            counts[heads] = _segments(buf, fields, heads, segment)
            left = np.ones(len(pending), dtype=bool)
            left[first] = False
            pending = pending[left]
        if len(pending):
            counts[pending] = _segments(buf, fields, pending, segment)

    def _unsafe(self, fields: FrameFields) -> I64:
        """The frames outside the fast path that might still reach the flow table
        (their positions): decoded further than this module checks."""
        other = np.flatnonzero(~fields.eligible & ~fields.bad)
        et = fields.et[other]
        m = fields.m[other]
        # Ethernet types the decoder looks into; a frame too short is bad for it.
        decoded = (np.isin(et, _DECODED_ETHERTYPES) | (et < 0x0600)) & (fields.caplen[other] >= 14)
        ip4 = decoded & (et == ETH_IPV4)
        ip6 = decoded & (et == ETH_IPV6)
        unsafe = decoded & ~ip4 & ~ip6  # VLAN, PPPoE, MPLS, bridged, SNAP: maybe TCP
        # IPv4: safe when bad (for the decoder), or neither a fragment nor TCP, IP-in-IP
        # or GRE.
        ihl = (m[:, IP] & 0x0F).astype(np.int64) << 2
        frag = ((m[:, IP + 6].astype(np.int64) << 8) | m[:, IP + 7]) & 0x3FFF
        proto4 = m[:, IP + 9]
        bad4 = (m[:, IP] >> 4 != 4) | (ihl < 20)
        unsafe |= ip4 & ~bad4 & ((frag != 0) | np.isin(proto4, _IP4_TO_FLOWS))
        # IPv6: safe when bad, or UDP or ICMPv6 right after the header (an extension
        # header might lead to TCP).
        nh6 = m[:, IP + 6]
        bad6 = m[:, IP] >> 4 != 6
        unsafe |= ip6 & ~bad6 & ~np.isin(nh6, _IP6_HARMLESS)
        # UDP to or from a tunnel port (VXLAN, GENEVE, Teredo) is opened.
        udp = np.flatnonzero(
            (ip4 & ~bad4 & (frag == 0) & (proto4 == PROTO_UDP)) | (ip6 & ~bad6 & (nh6 == PROTO_UDP))
        )
        if len(udp):
            at = fields.base[other[udp]] + np.where(ip6[udp], TCP6, IP + ihl[udp])
            ports = np.concatenate((fields.be16(at), fields.be16(at + 2)))
            tunnel = np.isin(ports, _TUNNEL_UDP_PORTS)
            unsafe[udp] |= tunnel[: len(udp)] | tunnel[len(udp) :]
        found: I64 = other[unsafe]
        return found

    def _detect(self, buf: bytes, fields: FrameFields, counts: I64) -> None:
        """Step 3: the detector calls, in packet order: the decoder's general path for
        the frames outside the fast path, ``packet()`` for a retransmission or a
        segment on a watched port."""
        decoder = self._decoder
        decoder.bad += int(np.count_nonzero(fields.bad))
        elig = fields.eligible
        watched = self._watched[fields.sport] | self._watched[fields.dport]
        todo = np.flatnonzero((~elig & ~fields.bad) | (elig & ((counts != 0) | watched)))
        if not len(todo):
            return
        packet = decoder.packet
        general = decoder.ether_general
        v6 = fields.v6[todo]
        frame = fields.frame[todo]
        caplen = fields.caplen[todo]
        ts = fields.ts[todo]
        a = fields.base[todo] + np.where(v6, ADDR6, ADDR4)  # source, destination, ports
        alen = np.where(v6, 32, 8)
        # packet()'s arguments after ``buf`` up to the last three, and ether_general's.
        packet_args = zip(
            *(
                column.tolist()
                for column in (
                    a,
                    alen,
                    ts,
                    np.where(v6, 6, 4),
                    fields.ttl[todo],
                    fields.tot[todo],
                    fields.sport[todo],
                    fields.dport[todo],
                    fields.flags[todo],
                    fields.seq[todo],
                    fields.ack[todo],
                    counts[todo],
                    a + alen + fields.hlen[todo],
                    frame + caplen,
                    fields.seglen[todo],
                )
            ),
            strict=True,
        )
        ether_args = zip(
            frame.tolist(), caplen.tolist(), fields.wirelen[todo].tolist(), ts.tolist(), strict=True
        )
        tcp: tuple[Any, ...] = (6, False, decoder.tcp_ports)  # proto, fragment, ports
        for eligible, args, ether in zip(elig[todo].tolist(), packet_args, ether_args, strict=True):
            if eligible:
                packet(buf, *args, *tcp)
            else:
                general(buf, *ether)


def _key(buf: bytes, base: int, v6: bool) -> bytes:
    """The direction's key of an eligible frame (source, destination, ports)."""
    if v6:
        return buf[base + ADDR6 : base + ADDR6 + KEY6]
    return buf[base + ADDR4 : base + ADDR4 + KEY4]


def _segments(
    buf: bytes, fields: FrameFields, which: I64, segment: Callable[..., int]
) -> list[int]:
    """``segment()`` for frames ``which``, in that order; their retransmission counts."""
    return [
        segment(_key(buf, base, v6), seq, ack, flags, win, seglen, ts)
        for base, v6, seq, ack, flags, win, seglen, ts in zip(
            fields.base[which].tolist(),
            fields.v6[which].tolist(),
            fields.seq[which].tolist(),
            fields.ack[which].tolist(),
            fields.flags[which].tolist(),
            fields.win[which].tolist(),
            fields.seglen[which].tolist(),
            fields.ts[which].tolist(),
            strict=True,
        )
    ]
