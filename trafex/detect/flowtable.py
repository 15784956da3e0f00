"""The TCP flow table: bounded memory, idle eviction, Wireshark's retransmission semantics.

Each TCP conversation (both directions of one 4-tuple, VLAN ignored, as tshark
matches them) owns two fixed 48-byte records in one ``bytearray`` slab, read
and written with ``struct`` (an in-order segment reads and writes only its hot
first half). A dict maps each direction's key
(packed ``src + dst + sport + dport``) to its record number; the two directions
of a conversation are records ``2n`` and ``2n + 1``. Ints kept in ``__slots__``
objects would cost ~30 bytes each, the slab costs 48 bytes per direction.

:meth:`TcpFlowTable.segment` reproduces the part of Wireshark 4.0's
``tcp_analyze_sequence_number`` that decides ``tcp.analysis.retransmission``
(with its fast and spurious subsets): a segment carrying data, SYN or FIN that
does not advance the direction's highest sequence number (``nextseq``) is a
retransmission, unless it is a keep-alive, a zero-window probe, or an
out-of-order segment (seen within the first RTT, or 3 ms, of ``nextseq``'s
segment, and not ending exactly at ``nextseq``); a segment whose data the peer
already acknowledged is a spurious retransmission; a segment answering two or
more duplicate ACKs within 20 ms is a fast retransmission. Pure ACKs, window
updates, keep-alives and window probes are never retransmissions.

A new connection on the same 4-tuple (a SYN with another ISN) restarts the
sequence analysis, as tshark starts a new stream, but the retransmission counts
are kept: they count per direction of the 4-tuple while it is tracked.

Known simplifications against Wireshark: the window is compared unscaled (only
equality and zero are tested, which scaling does not change), and the list of
unacknowledged segments is not kept, so Wireshark's cap of 1000 unacked
segments (past which a SYN/FIN no longer advances ``nextseq``) is not modelled.
"""

from __future__ import annotations

import struct
from array import array
from dataclasses import dataclass

import structlog

log = structlog.get_logger("trafex.detect.flows")

M32 = 0xFFFFFFFF
HALF = 0x80000000
FAST_RETRANS_WINDOW_NS = 20_000_000
DEFAULT_OOO_NS = 3_000_000

# Record (48 bytes): nextseq, lastack, maxseqtobeacked, dupacks, window, flags, flags2,
# ack_t (last packet time; Wireshark's lastacktime), seq_t (time nextseq advanced),
# base_seq, retrans (saturates at 65535),
# aux (record 2n: the conversation's first RTT; record 2n+1: time of the latest SYN).
# The fields an in-order segment reads come first and the ones it writes next to them,
# so that segment()'s fast path reads 17 bytes and writes one run of bytes; base_seq,
# retrans and aux, rarely touched, come last.
_REC = struct.Struct("<IIIHHBBqqIHq")
REC_SIZE = _REC.size
_unpack_rec = _REC.unpack_from
_pack_rec = _REC.pack_into
_OFF_LASTACK = 4
_OFF_MAXACK = 8
_OFF_DUPACK_WIN_FLAGS = 12
_OFF_FLAGS = 16
_OFF_FLAGS2 = 17
_OFF_ACK_T = 18
_OFF_BASE = 34
_OFF_RETRANS = 38
_OFF_AUX = 40
# The fast path's reads and writes: nextseq..flags of this direction with nextseq..
# maxseqtobeacked of the peer, in one call from the conversation's first record
# (record 2n is this direction: _unpack_hot_2n; record 2n+1 is: _unpack_hot_2n1);
# lastack..ack_t; nextseq..seq_t.
_unpack_hot_2n = struct.Struct(f"<IIIHHB{REC_SIZE - 17}xIII").unpack_from
_unpack_hot_2n1 = struct.Struct(f"<III{REC_SIZE - 12}xIIIHHB").unpack_from
_pack_acked = struct.Struct("<IIHHBBq").pack_into  # from _OFF_LASTACK
_pack_advanced = struct.Struct("<IIIHHBBqq").pack_into
_unpack_head = struct.Struct("<III").unpack_from  # nextseq, lastack, maxseqtobeacked
_U32 = struct.Struct("<I")
_U16 = struct.Struct("<H")
_unpack_u32 = _U32.unpack_from
_pack_u32 = _U32.pack_into
_Q = struct.Struct("<q")
_HWB = struct.Struct("<HHB")
# What a sweep reads of a conversation: flags and last-packet time of both records.
assert _OFF_ACK_T == _OFF_FLAGS + 2
_SWEEP = struct.Struct(f"<{_OFF_FLAGS}xBxq{REC_SIZE - 10}xBxq")

F_BASE = 0x01  # base_seq known
F_KEEPALIVE = 0x02  # last segment in this direction was a keep-alive
F_ZWP = 0x04  # last segment in this direction was a zero-window probe
F_RTT_PENDING = 0x08  # a SYN was seen and the first RTT is not known yet
F_FIN = 0x10
F_RST = 0x20
F_REVBASE = 0x40  # this direction already gave the reverse its base_seq
F2_ACKED_UNSEEN = 0x01  # second flags byte: this direction's data was acked unseen
F_WIN_SEEN = 0x80  # a window was seen (Wireshark starts a direction's window at 2**32-1)
# A direction whose base sequence is known, that gave the reverse its base, and whose
# conversation's first RTT is known: what segment()'s fast path requires.
_SETTLED_MASK = F_BASE | F_REVBASE | F_RTT_PENDING
_SETTLED = F_BASE | F_REVBASE

_EMPTY = bytes(REC_SIZE)
_GROW = 4096  # conversations added to the slab at a time


@dataclass(frozen=True, slots=True)
class FlowTableConfig:
    """Bounds of the flow table. Times are seconds of packet time."""

    max_flows: int = 1_000_000
    idle_timeout: float = 120.0
    closed_timeout: float = 10.0
    sweep_interval: float = 5.0


@dataclass(frozen=True, slots=True)
class DirectionState:
    """A read-only copy of one direction's record (for reports and tests, not the hot path)."""

    nextseq: int
    lastack: int
    retransmissions: int
    duplicate_acks: int
    window: int
    last_seen_ns: int
    fin: bool
    rst: bool


@dataclass(frozen=True, slots=True)
class FlowTableStats:
    flows: int
    opened: int
    evicted_idle: int
    evicted_closed: int
    evicted_full: int
    port_reuses: int


def reverse_key(key: bytes) -> bytes:
    """The key of the opposite direction (``dst + src + dport + sport``)."""
    if len(key) == 12:
        return key[4:8] + key[0:4] + key[10:12] + key[8:10]
    return key[16:32] + key[0:16] + key[34:36] + key[32:34]


class TcpFlowTable:
    """TCP conversations with per-direction sequence analysis and retransmission counts."""

    def __init__(self, config: FlowTableConfig | None = None) -> None:
        self.config = config or FlowTableConfig()
        self._index: dict[bytes, int] = {}
        self._keys: list[bytes | None] = []
        self._slab = bytearray()
        self._free = array("I")
        self._capacity = 0
        self._count = 0
        self.opened = 0
        self.evicted_idle = 0
        self.evicted_closed = 0
        self.evicted_full = 0
        self.port_reuses = 0
        self._idle_ns = int(self.config.idle_timeout * 1e9)
        self._closed_ns = int(self.config.closed_timeout * 1e9)
        self._sweep_ns = int(self.config.sweep_interval * 1e9)
        self._next_sweep = 0

    def __len__(self) -> int:
        return self._count

    def stats(self) -> FlowTableStats:
        return FlowTableStats(
            flows=self._count,
            opened=self.opened,
            evicted_idle=self.evicted_idle,
            evicted_closed=self.evicted_closed,
            evicted_full=self.evicted_full,
            port_reuses=self.port_reuses,
        )

    def retransmissions(self, key: bytes) -> int:
        """The retransmission count of the direction ``key`` (0 when not tracked)."""
        idx = self._index.get(key)
        if idx is None:
            return 0
        return _U16.unpack_from(self._slab, idx * REC_SIZE + _OFF_RETRANS)[0]  # type: ignore[no-any-return]

    def state(self, key: bytes) -> DirectionState | None:
        """The state of direction ``key``, or None when it is not tracked."""
        idx = self._index.get(key)
        if idx is None:
            return None
        nextseq, lastack, _m, dupacks, window, fl, _f2, last, _s, _b, retrans, _a = _unpack_rec(
            self._slab, idx * REC_SIZE
        )
        return DirectionState(
            nextseq=nextseq,
            lastack=lastack,
            retransmissions=retrans,
            duplicate_acks=dupacks,
            window=window,
            last_seen_ns=last,
            fin=bool(fl & F_FIN),
            rst=bool(fl & F_RST),
        )

    def track(self, key: bytes, now: int) -> int:
        """The record number of direction ``key``, its conversation opened (empty,
        as for its first segment) when it is new."""
        idx = self._index.get(key)
        return self._open(key, now) if idx is None else idx

    def _open(self, key: bytes, now: int) -> int:
        if self._count >= self.config.max_flows:
            self._make_room(now)
        if not self._free:
            self._grow()
        slot = self._free.pop()
        off = slot * 2 * REC_SIZE
        self._slab[off : off + 2 * REC_SIZE] = _EMPTY + _EMPTY
        self._keys[slot] = key
        self._index[key] = slot * 2
        self._index[reverse_key(key)] = slot * 2 + 1
        self._count += 1
        self.opened += 1
        return slot * 2

    def _grow(self) -> None:
        start = self._capacity
        self._capacity += _GROW
        self._slab.extend(bytes(_GROW * 2 * REC_SIZE))
        self._keys.extend([None] * _GROW)
        self._free.extend(range(self._capacity - 1, start - 1, -1))

    def _drop(self, slot: int) -> None:
        key = self._keys[slot]
        if key is None:
            return
        self._keys[slot] = None
        del self._index[key]
        del self._index[reverse_key(key)]
        self._free.append(slot)
        self._count -= 1

    def sweep(self, now: int, idle_ns: int | None = None) -> int:
        """Evict idle and closed conversations; returns how many were evicted."""
        idle = self._idle_ns if idle_ns is None else idle_ns
        closed_ns = min(self._closed_ns, idle)
        unpack = _SWEEP.unpack_from
        slab = self._slab
        evicted = 0
        for slot, key in enumerate(self._keys):
            if key is None:
                continue
            fa, ta, fb, tb = unpack(slab, slot * 2 * REC_SIZE)
            last = ta if ta > tb else tb
            closed = (fa | fb) & F_RST or (fa & fb & F_FIN)
            age = now - last
            if closed and age > closed_ns:
                self.evicted_closed += 1
            elif age > idle:
                self.evicted_idle += 1
            else:
                continue
            self._drop(slot)
            evicted += 1
        self._next_sweep = now + self._sweep_ns
        if evicted:
            log.debug("flows.swept", evicted=evicted, flows=self._count)
        return evicted

    def maybe_sweep(self, now: int) -> None:
        """Sweep when a sweep interval of packet time has passed since the last one."""
        if now >= self._next_sweep:
            if self._next_sweep == 0:
                self._next_sweep = now + self._sweep_ns
            else:
                self.sweep(now)

    def _make_room(self, now: int) -> None:
        """The table is full: evict idle flows, then ever more recent ones, down to 90%."""
        target = self.config.max_flows * 9 // 10
        idle = self._idle_ns
        while self._count > target and idle > 0:
            before = self._count
            self.sweep(now, idle)
            self.evicted_full += before - self._count
            idle //= 2
        if self._count > target:
            for slot, key in enumerate(self._keys):
                if key is not None:
                    self._drop(slot)
                    self.evicted_full += 1
                    if self._count <= target:
                        break
        log.info("flows.table_full", flows=self._count, max_flows=self.config.max_flows)

    def segment(
        self, key: bytes, seq: int, ack: int, flags: int, win: int, seglen: int, now: int
    ) -> int:
        """Analyse one TCP segment of direction ``key``; returns its retransmission count
        if this segment is a retransmission, else 0.

        ``seglen`` is the TCP payload length from the IP header (not the captured
        length), ``now`` the packet time in nanoseconds.
        """
        idx = self._index.get(key)
        if idx is None:
            idx = self._open(key, now)
        slab = self._slab
        off = idx * REC_SIZE
        if idx & 1:
            r_next, r_lastack, rmax, nextseq, lastack, maxack, dupacks, window, fl = (
                _unpack_hot_2n1(slab, off - REC_SIZE)
            )
        else:
            nextseq, lastack, maxack, dupacks, window, fl, r_next, r_lastack, rmax = _unpack_hot_2n(
                slab, off
            )
        # Fast path, ~95% of segments: an ACK without SYN/FIN/RST, in order (seq is the
        # direction's nextseq), on a settled direction (base known, first RTT known),
        # carrying no data (a pure ACK) or 2+ bytes (1 byte could be a window probe).
        # It does what _general does for such a segment, with the branches that cannot
        # be taken left out, and touches only the fields that can change; anything
        # else, or a segment the peer already acked (spurious retransmission), goes to
        # _general. _general is the reference: the tests run both on random traffic
        # and compare the tables byte for byte. The batch walker (batch.py) applies
        # runs of such segments at once, in closed form: keep both the same.
        if (
            flags & 0x17 == 0x10
            and fl & _SETTLED_MASK == _SETTLED
            and seq == nextseq
            and seq
            and seglen != 1
        ):
            fl = (fl & ~(F_KEEPALIVE | F_ZWP)) | F_WIN_SEEN
            if seglen:
                nseq = (seq + seglen) & M32
                if r_lastack and ((r_lastack - nseq) & M32) < HALF:
                    return self._general(idx, seq, ack, flags, win, seglen, now)
                if ack != lastack:
                    dupacks = 0
                if seq == maxack or not maxack:
                    maxack = nseq
                # Data in order advances nextseq (and its time, seq_t).
                _pack_advanced(slab, off, nseq, ack, maxack, dupacks, win, fl, 0, now, now)
            else:
                if ack != lastack:
                    dupacks = 0
                elif (
                    win
                    and win == window
                    and dupacks < 0xFFFF
                    and not slab[(idx ^ 1) * REC_SIZE + _OFF_FLAGS] & F_KEEPALIVE
                ):
                    dupacks += 1  # a duplicate ACK (an ACK of a keep-alive is not one)
                if not maxack:
                    maxack = nextseq
                _pack_acked(slab, off + _OFF_LASTACK, ack, maxack, dupacks, win, fl, 0, now)
            if rmax and ((rmax - ack) & M32) >= HALF:
                # The peer's data was acked unseen (see _general).
                roff = (idx ^ 1) * REC_SIZE
                _U32.pack_into(slab, roff + _OFF_MAXACK, r_next)
                slab[roff + _OFF_FLAGS2] = F2_ACKED_UNSEEN
            return 0
        return self._general(idx, seq, ack, flags, win, seglen, now)

    def _general(
        self, idx: int, seq: int, ack: int, flags: int, win: int, seglen: int, now: int
    ) -> int:
        """Every segment's analysis (``segment`` has a fast path for the common ones)."""
        slab = self._slab
        off = idx * REC_SIZE
        nextseq, lastack, maxack, dupacks, window, fl, _fl2, _t, seq_t, base, retrans, aux = (
            _unpack_rec(slab, off)
        )
        roff = (idx ^ 1) * REC_SIZE
        if flags & 0x02 or not fl & F_BASE:
            fl, nextseq, lastack, base, maxack, retrans, dupacks, window, seq_t, aux = self._syn(
                idx,
                off,
                roff,
                seq,
                flags,
                fl,
                now,
                nextseq,
                lastack,
                base,
                maxack,
                retrans,
                dupacks,
                window,
                seq_t,
                aux,
            )
        if flags & 0x10 and not fl & F_REVBASE:
            rfl = slab[roff + _OFF_FLAGS]
            if not rfl & F_BASE:
                _U32.pack_into(slab, roff + _OFF_BASE, (ack - 1) & M32)
                slab[roff + _OFF_FLAGS] = rfl | F_BASE
            fl |= F_REVBASE

        pflags = 0
        if seglen > 1:
            pass
        elif (
            seglen == 1
            and seq == nextseq
            and slab[roff + _OFF_FLAGS] & F_WIN_SEEN
            and not (_HWB.unpack_from(slab, roff + _OFF_DUPACK_WIN_FLAGS)[1])
        ):
            # Zero-window probe: the peer's window is closed and this is its next byte.
            pflags = F_ZWP
        elif not flags & 0x07:
            if seq == ((nextseq - 1) & M32):
                pflags = F_KEEPALIVE
            elif (
                seglen == 0
                and win
                and win == window
                and seq == nextseq
                and ack == lastack
                and not slab[roff + _OFF_FLAGS] & F_KEEPALIVE
                and dupacks < 0xFFFF
            ):
                dupacks += 1  # a duplicate ACK (an ACK of a keep-alive is not one)
        if ack != lastack:
            dupacks = 0
        if flags & 0x10:
            r_next, r_lastack, rmax = _unpack_head(slab, roff)
            # The peer acknowledges beyond what we saw of it: segments were lost before
            # the capture point, its highest in-order sequence jumps to its nextseq.
            if rmax and ((rmax - ack) & M32) >= HALF:
                _U32.pack_into(slab, roff + _OFF_MAXACK, r_next)
                # Until its next packet, tshark 4.0 takes a segment answering the peer's
                # last ACK within 20 ms as a fast retransmission, as after 2 dup ACKs.
                slab[roff + _OFF_FLAGS2] = F2_ACKED_UNSEEN

        count = 0
        if seglen or flags & 0x03:
            nseq = (seq + seglen) & M32
            if not pflags & F_KEEPALIVE:
                # tshark 4.0 does not take data starting one byte before nextseq as "not
                # advanced" (a bare SYN or FIN there is); it can still be spurious.
                not_advanced = (
                    nextseq
                    and ((seq - nextseq) & M32) >= HALF
                    and not (seglen and seq == ((nextseq - 1) & M32))
                )
                if not flags & 0x10:
                    r_lastack = _unpack_u32(slab, roff + 4)[0]
                spurious = seglen and r_lastack and ((r_lastack - nseq) & M32) < HALF
                if not_advanced or spurious:
                    count = self._classify(
                        idx,
                        roff,
                        seq,
                        nseq,
                        flags,
                        now,
                        nextseq,
                        seq_t,
                        bool(not_advanced),
                        bool(spurious),
                    )
                    if count:
                        if retrans < 0xFFFF:
                            retrans += 1
                        count = retrans
            if flags & 0x03:
                nseq = (nseq + 1) & M32
        else:
            nseq = seq
        if (not nextseq or ((nextseq - nseq) & M32) >= HALF) and not pflags & F_ZWP:
            nextseq = nseq
            seq_t = now
        if (seq == maxack or not maxack) and not pflags & F_ZWP:
            maxack = nextseq
        fl = (fl & ~(F_KEEPALIVE | F_ZWP)) | pflags | F_WIN_SEEN
        if fl & F_RTT_PENDING and flags & 0x12 == 0x10:
            # The first ACK after a SYN sets the first RTT, used from the next packet on.
            _pack_rec(
                slab, off, nextseq, ack, maxack, dupacks, win, fl, 0, now, seq_t, base, retrans, aux
            )
            rtt = self._first_rtt(idx, now)
            if not idx & 1:
                aux = rtt
            if rtt:
                fl &= ~F_RTT_PENDING
        if flags & 0x05:
            fl |= F_FIN if flags & 0x01 else F_RST
        _pack_rec(
            slab, off, nextseq, ack, maxack, dupacks, win, fl, 0, now, seq_t, base, retrans, aux
        )
        return count

    def _syn(
        self,
        idx: int,
        off: int,
        roff: int,
        seq: int,
        flags: int,
        fl: int,
        now: int,
        nextseq: int,
        lastack: int,
        base: int,
        maxack: int,
        retrans: int,
        dupacks: int,
        window: int,
        seq_t: int,
        aux: int,
    ) -> tuple[int, int, int, int, int, int, int, int, int, int]:
        """SYN handling (port reuse, SYN time for the first RTT) and the base sequence."""
        slab = self._slab
        syn = flags & 0x02
        if syn and fl & F_BASE:
            if flags & 0x10:
                if seq != base:
                    base = seq  # a SYN/ACK with another ISN: Wireshark rebases, keeps state
                    self.port_reuses += 1
            elif seq != base:
                # A SYN with another ISN: a new conversation (the same ISN, even after a
                # FIN or RST, is a retransmission for tshark 4.0).
                # The retransmission counts stay: they belong to the 4-tuple's directions.
                self.port_reuses += 1
                aoff = (idx & ~1) * REC_SIZE
                r_retrans = slab[roff + _OFF_RETRANS : roff + _OFF_RETRANS + 2]
                slab[aoff : aoff + 2 * REC_SIZE] = _EMPTY + _EMPTY
                slab[roff + _OFF_RETRANS : roff + _OFF_RETRANS + 2] = r_retrans
                nextseq = lastack = base = maxack = dupacks = window = fl = 0
                seq_t = aux = 0
            else:
                # The same SYN again: tshark restores nextseq to the highest in-order one.
                nextseq = maxack
        if syn and not flags & 0x10:
            # Remember the time of the most recent SYN (record 2n+1's aux).
            if idx & 1:
                aux = now
                first_rtt = _Q.unpack_from(slab, (idx & ~1) * REC_SIZE + _OFF_AUX)[0]
            else:
                _Q.pack_into(slab, (idx | 1) * REC_SIZE + _OFF_AUX, now)
                first_rtt = aux
            if first_rtt == 0:
                fl |= F_RTT_PENDING
                slab[roff + _OFF_FLAGS] |= F_RTT_PENDING
        if not fl & F_BASE:
            base = seq if syn else (seq - 1) & M32
            fl |= F_BASE
        return fl, nextseq, lastack, base, maxack, retrans, dupacks, window, seq_t, aux

    def _classify(
        self,
        idx: int,
        roff: int,
        seq: int,
        end: int,
        flags: int,
        now: int,
        nextseq: int,
        seq_t: int,
        not_advanced: bool,
        spurious: bool,
    ) -> bool:
        """Is a segment that did not advance (or was already acked) a retransmission?

        Wireshark's order: fast retransmission (answers >= 2 duplicate ACKs within
        20 ms), spurious (the peer acked it), out-of-order (within the first RTT or
        3 ms of the newest segment, and not a copy of it), else a retransmission.
        """
        slab = self._slab
        if not_advanced:
            r_dupacks = _HWB.unpack_from(slab, roff + _OFF_DUPACK_WIN_FLAGS)[0]
            if slab[roff + _OFF_FLAGS2] & F2_ACKED_UNSEEN:
                r_dupacks = 2
            r_lastack = _unpack_u32(slab, roff + _OFF_LASTACK)[0]
            r_ack_t = _Q.unpack_from(slab, roff + _OFF_ACK_T)[0]
            if r_dupacks >= 2 and r_lastack == seq and 0 <= now - r_ack_t < FAST_RETRANS_WINDOW_NS:
                return True
        if spurious:
            return True
        rtt = _Q.unpack_from(slab, (idx & ~1) * REC_SIZE + _OFF_AUX)[0]
        threshold = rtt if rtt else DEFAULT_OOO_NS
        full_end = (end + 1) & M32 if flags & 0x03 else end
        return not (0 <= now - seq_t < threshold and nextseq != full_end)

    def _first_rtt(self, idx: int, now: int) -> int:
        """Set the conversation's first RTT: from its latest SYN to this first ACK."""
        slab = self._slab
        aoff = (idx & ~1) * REC_SIZE
        rtt: int = _Q.unpack_from(slab, aoff + _OFF_AUX)[0]
        if rtt:
            return rtt
        mru_syn: int = _Q.unpack_from(slab, aoff + REC_SIZE + _OFF_AUX)[0]
        rtt = now - mru_syn
        _Q.pack_into(slab, aoff + _OFF_AUX, rtt)
        if rtt:
            other = (idx ^ 1) * REC_SIZE
            slab[other + _OFF_FLAGS] &= ~F_RTT_PENDING & 0xFF
        return rtt
