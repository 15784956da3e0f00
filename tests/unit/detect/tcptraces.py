"""Random TCP conversations for differential testing against tshark."""

from __future__ import annotations

import struct
from pathlib import Path

from hypothesis import strategies as st

_ETH = b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x08\x00"
_A = bytes([10, 9, 0, 1])
_B = bytes([10, 9, 0, 2])

# One event: (from_client, kind, size, pick, window, gap_us, flags)
Event = tuple[bool, int, int, int, int, int, int]

events = st.lists(
    st.tuples(
        st.booleans(),
        st.integers(0, 6),  # 0 new data, 1 resend, 2 pure ack, 3 keepalive, 4 fin, 5 syn,
        # 6 an ACK of data the peer never sent (lost before the capture point)
        st.sampled_from([0, 1, 10, 100, 1000]),
        st.integers(0, 1000),
        st.sampled_from([0, 512, 8192, 8192, 8192]),
        st.sampled_from([1, 100, 2_000, 30_000, 400_000]),
        st.sampled_from([0x10, 0x18, 0x10, 0x11, 0x14]),
    ),
    min_size=1,
    max_size=40,
)


def _frame(
    src: bytes,
    dst: bytes,
    sport: int,
    dport: int,
    seq: int,
    ack: int,
    flags: int,
    win: int,
    size: int,
) -> bytes:
    tcp = struct.pack(
        "!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, 0x50, flags, win, 0, 0
    )
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 40 + size, 1, 0, 64, 6, 0, src, dst)
    return _ETH + ip + tcp + b"\x00" * size


Segment = tuple[bool, int, int, int, int, int, int]  # client, seq, ack, flags, win, size, t_us


def trace_segments(
    evs: list[Event], handshake: bool, isn: tuple[int, int] = (1_000_000, 7_000_000)
) -> list[Segment]:
    """The TCP segments of one connection driven by ``evs`` (after an optional
    handshake); sequence numbers are not reduced modulo 2**32."""
    first = {True: isn[0], False: isn[1]}
    nxt = dict(first)
    sent: dict[bool, list[tuple[int, int]]] = {True: [], False: []}
    out: list[Segment] = []
    t = 1_700_000_000_000_000

    def emit(client: bool, seq: int, ack: int, flags: int, win: int, size: int) -> None:
        out.append((client, seq, ack, flags, win, size, t))

    if handshake:
        emit(True, first[True], 0, 0x02, 8192, 0)
        t += 1000
        emit(False, first[False], first[True] + 1, 0x12, 8192, 0)
        t += 1000
        emit(True, first[True] + 1, first[False] + 1, 0x10, 8192, 0)
        nxt = {True: first[True] + 1, False: first[False] + 1}
    for client, kind, size, pick, win, gap, flags in evs:
        t += gap
        ack = nxt[not client]
        if kind == 0:
            emit(client, nxt[client], ack, 0x18 if size else 0x10, win, size)
            sent[client].append((nxt[client], size))
            nxt[client] += size
        elif kind == 1 and sent[client]:
            seq, old = sent[client][pick % len(sent[client])]
            emit(client, seq, ack, 0x18, win, old)
        elif kind == 2:
            acked = [s + n for s, n in sent[not client]] or [ack]
            emit(client, nxt[client], acked[pick % len(acked)], 0x10, win, 0)
        elif kind == 3:
            emit(client, nxt[client] - 1, ack, 0x10, win, size % 2)
        elif kind == 4:
            emit(client, nxt[client], ack, flags, win, 0)
            if flags & 1:
                nxt[client] += 1
        elif kind == 6:
            emit(client, nxt[client], nxt[not client] + 1 + pick, 0x10, win, 0)
        else:
            emit(
                client,
                first[client],
                0 if client else first[True] + 1,
                0x02 if client else 0x12,
                win,
                0,
            )
    return out


def write_trace(path: Path, evs: list[Event], handshake: bool) -> Path:
    """A capture of one connection driven by ``evs`` (after an optional handshake)."""
    out = bytearray(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
    for client, seq, ack, flags, win, size, ts in trace_segments(evs, handshake):
        src, dst = (_A, _B) if client else (_B, _A)
        sp, dp = (40000, 80) if client else (80, 40000)
        frame = _frame(src, dst, sp, dp, seq, ack, flags, win, size)
        sec, usec = divmod(ts, 1_000_000)
        out += struct.pack("<IIII", sec, usec, len(frame), len(frame)) + frame
    path.write_bytes(bytes(out))
    return path
