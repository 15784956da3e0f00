"""The closed-form step of the numpy batches: each conversation's in-order prefix at once.

A segment is *simple* when the flow table's fast path
(:meth:`~trafex.detect.flows.table.TcpFlowTable.segment`) would take it: an
in-order ACK or data segment of a settled direction, not already acked by the
peer. Whether it is, and the state it finds, follow in closed form from the
records at the start of the step and the conversation's earlier segments, as
long as those were simple: this holds for each conversation's *prefix*, its
segments before the first non-simple one. The state after each prefix (next
sequence number, last ACK, duplicate ACK count, window, flags, times) is
written into the flow table's slab at once. Closed form needs one invariant,
checked per conversation and usual past the handshake: each direction's
highest sequence number to be acked equals its next sequence number; a
conversation without it is left to ``segment()``.

The records are read and written through a numpy view built from the flow
table's published layout (:mod:`trafex.detect.flows.layout`).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from trafex.detect.capture.frames import I64
from trafex.detect.decode.fields import FrameFields, Mask
from trafex.detect.flows.layout import (
    F2_ACKED_UNSEEN,
    F_KEEPALIVE,
    F_WIN_SEEN,
    F_ZWP,
    FIELDS,
    HALF,
    M32,
    RECORD_SIZE,
    SETTLED,
    SETTLED_MASK,
)

_NUMPY_CODES = {"I": "<u4", "H": "<u2", "B": "u1", "q": "<i8"}
RECORD_DTYPE = np.dtype(
    {
        "names": [f.name for f in FIELDS],
        "formats": [_NUMPY_CODES[f.code] for f in FIELDS],
        "offsets": [f.offset for f in FIELDS],
        "itemsize": RECORD_SIZE,
    }
)
"""The flow table's record as a numpy structured type."""


def advance(slab: bytearray, fields: FrameFields, pos: I64, idx: I64) -> Mask:
    """The eligible packets ``pos`` of known directions ``idx`` (time order): write each
    conversation's in-order prefix into the slab; returns which of them it took (the
    others are left to ``segment()``)."""
    run = _Run(slab, fields, pos, idx)
    took = run.prefix()
    if took.any():
        run.write(slab, took)
    out = np.empty_like(took)  # back in the original order
    out[run.order] = took
    return out


def _grouped(group: I64, within: I64) -> I64:
    """The order that sorts by ``group``, then by ``within`` (unique within a group,
    non-negative): one unstable sort of a combined key, several times faster than a
    stable sort."""
    return np.argsort(group * (int(within.max()) + 1) + within)


def _as_records(rows: npt.NDArray[np.uint8]) -> npt.NDArray[np.void]:
    """Contiguous rows of slab bytes as flow-table records."""
    return rows.view(RECORD_DTYPE)[:, 0]


def _shifted(last: I64) -> I64:
    """``last`` one place later: each packet's value before it (-1 for the first)."""
    before = np.empty(len(last), dtype=np.int64)
    before[0] = -1
    before[1:] = last[:-1]
    return before


def _starts(group: I64) -> Mask:
    """Where each group of a sorted ``group`` column starts."""
    first = np.empty(len(group), dtype=bool)
    first[0] = True
    first[1:] = group[1:] != group[:-1]
    return first


class _Run:
    """Packets grouped by conversation (time order within each), with the records as
    the step found them and each packet's previous packet in its conversation."""

    def __init__(self, slab: bytearray, fields: FrameFields, pos: I64, idx: I64) -> None:
        m = len(idx)
        ar = np.arange(m)
        self.order = order = _grouped(idx >> 1, ar)
        pos = pos[order]
        self.idx = idx = idx[order]
        d = idx & 1
        self.seq = fields.seq[pos]
        self.ack = fields.ack[pos]
        self.flags = fields.flags[pos]
        self.win = fields.win[pos]
        self.seglen = fields.seglen[pos]
        self.ts = fields.ts[pos]
        self.end = (self.seq + self.seglen) & M32
        rows = np.frombuffer(slab, dtype=np.uint8).reshape(-1, RECORD_SIZE)
        self.own = _as_records(np.take(rows, idx, axis=0))  # copies: the slab as found
        self.peer = _as_records(np.take(rows, idx ^ 1, axis=0))
        del rows  # no view of the slab may outlive this call (it grows in place)
        # Each packet's previous packet in its direction, and the peer's latest one.
        self.start = start = np.maximum.accumulate(np.where(_starts(idx >> 1), ar, 0))
        before0 = _shifted(np.maximum.accumulate(np.where(d == 0, ar, -1)))
        before1 = _shifted(np.maximum.accumulate(np.where(d == 1, ar, -1)))
        self.prev = np.where(d == 0, before0, before1)
        self.prev_peer = np.where(d == 0, before1, before0)
        self.has_prev = self.prev >= start
        self.has_peer = self.prev_peer >= start

    def prefix(self) -> Mask:
        """Which packets are in their conversation's prefix."""
        own, peer = self.own, self.peer
        seq, seglen = self.seq, self.seglen
        # The invariant that makes the state closed-form (see the module's doc).
        steady = (own["maxack"] == own["nextseq"]) & (peer["maxack"] == peer["nextseq"])
        # The state each packet finds, if the conversation's packets before it were simple.
        nextseq = np.where(self.has_prev, self.end[self.prev], own["nextseq"].astype(np.int64))
        peer_lastack = np.where(
            self.has_peer, self.ack[self.prev_peer], peer["lastack"].astype(np.int64)
        )
        simple = (
            steady
            & (self.flags & 0x17 == 0x10)
            & (own["flags"].astype(np.int64) & SETTLED_MASK == SETTLED)
            & (seq == nextseq)
            & (seq != 0)
            & (seglen != 1)
            & ~((seglen > 0) & (peer_lastack != 0) & (((peer_lastack - seq - seglen) & M32) < HALF))
        )
        # The prefix: no non-simple packet before it in its conversation.
        nonsimple = np.cumsum(~simple)
        start = self.start
        took: Mask = (nonsimple - (nonsimple[start] - (~simple[start]))) == 0
        return took

    def write(self, slab: bytearray, took: Mask) -> None:
        """Write each direction's state after its prefix packets (``took``)."""
        idx = self.idx
        # Each direction's final state: its prefix packets grouped by direction.
        p = np.flatnonzero(took)
        by_dir = p[_grouped(idx[p], np.arange(len(p)))]
        firsts = _starts(idx[by_dir])
        lasts = np.empty(len(by_dir), dtype=bool)
        lasts[-1] = True
        lasts[:-1] = firsts[1:]
        dstart = np.maximum.accumulate(np.where(firsts, np.arange(len(by_dir)), 0))
        last = by_dir[lasts]  # each direction's last prefix packet
        out = idx[last]
        own = self.own
        dupacks = self._dupacks(by_dir, dstart, lasts)
        ak = np.arange(len(by_dir))
        data_at = np.maximum.accumulate(np.where(self.seglen[by_dir] > 0, ak, -1))
        had_data = data_at >= dstart
        seq_t = np.where(had_data, self.ts[by_dir][np.maximum(data_at, 0)], own["seq_t"][by_dir])
        acked_dir, acked = self._acked_unseen(p)
        records = np.frombuffer(slab, dtype=RECORD_DTYPE)
        end_last = self.end[last]
        records["nextseq"][out] = end_last
        records["maxack"][out] = end_last
        records["lastack"][out] = self.ack[last]
        records["dupacks"][out] = dupacks
        records["window"][out] = self.win[last]
        flags = own["flags"][last].astype(np.int64)
        records["flags"][out] = (flags & ~(F_KEEPALIVE | F_ZWP)) | F_WIN_SEEN
        records["ack_t"][out] = self.ts[last]
        records["seq_t"][out] = seq_t[lasts]
        records["flags2"][acked_dir] = np.where(acked, F2_ACKED_UNSEEN, 0)
        del records

    def _dupacks(self, by_dir: I64, dstart: I64, lasts: Mask) -> I64:
        """Each direction's duplicate ACK count after its prefix: reset by a new ACK,
        counted by a pure ACK repeating the last ACK and window (not when the peer's
        last segment was a keep-alive)."""
        own, ack, win = self.own, self.ack, self.win
        lastack = np.where(self.has_prev, ack[self.prev], own["lastack"].astype(np.int64))
        window = np.where(self.has_prev, win[self.prev], own["window"].astype(np.int64))
        peer_keepalive = ~self.has_peer & ((self.peer["flags"] & F_KEEPALIVE) != 0)
        reset = ack != lastack
        dup = ~reset & (self.seglen == 0) & (win != 0) & (win == window) & ~peer_keepalive
        ak = np.arange(len(by_dir))
        last_reset = np.maximum.accumulate(np.where(reset[by_dir], ak, -1))
        had_reset = last_reset >= dstart
        dups = np.cumsum(dup[by_dir])
        from_reset = np.where(
            had_reset, dups[np.maximum(last_reset, 0)], dups[dstart] - dup[by_dir][dstart]
        )
        base = np.where(had_reset, 0, own["dupacks"][by_dir].astype(np.int64))
        counts: I64 = np.minimum(base + dups - from_reset, 0xFFFF)[lasts]
        return counts

    def _acked_unseen(self, p: I64) -> tuple[I64, Mask]:
        """flags2 of the directions the prefix packets ``p`` touch: set by the peer's ACK
        beyond this direction's data (its highest sequence to be acked, which is its
        nextseq by the invariant), cleared by this direction's next segment; the later
        event wins. Returns (directions, set or not)."""
        idx = self.idx
        peer_max = np.where(
            self.has_peer, self.end[self.prev_peer], self.peer["nextseq"].astype(np.int64)
        )
        acked_unseen = (peer_max != 0) & (((peer_max - self.ack) & M32) >= HALF)
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
        return ev_dir[ev_last], ev_val[ev][ev_last] != 0
