"""The TCP flow table: bounded memory, idle eviction, Wireshark's retransmission semantics.

Each TCP conversation (both directions of one 4-tuple, VLAN ignored, as tshark
matches them) owns two fixed 48-byte records in one ``bytearray`` slab, read
and written with ``struct`` (the layout: :mod:`trafex.detect.flows.layout`). A
dict maps each direction's key (packed ``src + dst + sport + dport``) to its
record number; the two directions of a conversation are records ``2n`` and
``2n + 1``. Ints kept in ``__slots__`` objects would cost ~30 bytes each, the
slab costs 48 bytes per direction.

:meth:`TcpFlowTable.segment` analyses one segment: an in-order segment of a
settled direction on a fast path here, every other one by
:class:`~trafex.detect.flows.analysis.SequenceAnalysis` (the reference).
"""

from __future__ import annotations

import struct
from array import array
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from itertools import repeat
from typing import Annotated

import structlog

from trafex.config import Range
from trafex.detect.flows.analysis import SequenceAnalysis
from trafex.detect.flows.layout import (
    F2_ACKED_UNSEEN,
    F_FIN,
    F_KEEPALIVE,
    F_RST,
    F_WIN_SEEN,
    F_ZWP,
    HALF,
    M32,
    OFF_ACK_T,
    OFF_FLAGS,
    OFF_FLAGS2,
    OFF_LASTACK,
    OFF_MAXACK,
    OFF_RETRANS,
    RECORD,
    RECORD_SIZE,
    SETTLED,
    SETTLED_MASK,
)

log = structlog.get_logger("trafex.detect.flows")

# The fast path's reads and writes: nextseq..flags of this direction with nextseq..
# maxseqtobeacked of the peer, in one call from the conversation's first record
# (record 2n is this direction: _unpack_hot_2n; record 2n+1 is: _unpack_hot_2n1);
# lastack..ack_t; nextseq..seq_t.
_unpack_hot_2n = struct.Struct(f"<IIIHHB{RECORD_SIZE - 17}xIII").unpack_from
_unpack_hot_2n1 = struct.Struct(f"<III{RECORD_SIZE - 12}xIIIHHB").unpack_from
_pack_acked = struct.Struct("<IIHHBBq").pack_into  # from OFF_LASTACK
_pack_advanced = struct.Struct("<IIIHHBBqq").pack_into
_U32 = struct.Struct("<I")
_U16 = struct.Struct("<H")
# What a sweep reads of a conversation: flags and last-packet time of both records.
assert OFF_ACK_T == OFF_FLAGS + 2
_SWEEP = struct.Struct(f"<{OFF_FLAGS}xBxq{RECORD_SIZE - 10}xBxq")

_EMPTY2 = bytes(2 * RECORD_SIZE)
_GROW = 4096  # conversations added to the slab at a time


@dataclass(frozen=True, slots=True)
class FlowTableConfig:
    """Bounds of the flow table (the ``[detect]`` table's keys). Times are seconds of
    packet time."""

    max_flows: Annotated[int, Range(2)] = 1_000_000  # TCP conversations tracked at once
    idle_timeout: Annotated[float, Range(0)] = 120.0  # without a packet: evicted
    closed_timeout: Annotated[float, Range(0)] = 10.0  # kept after FIN both ways or RST
    sweep_interval: Annotated[float, Range(0)] = 5.0  # between eviction sweeps


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
        self.analysis = SequenceAnalysis(self._slab)
        self._general = self.analysis.general
        self.opened = 0
        self.evicted_idle = 0
        self.evicted_closed = 0
        self.evicted_full = 0
        self._idle_ns = int(self.config.idle_timeout * 1e9)
        self._closed_ns = int(self.config.closed_timeout * 1e9)
        self._sweep_ns = int(self.config.sweep_interval * 1e9)
        self._next_sweep = 0

    def __len__(self) -> int:
        return self._count

    @property
    def slab(self) -> bytearray:
        """The records (layout: :mod:`trafex.detect.flows.layout`), record ``i`` at byte
        ``i * RECORD_SIZE``. The slab grows in place: keep no view of it across a
        :meth:`track` or :meth:`segment`, which may open conversations."""
        return self._slab

    @property
    def index(self) -> Mapping[bytes, int]:
        """Direction key → record number, for every tracked direction (read only)."""
        return self._index

    def records(self, keys: Iterable[bytes]) -> list[int]:
        """The record numbers of directions ``keys`` (-1 for one not tracked)."""
        return list(map(self._index.get, keys, repeat(-1)))

    @property
    def port_reuses(self) -> int:
        return self.analysis.port_reuses

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
        return _U16.unpack_from(self._slab, idx * RECORD_SIZE + OFF_RETRANS)[0]  # type: ignore[no-any-return]

    def state(self, key: bytes) -> DirectionState | None:
        """The state of direction ``key``, or None when it is not tracked."""
        idx = self._index.get(key)
        if idx is None:
            return None
        nextseq, lastack, _m, dupacks, window, fl, _f2, last, _s, _b, retrans, _a = (
            RECORD.unpack_from(self._slab, idx * RECORD_SIZE)
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
        off = slot * 2 * RECORD_SIZE
        self._slab[off : off + 2 * RECORD_SIZE] = _EMPTY2
        self._keys[slot] = key
        self._index[key] = slot * 2
        self._index[reverse_key(key)] = slot * 2 + 1
        self._count += 1
        self.opened += 1
        return slot * 2

    def _grow(self) -> None:
        start = self._capacity
        self._capacity += _GROW
        self._slab.extend(bytes(_GROW * 2 * RECORD_SIZE))
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
            fa, ta, fb, tb = unpack(slab, slot * 2 * RECORD_SIZE)
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
        log.warning("flows.table_full", flows=self._count, max_flows=self.config.max_flows)

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
        off = idx * RECORD_SIZE
        if idx & 1:
            r_next, r_lastack, rmax, nextseq, lastack, maxack, dupacks, window, fl = (
                _unpack_hot_2n1(slab, off - RECORD_SIZE)
            )
        else:
            nextseq, lastack, maxack, dupacks, window, fl, r_next, r_lastack, rmax = _unpack_hot_2n(
                slab, off
            )
        # Fast path, ~95% of segments: an ACK without SYN/FIN/RST, in order (seq is the
        # direction's nextseq), on a settled direction (base known, first RTT known),
        # carrying no data (a pure ACK) or 2+ bytes (1 byte could be a window probe).
        # It does what the general analysis does for such a segment, with the branches
        # that cannot be taken left out, and touches only the fields that can change;
        # anything else, or a segment the peer already acked (spurious retransmission),
        # goes to the general analysis, the reference: the tests run both on random
        # traffic and compare the tables byte for byte. The numpy batches
        # (trafex.detect.decode.prefix) apply runs of such segments at once, in closed
        # form: keep all three the same.
        if (
            flags & 0x17 == 0x10
            and fl & SETTLED_MASK == SETTLED
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
                    and not slab[(idx ^ 1) * RECORD_SIZE + OFF_FLAGS] & F_KEEPALIVE
                ):
                    dupacks += 1  # a duplicate ACK (an ACK of a keep-alive is not one)
                maxack = maxack or nextseq  # (not an if statement: one branch fewer)
                _pack_acked(slab, off + OFF_LASTACK, ack, maxack, dupacks, win, fl, 0, now)
            if rmax and ((rmax - ack) & M32) >= HALF:
                # The peer's data was acked unseen (see SequenceAnalysis._acked).
                roff = (idx ^ 1) * RECORD_SIZE
                _U32.pack_into(slab, roff + OFF_MAXACK, r_next)
                slab[roff + OFF_FLAGS2] = F2_ACKED_UNSEEN
            return 0
        return self._general(idx, seq, ack, flags, win, seglen, now)
