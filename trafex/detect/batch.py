"""Ethernet frames of a capture file decoded in batches with numpy: the sensor's fast path.

Frame by frame (:meth:`Decoder.ether`, or the pcap walker that fuses it with the
record loop), the sensor spends about 2 µs of interpreter time on every packet,
most of it on the in-order segment of a known TCP conversation, where nothing
can be detected. A batch does the same work for up to ``MAX_BATCH`` frames with
array operations, and leaves to Python only the packets where something can
happen. The result is the same, byte for byte: the flow table's records, the
counters and the detections, in packet order (tests compare the two on random
and mutated traffic). pcap files hand their chunks over through
:class:`BatchWalker`, pcapng files their runs of Ethernet frames through
:class:`FrameBatcher`.

How, in three steps:

1. **Fields.** The frames' offsets come from the reader (for pcap, a short
   Python loop over the records, which have variable lengths); every header
   field the fast path reads is then gathered for all frames at once. A frame
   that ``Decoder.ether()`` would take on its fast path (Ethernet, IPv4 without
   options or IPv6 without extension headers, TCP, not a fragment), or that
   only one or two VLAN tags keep from it (a mirror port's capture), is
   *eligible*; its direction is looked up in the flow table's index, and
   conversations seen for the first time are opened then, in packet order (as
   ``segment()`` would open them: same records).
2. **Flow table, in rounds.** Conversations are independent, so each is
   followed on its own, its segments in order. A segment is *simple* when
   ``TcpFlowTable.segment()``'s fast path would take it (an in-order ACK or
   data segment of a settled direction, not already acked by the peer). Whether
   it is, and the state it finds, follow in closed form from the state at the
   start of the round and the conversation's earlier segments, as long as those
   were simple: this holds for each conversation's *prefix*, its segments before
   the first non-simple one. The state after each prefix (next sequence number,
   last ACK, duplicate ACK count, window, flags, times) is written into the flow
   table's slab at once; then each conversation's first segment left goes
   through ``segment()`` (a handshake, a retransmission...), and the next round
   starts from there. After a few rounds, or when few segments are left, the
   rest go through ``segment()`` in order. Closed form needs one invariant,
   checked per conversation and usual past the handshake: each direction's
   highest sequence number to be acked equals its next sequence number; a
   conversation without it leaves its next segment to ``segment()``.
3. **Detectors, in packet order.** The retransmission counts that
   ``segment()`` returned are kept per frame; then, in packet order, a
   retransmission or a segment on a watched port (DNS over TCP) goes to the
   detectors and a frame the fast path does not take (UDP, ICMP, other types)
   to the decoder's general path. Neither touches the flow table.

Frames that the decoder would take to the flow table by another path (IPv6
extension headers, IPv4 options, a fragment, a tunnel, MPLS, three VLAN tags)
are *unsafe*: each is decoded on its own between two batches, in its place. A
chunk with many of them (a capture of tunnels) goes frame by frame, as does
the rest of a chunk when new conversations could fill the flow table (which
ones are then evicted depends on every conversation's last time), and a chunk
too small to pay for the array set-up.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from itertools import repeat
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

from trafex.detect.flowtable import (
    _REC,
    _SETTLED,
    _SETTLED_MASK,
    F2_ACKED_UNSEEN,
    F_KEEPALIVE,
    F_WIN_SEEN,
    F_ZWP,
    HALF,
    M32,
    TcpFlowTable,
)

if TYPE_CHECKING:
    from trafex.detect.decode import Decoder, PcapWalker

I64 = npt.NDArray[np.int64]
Mask = npt.NDArray[np.bool_]

MAX_BATCH = 4096
"""Frames per batch at most. The detections of one batch reach the sender together
(and queue for it); a thread waiting for the GIL waits at most ~1 ms per batch (C
loops: index look-ups, lists). Larger batches are ~5% faster."""
MAX_ROUNDS = 8
"""Rounds of prefix steps per run; what is left then goes through segment() in order."""
MIN_ROUND = 64
"""Fewer pending segments than this: segment() one by one is cheaper than a round."""
UNSAFE_SHARE = 64
"""More than one unsafe frame in this many: the chunk goes frame by frame."""

# The flow table's record (flowtable._REC, "<IIIHHBBqqIHq"), field by field.
REC_DTYPE = np.dtype(
    {
        "names": [
            "nextseq",
            "lastack",
            "maxack",
            "dupacks",
            "window",
            "flags",
            "flags2",
            "ack_t",
            "seq_t",
            "base",
            "retrans",
            "aux",
        ],
        "formats": [
            "<u4",
            "<u4",
            "<u4",
            "<u2",
            "<u2",
            "u1",
            "u1",
            "<i8",
            "<i8",
            "<u4",
            "<u2",
            "<i8",
        ],
        "offsets": [0, 4, 8, 12, 14, 16, 17, 18, 26, 34, 38, 40],
        "itemsize": _REC.size,
    }
)
assert REC_DTYPE.itemsize == _REC.size

# Offsets in an Ethernet frame (past its VLAN tags, if any).
_ET = 12  # Ethernet type
_IP = 14  # IP header
_TCP4 = 34  # TCP header after IPv4 without options
_TCP6 = 54  # TCP header after IPv6 without extension headers
_ADDR4 = 26  # IPv4 source and destination addresses, then the TCP ports: the flow key
_ADDR6 = 22
_WIDTH = 70  # bytes read from every frame: up to the end of an IPv6 TCP header's window

# Ethernet types the decoder looks into (IP, VLAN tags, PPPoE, MPLS, bridged
# Ethernet, 802.3 lengths that may carry SNAP): a packet of any other type cannot
# reach the flow table.
_DECODED_ETHERTYPES = (
    0x0800,
    0x86DD,
    0x8100,
    0x88A8,
    0x9100,
    0x9200,
    0x8864,
    0x8847,
    0x8848,
    0x6558,
)
_VLAN_TYPES = (0x8100, 0x88A8, 0x9100, 0x9200)  # a 4-byte tag follows (decode._VLAN_TYPES)
_IS_VLAN = np.zeros(1 << 16, dtype=bool)  # indexed by an Ethernet type: one gather
_IS_VLAN[list(_VLAN_TYPES)] = True
_TUNNEL_UDP_PORTS = (4789, 6081, 3544)  # VXLAN, GENEVE, Teredo (opened by the decoder)


class FrameBatcher:
    """Ethernet frames with a flow table, in batches (see the module's doc)."""

    def __init__(self, decoder: Decoder, flows: TcpFlowTable, min_records: int) -> None:
        self._decoder = decoder
        self._flows = flows
        self.min_records = min_records
        self.unsafe_share = UNSAFE_SHARE
        self.min_round = MIN_ROUND
        self.max_batch = MAX_BATCH
        self._want = np.frombuffer(bytes(decoder._tcp_want), dtype=np.uint8).astype(bool)
        self.batched = 0  # frames handled in batches (the rest went one by one)
        self.in_order = 0  # of which in-order segments taken by the prefix step

    def frames(
        self, buf: bytes, frame: list[int], caplen: list[int], wirelen: list[int], ts: list[int]
    ) -> None:
        """Decode the frames at ``frame`` (offsets in ``buf``, in packet order), as
        ``Decoder.ether()`` would one by one."""
        n = len(frame)
        done = 0
        if n >= self.min_records:
            chunk = _Chunk(
                buf, *(np.array(x, dtype=np.int64) for x in (frame, caplen, wirelen, ts))
            )
            done = self._chunk(buf, chunk)
        ether = self._decoder.ether
        for i in range(max(done, 0), n):
            ether(buf, frame[i], caplen[i], wirelen[i], ts[i])

    def _chunk(self, buf: bytes, chunk: _Chunk) -> int:
        """Decode a chunk's frames: how many (from the first) were decoded; -1: none,
        decode them one by one (too many unsafe ones)."""
        n = len(chunk.frame)
        unsafe = self._unsafe(chunk).tolist()
        if len(unsafe) * self.unsafe_share > n:  # e.g. a capture of tunnels: one by one
            return -1
        # Runs of frames between the unsafe ones, each in batches; an unsafe frame on
        # its own, as ether() takes it.
        lo = 0
        step = self.max_batch
        for hi in [*unsafe, n]:
            for part in range(lo, hi, step):
                if not self._batch(buf, chunk.part(part, min(part + step, hi))):
                    # New conversations could fill the table: which ones are then
                    # evicted depends on every conversation's last time, one by one.
                    return part
            if hi < n:
                self._decoder.ether(
                    buf,
                    int(chunk.frame[hi]),
                    int(chunk.caplen[hi]),
                    int(chunk.wirelen[hi]),
                    int(chunk.ts[hi]),
                )
            lo = hi + 1
        return n

    def _batch(self, buf: bytes, chunk: _Chunk) -> bool:
        """Steps 2 and 3 for a run of frames that no unsafe one interrupts; False
        (and nothing done) when new conversations could fill the flow table."""
        flows = self._flows
        n = len(chunk.frame)
        idx = np.full(n, -1, dtype=np.int64)
        index_get = flows._index.get
        e4 = np.flatnonzero(chunk.eligible & ~chunk.v6)
        e6 = np.flatnonzero(chunk.eligible & chunk.v6)
        if len(e4):
            idx[e4] = list(map(index_get, chunk.keys(e4, _ADDR4, 12), repeat(-1)))
        if len(e6):
            idx[e6] = list(map(index_get, chunk.keys(e6, _ADDR6, 36), repeat(-1)))
        new = np.flatnonzero(chunk.eligible & (idx < 0))
        if len(new):
            if len(flows) + len(new) >= flows.config.max_flows:
                return False
            # New conversations are opened first, in packet order (the order
            # segment() would open them in, so they get the same records).
            keys = [
                self._key(buf, r, v6)
                for r, v6 in zip(chunk.base[new].tolist(), chunk.v6[new].tolist(), strict=True)
            ]
            opened = [
                flows.track(key, ts) for key, ts in zip(keys, chunk.ts[new].tolist(), strict=True)
            ]
            idx[new] = opened
        counts = np.zeros(n, dtype=np.int64)  # retransmission counts from segment()
        self._analyse(buf, chunk, np.flatnonzero(chunk.eligible), idx, counts)
        self._detect(buf, chunk, counts)
        self.batched += n
        return True

    def _analyse(self, buf: bytes, chunk: _Chunk, pending: I64, idx: I64, counts: I64) -> None:
        """Step 2 for the eligible frames ``pending`` (known directions ``idx``), in
        rounds: each conversation's in-order prefix at once, then its first other
        segment through ``segment()``, then the next prefix... A conversation's
        segments stay in order; conversations are independent of each other."""
        slab = self._flows._slab
        segment = self._flows.segment
        rounds = 0
        while len(pending) >= self.min_round and rounds < MAX_ROUNDS:
            rounds += 1
            took = _advance(slab, chunk, pending, idx[pending])
            self.in_order += int(np.count_nonzero(took))
            pending = pending[~took]
            if not len(pending):
                return
            # Each conversation's first segment left (pending is in packet order;
            # the conversations' order does not matter).
            _, first = np.unique(idx[pending] >> 1, return_index=True)
            heads = pending[first]
            counts[heads] = self._segments(buf, chunk, heads, segment)
            left = np.ones(len(pending), dtype=bool)
            left[first] = False
            pending = pending[left]
        if len(pending):
            counts[pending] = self._segments(buf, chunk, pending, segment)

    @staticmethod
    def _key(buf: bytes, base: int, v6: bool) -> bytes:
        """The direction's key of an eligible frame (source, destination, ports)."""
        if v6:
            return buf[base + _ADDR6 : base + _ADDR6 + 36]
        return buf[base + _ADDR4 : base + _ADDR4 + 12]

    def _segments(
        self, buf: bytes, chunk: _Chunk, which: I64, segment: Callable[..., int]
    ) -> list[int]:
        """``segment()`` for frames ``which``, in that order; their retransmission counts."""
        key = self._key
        return [
            segment(key(buf, base, v6), seq, ack, flags, win, seglen, ts)
            for base, v6, seq, ack, flags, win, seglen, ts in zip(
                chunk.base[which].tolist(),
                chunk.v6[which].tolist(),
                chunk.seq[which].tolist(),
                chunk.ack[which].tolist(),
                chunk.flags[which].tolist(),
                chunk.win[which].tolist(),
                chunk.seglen[which].tolist(),
                chunk.ts[which].tolist(),
                strict=True,
            )
        ]

    def _unsafe(self, chunk: _Chunk) -> I64:
        """The frames outside the fast path that might still reach the flow table
        (their positions): decoded further than this module checks."""
        other = np.flatnonzero(~chunk.eligible & ~chunk.bad)
        et = chunk.et[other]
        m = chunk.m[other]
        # Ethernet types the decoder looks into; a frame too short is bad for it.
        decoded = (np.isin(et, _DECODED_ETHERTYPES) | (et < 0x0600)) & (chunk.caplen[other] >= 14)
        ip4 = decoded & (et == 0x0800)
        ip6 = decoded & (et == 0x86DD)
        unsafe = decoded & ~ip4 & ~ip6  # VLAN, PPPoE, MPLS, bridged, SNAP: maybe TCP
        # IPv4: safe when bad (for the decoder), or neither a fragment nor TCP, IP-in-IP
        # or GRE.
        ihl = (m[:, _IP] & 0x0F).astype(np.int64) << 2
        frag = ((m[:, _IP + 6].astype(np.int64) << 8) | m[:, _IP + 7]) & 0x3FFF
        proto4 = m[:, _IP + 9]
        bad4 = (m[:, _IP] >> 4 != 4) | (ihl < 20)
        unsafe |= ip4 & ~bad4 & ((frag != 0) | np.isin(proto4, (6, 4, 41, 47)))
        # IPv6: safe when bad, or UDP or ICMPv6 right after the header (an extension
        # header might lead to TCP).
        nh6 = m[:, _IP + 6]
        bad6 = m[:, _IP] >> 4 != 6
        unsafe |= ip6 & ~bad6 & ~np.isin(nh6, (17, 58))
        # UDP to or from a tunnel port (VXLAN, GENEVE, Teredo) is opened.
        udp = np.flatnonzero(
            (ip4 & ~bad4 & (frag == 0) & (proto4 == 17)) | (ip6 & ~bad6 & (nh6 == 17))
        )
        if len(udp):
            at = chunk.base[other[udp]] + np.where(ip6[udp], _TCP6, _IP + ihl[udp])
            ports = np.concatenate((chunk.be16(at), chunk.be16(at + 2)))
            tunnel = np.isin(ports, _TUNNEL_UDP_PORTS)
            unsafe[udp] |= tunnel[: len(udp)] | tunnel[len(udp) :]
        found: I64 = other[unsafe]
        return found

    def _detect(self, buf: bytes, chunk: _Chunk, counts: I64) -> None:
        """Step 3: the detector calls, in packet order: the decoder's general path for
        the frames outside the fast path, ``_tcp_rest`` for a retransmission or a
        segment on a watched port."""
        decoder = self._decoder
        decoder.bad += int(np.count_nonzero(chunk.bad))
        elig = chunk.eligible
        watched = self._want[chunk.sport] | self._want[chunk.dport]
        todo = np.flatnonzero((~elig & ~chunk.bad) | (elig & ((counts != 0) | watched)))
        if not len(todo):
            return
        tcp_rest = decoder._tcp_rest
        general = decoder._ether
        v6 = chunk.v6[todo]
        frame = chunk.frame[todo]
        caplen = chunk.caplen[todo]
        ts = chunk.ts[todo]
        a = chunk.base[todo] + np.where(v6, _ADDR6, _ADDR4)  # source, destination, ports
        alen = np.where(v6, 32, 8)
        # _tcp_rest's arguments after ``buf``, and _ether's.
        tcp_args = zip(
            *(
                column.tolist()
                for column in (
                    a,
                    alen,
                    a + alen,
                    frame + caplen,
                    ts,
                    np.where(v6, 6, 4),
                    chunk.ttl[todo],
                    chunk.tot[todo],
                    chunk.sport[todo],
                    chunk.dport[todo],
                    chunk.seq[todo],
                    chunk.ack[todo],
                    chunk.flags[todo],
                    chunk.hlen[todo],
                    chunk.seglen[todo],
                    counts[todo],
                )
            ),
            strict=True,
        )
        ether_args = zip(
            frame.tolist(), caplen.tolist(), chunk.wirelen[todo].tolist(), ts.tolist(), strict=True
        )
        for eligible, tcp, ether in zip(elig[todo].tolist(), tcp_args, ether_args, strict=True):
            if eligible:
                tcp_rest(buf, *tcp)
            else:
                general(buf, *ether)


class BatchWalker(FrameBatcher):
    """The pcap walker for Ethernet records with a flow table: a chunk's records in
    batches, or record by record (``sequential``) where batches do not pay."""

    def __init__(
        self,
        decoder: Decoder,
        flows: TcpFlowTable,
        order: str,
        frac_ns: int,
        sequential: PcapWalker,
        min_records: int,
    ) -> None:
        super().__init__(decoder, flows, min_records)
        self._frac_ns = frac_ns
        self._sequential = sequential
        self._caplen_at = struct.Struct(order + "I").unpack_from
        self._u32 = np.dtype(order + "u4")

    def __call__(self, buf: bytes, off: int, size: int) -> tuple[int, int, int]:
        starts, end = self._records(buf, off, size)
        n = len(starts)
        if n < self.min_records:
            return self._sequential(buf, off, size)
        rec = np.array(starts, dtype=np.int64)
        raw = np.frombuffer(buf, dtype=np.uint8)
        head = sliding_window_view(raw, 16)[rec].view(self._u32).astype(np.int64)
        sec, frac, caplen, wirelen = head[:, 0], head[:, 1], head[:, 2], head[:, 3]
        chunk = _Chunk(buf, rec + 16, caplen, wirelen, sec * 1_000_000_000 + frac * self._frac_ns)
        done = self._chunk(buf, chunk)
        if done == n:
            return end, n, int(chunk.ts[-1])
        # The rest record by record.
        rest, walked, ts = self._sequential(buf, starts[max(done, 0)], size)
        return rest, max(done, 0) + walked, ts

    def _records(self, buf: bytes, off: int, size: int) -> tuple[list[int], int]:
        """The offsets of the whole records in ``buf[off:size]`` that the sequential
        walker would take (it leaves the last ~30 bytes to the reader), and the
        offset after them."""
        caplen_at = self._caplen_at
        starts: list[int] = []
        append = starts.append
        while off + 30 <= size:
            nxt = off + 16 + caplen_at(buf, off + 8)[0]
            if nxt > size:
                break
            append(off)
            off = nxt
        return starts, off


class _Chunk:
    """Every header field the fast path reads, for every frame of a chunk (int64)."""

    _PER_RECORD = (
        "frame",
        "base",
        "m",
        "caplen",
        "wirelen",
        "ts",
        "et",
        "v6",
        "ttl",
        "tot",
        "sport",
        "dport",
        "seq",
        "ack",
        "hlen",
        "flags",
        "win",
        "seglen",
        "bad",
        "eligible",
    )

    def part(self, lo: int, hi: int) -> _Chunk:
        """Records ``lo`` to ``hi`` (views, no copy)."""
        if lo == 0 and hi == len(self.frame):
            return self
        part = object.__new__(_Chunk)
        part._raw = self._raw
        for name in self._PER_RECORD:
            setattr(part, name, getattr(self, name)[lo:hi])
        return part

    def __init__(self, buf: bytes, frame: I64, caplen: I64, wirelen: I64, ts: I64) -> None:
        self.frame = frame
        self.caplen = caplen
        self.wirelen = wirelen
        self.ts = ts
        raw = np.frombuffer(buf, dtype=np.uint8)
        if int(frame.max()) + _WIDTH + 8 > len(raw):  # short last frames: read zeros past the end
            raw = np.concatenate((raw, np.zeros(_WIDTH + 8, dtype=np.uint8)))
        self._raw = raw
        # The Ethernet type and up to two VLAN tags' types.
        pre = sliding_window_view(raw, _ET + 10)[frame]
        et0, et1, et2 = self._be(pre, _ET, 2), self._be(pre, _ET + 4, 2), self._be(pre, _ET + 8, 2)
        tag1 = _IS_VLAN[et0]
        tag2 = tag1 & _IS_VLAN[et1]
        # Past the tags: the frame as if untagged, ``shift`` bytes further on.
        et = np.where(tag2, et2, np.where(tag1, et1, et0))
        shift = (tag1.astype(np.int64) + tag2) << 2
        base = frame + shift
        self.base = base
        self.et = et
        # One row of _WIDTH bytes per frame from there (a copy: one gather).
        m = sliding_window_view(raw, _WIDTH)[base]
        self.m = m
        v6 = et == 0x86DD
        self.v6 = v6
        # IPv4 fields (read for every frame, used where the frame is IPv4).
        tot4 = self._be(m, _IP + 2, 2)
        eligible4 = (
            (et == 0x0800)
            & (caplen >= 54 + shift)
            & (m[:, _IP] == 0x45)
            & (m[:, _IP + 9] == 6)
            & ((self._be(m, _IP + 6, 2) & 0x3FFF) == 0)
            & (tot4 >= 40)
        )
        # IPv6.
        plen = self._be(m, _IP + 4, 2)
        eligible6 = (
            v6 & (caplen >= 74 + shift) & (m[:, _IP + 6] == 6) & (m[:, _IP] >> 4 == 6) & (plen > 0)
        )
        self.ttl = np.where(v6, m[:, _IP + 7], m[:, _IP + 8]).astype(np.int64)
        tot = np.where(v6, 40 + plen, tot4)
        tot = np.minimum(tot, wirelen - 14 - shift)
        self.tot = tot
        # TCP, 20 bytes further on in IPv6.
        t = sliding_window_view(raw, 16)[base + np.where(v6, _TCP6, _TCP4)]
        self.sport = self._be(t, 0, 2)
        self.dport = self._be(t, 2, 2)
        self.seq = self._be(t, 4, 4)
        self.ack = self._be(t, 8, 4)
        self.hlen = (t[:, 12].astype(np.int64) >> 2) & 0x3C
        self.flags = t[:, 13].astype(np.int64)
        self.win = self._be(t, 14, 2)
        self.seglen = tot - np.where(v6, 40, 20) - self.hlen
        eligible = eligible4 | eligible6
        self.bad = eligible & ((self.hlen < 20) | (self.seglen < 0))
        self.eligible = eligible & ~self.bad

    @staticmethod
    def _be(m: npt.NDArray[np.uint8], start: int, width: int) -> I64:
        """The big-endian unsigned field of ``width`` bytes at column ``start``."""
        x = m[:, start].astype(np.int64)
        for k in range(1, width):
            x = (x << 8) | m[:, start + k]
        return x

    def keys(self, which: I64, at: int, width: int) -> list[bytes]:
        """The ``width`` bytes at ``at`` past the tags of frames ``which``, as bytes."""
        rows = sliding_window_view(self._raw, width)[self.base[which] + at]
        keys: list[bytes] = rows.view(f"V{width}").ravel().tolist()
        return keys

    def be16(self, at: I64) -> I64:
        """Big-endian 16-bit values at buffer offsets ``at``."""
        raw = self._raw
        at = np.minimum(at, len(raw) - 2)
        return (raw[at].astype(np.int64) << 8) | raw[at + 1]


def _advance(slab: bytearray, chunk: _Chunk, pos: I64, idx: I64) -> Mask:
    """Step 2 for the eligible packets ``pos`` of known directions ``idx`` (time
    order): write each conversation's in-order prefix into the slab; returns which
    of them it took (the others are left to ``segment()``)."""
    # Grouped by conversation, in time order within each.
    m = len(idx)
    ar = np.arange(m)
    order = _grouped(idx >> 1, ar)
    pos = pos[order]
    idx = idx[order]
    conv = idx >> 1
    d = idx & 1
    seq = chunk.seq[pos]
    ack = chunk.ack[pos]
    flags = chunk.flags[pos]
    win = chunk.win[pos]
    seglen = chunk.seglen[pos]
    ts = chunk.ts[pos]
    end = (seq + seglen) & M32

    rows = np.frombuffer(slab, dtype=np.uint8).reshape(-1, REC_DTYPE.itemsize)
    own = _as_records(np.take(rows, idx, axis=0))  # copies: the slab as the chunk found it
    peer = _as_records(np.take(rows, idx ^ 1, axis=0))
    del rows  # no view of the slab may outlive this function (it grows in place)
    s_next = own["nextseq"].astype(np.int64)
    s_lastack = own["lastack"].astype(np.int64)
    s_fl = own["flags"].astype(np.int64)
    r_next = peer["nextseq"].astype(np.int64)
    r_lastack = peer["lastack"].astype(np.int64)
    # The invariant that makes the state closed-form (see the module's doc).
    steady = (own["maxack"] == own["nextseq"]) & (peer["maxack"] == peer["nextseq"])

    first = np.empty(m, dtype=bool)
    first[0] = True
    first[1:] = conv[1:] != conv[:-1]
    start = np.maximum.accumulate(np.where(first, ar, 0))
    last0 = np.maximum.accumulate(np.where(d == 0, ar, -1))
    last1 = np.maximum.accumulate(np.where(d == 1, ar, -1))
    before0 = np.empty(m, dtype=np.int64)
    before0[0] = -1
    before0[1:] = last0[:-1]
    before1 = np.empty(m, dtype=np.int64)
    before1[0] = -1
    before1[1:] = last1[:-1]
    prev = np.where(d == 0, before0, before1)  # this direction's previous packet
    prev_peer = np.where(d == 0, before1, before0)  # the peer's latest packet
    has_prev = prev >= start
    has_peer = prev_peer >= start

    # The state each packet finds, if the conversation's packets before it were simple.
    nextseq = np.where(has_prev, end[prev], s_next)
    peer_lastack = np.where(has_peer, ack[prev_peer], r_lastack)
    simple = (
        steady
        & (flags & 0x17 == 0x10)
        & (s_fl & _SETTLED_MASK == _SETTLED)
        & (seq == nextseq)
        & (seq != 0)
        & (seglen != 1)
        & ~((seglen > 0) & (peer_lastack != 0) & (((peer_lastack - seq - seglen) & M32) < HALF))
    )
    # The prefix: no non-simple packet before it in its conversation.
    nonsimple = np.cumsum(~simple)
    took = (nonsimple - (nonsimple[start] - (~simple[start]))) == 0
    if not took.any():
        return _unsort(took, order)

    # Duplicate ACKs: reset by a new ACK, counted by a pure ACK repeating the last
    # ACK and window (not when the peer's last segment was a keep-alive).
    lastack = np.where(has_prev, ack[prev], s_lastack)
    window = np.where(has_prev, win[prev], own["window"].astype(np.int64))
    peer_keepalive = ~has_peer & ((peer["flags"] & F_KEEPALIVE) != 0)
    reset = ack != lastack
    dup = ~reset & (seglen == 0) & (win != 0) & (win == window) & ~peer_keepalive
    # The peer's highest sequence to be acked (its nextseq, by the invariant): an ACK
    # beyond it acks data the capture did not see.
    peer_max = np.where(has_peer, end[prev_peer], r_next)
    acked_unseen = (peer_max != 0) & (((peer_max - ack) & M32) >= HALF)

    # Each direction's final state: its prefix packets grouped by direction.
    p = np.flatnonzero(took)
    by_dir = p[_grouped(idx[p], np.arange(len(p)))]
    k = len(by_dir)
    dir_idx = idx[by_dir]
    firsts = np.empty(k, dtype=bool)
    firsts[0] = True
    firsts[1:] = dir_idx[1:] != dir_idx[:-1]
    lasts = np.empty(k, dtype=bool)
    lasts[-1] = True
    lasts[:-1] = firsts[1:]
    ak = np.arange(k)
    dstart = np.maximum.accumulate(np.where(firsts, ak, 0))
    last = by_dir[lasts]  # each direction's last prefix packet
    out = idx[last]

    last_reset = np.maximum.accumulate(np.where(reset[by_dir], ak, -1))
    had_reset = last_reset >= dstart
    dups = np.cumsum(dup[by_dir])
    from_reset = np.where(
        had_reset, dups[np.maximum(last_reset, 0)], dups[dstart] - dup[by_dir][dstart]
    )
    base = np.where(had_reset, 0, own["dupacks"][by_dir].astype(np.int64))
    dupacks = np.minimum(base + dups - from_reset, 0xFFFF)[lasts]

    data_at = np.maximum.accumulate(np.where(seglen[by_dir] > 0, ak, -1))
    had_data = data_at >= dstart
    seq_t = np.where(had_data, ts[by_dir][np.maximum(data_at, 0)], own["seq_t"][by_dir])[lasts]

    # flags2 (acked unseen): set by the peer's ACK beyond this direction's data,
    # cleared by this direction's next segment; the later event wins.
    ev_dir = np.concatenate((idx[p], idx[p][acked_unseen[p]] ^ 1))
    ev_at = np.concatenate((p, p[acked_unseen[p]]))
    ev_val = np.concatenate(
        (np.zeros(len(p), dtype=np.uint8), np.ones(len(ev_at) - len(p), dtype=np.uint8))
    )
    ev = _grouped(ev_dir, ev_at)
    ev_dir = ev_dir[ev]
    ev_last = np.empty(len(ev), dtype=bool)
    ev_last[-1] = True
    ev_last[:-1] = ev_dir[1:] != ev_dir[:-1]

    records = np.frombuffer(slab, dtype=REC_DTYPE)
    end_last = end[last]
    records["nextseq"][out] = end_last
    records["maxack"][out] = end_last
    records["lastack"][out] = ack[last]
    records["dupacks"][out] = dupacks
    records["window"][out] = win[last]
    records["flags"][out] = (s_fl[last] & ~(F_KEEPALIVE | F_ZWP)) | F_WIN_SEEN
    records["ack_t"][out] = ts[last]
    records["seq_t"][out] = seq_t
    records["flags2"][ev_dir[ev_last]] = np.where(ev_val[ev][ev_last] != 0, F2_ACKED_UNSEEN, 0)
    del records
    return _unsort(took, order)


def _grouped(group: I64, within: I64) -> I64:
    """The order that sorts by ``group``, then by ``within`` (unique within a group,
    non-negative): one unstable sort of a combined key, several times faster than a
    stable sort."""
    return np.argsort(group * (int(within.max()) + 1) + within)


def _as_records(rows: npt.NDArray[np.uint8]) -> npt.NDArray[np.void]:
    """Contiguous rows of slab bytes as flow-table records."""
    return rows.view(REC_DTYPE)[:, 0]


def _unsort(values: Mask, order: I64) -> Mask:
    """``values`` given in ``order``, back in the original order."""
    out = np.empty_like(values)
    out[order] = values
    return out
