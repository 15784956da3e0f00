"""Wireshark's TCP sequence analysis, segment by segment, on the flow table's records.

:meth:`SequenceAnalysis.general` reproduces the part of Wireshark 4.0's
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

This is the reference for every segment; the flow table's
:meth:`~trafex.detect.flows.table.TcpFlowTable.segment` has a fast path for the
common ones, and the numpy batches (:mod:`trafex.detect.decode.prefix`) apply
runs of those at once. The tests compare all three byte for byte.

Known simplifications against Wireshark: the window is compared unscaled (only
equality and zero are tested, which scaling does not change), and the list of
unacknowledged segments is not kept, so Wireshark's cap of 1000 unacked
segments (past which a SYN/FIN no longer advances ``nextseq``) is not modelled.
"""

from __future__ import annotations

import struct

from trafex.detect.flows.layout import (
    F2_ACKED_UNSEEN,
    F_BASE,
    F_FIN,
    F_KEEPALIVE,
    F_REVBASE,
    F_RST,
    F_RTT_PENDING,
    F_WIN_SEEN,
    F_ZWP,
    HALF,
    M32,
    OFF_ACK_T,
    OFF_AUX,
    OFF_BASE,
    OFF_DUPACK_WIN_FLAGS,
    OFF_FLAGS,
    OFF_FLAGS2,
    OFF_LASTACK,
    OFF_MAXACK,
    OFF_RETRANS,
    RECORD,
    RECORD_SIZE,
)

FAST_RETRANS_WINDOW_NS = 20_000_000
DEFAULT_OOO_NS = 3_000_000

_unpack_rec = RECORD.unpack_from
_pack_rec = RECORD.pack_into
_unpack_head = struct.Struct("<III").unpack_from  # nextseq, lastack, maxseqtobeacked
_U32 = struct.Struct("<I")
_Q = struct.Struct("<q")
_HWB = struct.Struct("<HHB")
_EMPTY2 = bytes(2 * RECORD_SIZE)


class SequenceAnalysis:
    """Every segment's analysis on the records of ``slab`` (which may grow in place)."""

    def __init__(self, slab: bytearray) -> None:
        self.slab = slab
        self.port_reuses = 0

    def general(
        self, idx: int, seq: int, ack: int, flags: int, win: int, seglen: int, now: int
    ) -> int:
        """Analyse one segment of direction record ``idx``; its retransmission count if
        it is a retransmission, else 0 (see the module's doc)."""
        slab = self.slab
        off = idx * RECORD_SIZE
        roff = (idx ^ 1) * RECORD_SIZE
        nextseq, lastack, maxack, dupacks, window, fl, _fl2, _t, seq_t, base, retrans, aux = (
            _unpack_rec(slab, off)
        )
        if flags & 0x02 or not fl & F_BASE:
            # (Values in and out, not through the slab: a pack and an unpack more cost
            # 1.3% of the batched sensor's instructions.)
            fl, nextseq, lastack, base, maxack, dupacks, window, seq_t, aux = self._syn(
                idx, roff, seq, flags, fl, now, nextseq, lastack, base, maxack, dupacks,
                window, seq_t, aux,
            )  # fmt: skip
        if flags & 0x10:
            fl = self._acked(roff, ack, fl)
        pflags = 0
        if seglen < 2 and (seglen or not flags & 0x07):
            pflags, dupacks = self._probe(
                roff, seq, ack, flags, win, seglen, nextseq, lastack, window, dupacks
            )
        if ack != lastack:
            dupacks = 0
        count = 0
        nseq = (seq + seglen) & M32
        if (seglen or flags & 0x03) and not pflags & F_KEEPALIVE:
            not_advanced = (
                nextseq
                and ((seq - nextseq) & M32) >= HALF
                # tshark 4.0 does not take data starting one byte before nextseq as "not
                # advanced" (a bare SYN or FIN there is); it can still be spurious.
                and not (seglen and seq == ((nextseq - 1) & M32))
            )
            r_lastack = _U32.unpack_from(slab, roff + OFF_LASTACK)[0]
            spurious = seglen and r_lastack and ((r_lastack - nseq) & M32) < HALF
            if (not_advanced or spurious) and self._classify(
                idx, roff, seq, nseq, flags, now, nextseq, seq_t, not_advanced, spurious
            ):
                retrans += retrans < 0xFFFF  # saturates
                count = retrans
        if flags & 0x03:
            nseq = (nseq + 1) & M32
        if not pflags & F_ZWP:
            if not nextseq or ((nextseq - nseq) & M32) >= HALF:
                nextseq = nseq
                seq_t = now
            if seq == maxack or not maxack:
                maxack = nextseq
        fl = (fl & ~(F_KEEPALIVE | F_ZWP)) | pflags | F_WIN_SEEN
        if fl & F_RTT_PENDING and flags & 0x12 == 0x10:
            fl, aux = self._first_rtt(idx, now, fl, aux)
        if flags & 0x05:
            fl |= F_FIN if flags & 0x01 else F_RST
        _pack_rec(
            slab, off, nextseq, ack, maxack, dupacks, win, fl, 0, now, seq_t, base, retrans, aux
        )
        return count

    def _syn(
        self,
        idx: int,
        roff: int,
        seq: int,
        flags: int,
        fl: int,
        now: int,
        nextseq: int,
        lastack: int,
        base: int,
        maxack: int,
        dupacks: int,
        window: int,
        seq_t: int,
        aux: int,
    ) -> tuple[int, int, int, int, int, int, int, int, int]:
        """SYN handling (port reuse, SYN time for the first RTT) and the base sequence:
        the record's fields after it (flags, nextseq, lastack, base, maxack, dupacks,
        window, seq_t, aux; the retransmission count stays)."""
        slab = self.slab
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
                aoff = (idx & ~1) * RECORD_SIZE
                r_retrans = slab[roff + OFF_RETRANS : roff + OFF_RETRANS + 2]
                slab[aoff : aoff + 2 * RECORD_SIZE] = _EMPTY2
                slab[roff + OFF_RETRANS : roff + OFF_RETRANS + 2] = r_retrans
                nextseq = lastack = base = maxack = dupacks = window = fl = 0
                seq_t = aux = 0
            else:
                # The same SYN again: tshark restores nextseq to the highest in-order one.
                nextseq = maxack
        if syn and not flags & 0x10:
            # Remember the time of the most recent SYN (record 2n+1's aux).
            if idx & 1:
                aux = now
                first_rtt = _Q.unpack_from(slab, (idx & ~1) * RECORD_SIZE + OFF_AUX)[0]
            else:
                _Q.pack_into(slab, (idx | 1) * RECORD_SIZE + OFF_AUX, now)
                first_rtt = aux
            if first_rtt == 0:
                fl |= F_RTT_PENDING
                slab[roff + OFF_FLAGS] |= F_RTT_PENDING
        if not fl & F_BASE:
            base = seq if syn else (seq - 1) & M32
            fl |= F_BASE
        return fl, nextseq, lastack, base, maxack, dupacks, window, seq_t, aux

    def _acked(self, roff: int, ack: int, fl: int) -> int:
        """What an ACK tells of the peer (record at ``roff``): its base sequence, if this
        direction has not given it yet, and data of its that the capture did not see."""
        slab = self.slab
        if not fl & F_REVBASE:
            rfl = slab[roff + OFF_FLAGS]
            if not rfl & F_BASE:
                _U32.pack_into(slab, roff + OFF_BASE, (ack - 1) & M32)
                slab[roff + OFF_FLAGS] = rfl | F_BASE
            fl |= F_REVBASE
        r_next, _r_lastack, rmax = _unpack_head(slab, roff)
        # The peer acknowledges beyond what we saw of it: segments were lost before
        # the capture point, its highest in-order sequence jumps to its nextseq.
        if rmax and ((rmax - ack) & M32) >= HALF:
            _U32.pack_into(slab, roff + OFF_MAXACK, r_next)
            # Until its next packet, tshark 4.0 takes a segment answering the peer's
            # last ACK within 20 ms as a fast retransmission, as after 2 dup ACKs.
            slab[roff + OFF_FLAGS2] = F2_ACKED_UNSEEN
        return fl

    def _probe(
        self,
        roff: int,
        seq: int,
        ack: int,
        flags: int,
        win: int,
        seglen: int,
        nextseq: int,
        lastack: int,
        window: int,
        dupacks: int,
    ) -> tuple[int, int]:
        """A segment of at most one byte (without SYN/FIN/RST unless one byte): its probe
        flag (F_ZWP, F_KEEPALIVE or 0) and the duplicate ACK count it leaves."""
        slab = self.slab
        if (
            seglen == 1
            and seq == nextseq
            and slab[roff + OFF_FLAGS] & F_WIN_SEEN
            and not (_HWB.unpack_from(slab, roff + OFF_DUPACK_WIN_FLAGS)[1])
        ):
            # Zero-window probe: the peer's window is closed and this is its next byte.
            return F_ZWP, dupacks
        if flags & 0x07:
            return 0, dupacks
        if seq == ((nextseq - 1) & M32):
            return F_KEEPALIVE, dupacks
        if (
            seglen == 0
            and win
            and win == window
            and seq == nextseq
            and ack == lastack
            and not slab[roff + OFF_FLAGS] & F_KEEPALIVE
            and dupacks < 0xFFFF
        ):
            dupacks += 1  # a duplicate ACK (an ACK of a keep-alive is not one)
        return 0, dupacks

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
        not_advanced: int,
        spurious: int,
    ) -> bool:
        """Is a segment that did not advance (or was already acked) a retransmission?
        (``not_advanced`` and ``spurious`` are truth values.)

        Wireshark's order: fast retransmission (answers >= 2 duplicate ACKs within
        20 ms), spurious (the peer acked it), out-of-order (within the first RTT or
        3 ms of the newest segment, and not a copy of it), else a retransmission.
        """
        slab = self.slab
        if not_advanced:
            r_dupacks = _HWB.unpack_from(slab, roff + OFF_DUPACK_WIN_FLAGS)[0]
            if slab[roff + OFF_FLAGS2] & F2_ACKED_UNSEEN:
                r_dupacks = 2
            r_lastack = _U32.unpack_from(slab, roff + OFF_LASTACK)[0]
            r_ack_t = _Q.unpack_from(slab, roff + OFF_ACK_T)[0]
            if r_dupacks >= 2 and r_lastack == seq and 0 <= now - r_ack_t < FAST_RETRANS_WINDOW_NS:
                return True
        if spurious:
            return True
        rtt = _Q.unpack_from(slab, (idx & ~1) * RECORD_SIZE + OFF_AUX)[0]
        threshold = rtt if rtt else DEFAULT_OOO_NS
        full_end = (end + 1) & M32 if flags & 0x03 else end
        return not (0 <= now - seq_t < threshold and nextseq != full_end)

    def _first_rtt(self, idx: int, now: int, fl: int, aux: int) -> tuple[int, int]:
        """The first ACK after a SYN sets the conversation's first RTT (from its latest
        SYN to this ACK), used from the next packet on; (flags, aux) of ``idx`` after it."""
        slab = self.slab
        aoff = (idx & ~1) * RECORD_SIZE
        rtt: int = _Q.unpack_from(slab, aoff + OFF_AUX)[0]
        if not rtt:
            rtt = now - _Q.unpack_from(slab, aoff + RECORD_SIZE + OFF_AUX)[0]
            _Q.pack_into(slab, aoff + OFF_AUX, rtt)
            if rtt:
                other = (idx ^ 1) * RECORD_SIZE
                slab[other + OFF_FLAGS] &= ~F_RTT_PENDING & 0xFF
        if rtt:
            fl &= ~F_RTT_PENDING
        return fl, rtt if not idx & 1 else aux
