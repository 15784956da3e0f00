"""Classic pcap (both byte orders, micro- and nanosecond times): the record loop.

Records are found with one ``struct`` call each (their captured length; they
have variable lengths), then every record header of the chunk is gathered at
once with numpy. A record cut by the chunk's end waits for the next chunk; one
with an impossible length (over ``MAX_RECORD``), or cut by the end of the
file, is counted in ``bad`` and ends the reading (nothing after it can be
trusted).
"""

from __future__ import annotations

import struct
from collections.abc import Generator
from typing import BinaryIO

import numpy as np
import structlog
from numpy.lib.stride_tricks import sliding_window_view

from trafex.detect.capture.frames import Chunk, Frames

log = structlog.get_logger("trafex.detect.capture")

PCAP_MAGIC_US = 0xA1B2C3D4
PCAP_MAGIC_NS = 0xA1B23C4D
PCAP_HEADER = 24  # bytes of the file header
MAX_RECORD = 1 << 26  # no capture format writes a 64 MiB frame: the file is corrupt


class PcapReader:
    """The records of one classic pcap file, chunk by chunk."""

    def __init__(self, path: str, order: str, nanoseconds: bool, linktype: int) -> None:
        self.path = path
        self.linktype = linktype
        self.frac_ns = 1 if nanoseconds else 1000
        self.packets = 0
        self.bad = 0
        self._caplen_at = struct.Struct(order + "I").unpack_from
        self._u32 = np.dtype(order + "u4")

    def records(self, buf: bytes, off: int, size: int) -> tuple[Frames, int]:
        """The whole records of ``buf[off:size]`` as frames, and the offset of the
        first record not whole (where the next chunk starts)."""
        caplen_at = self._caplen_at
        starts: list[int] = []
        append = starts.append
        while off + 16 <= size:
            nxt = off + 16 + caplen_at(buf, off + 8)[0]
            if nxt > size:
                break
            append(off)
            off = nxt
        if not starts:
            return Frames(buf, self.linktype, lists=([], [], [], [])), off
        rec = np.array(starts, dtype=np.int64)
        raw = np.frombuffer(buf, dtype=np.uint8)
        head = sliding_window_view(raw, 16)[rec].view(self._u32).astype(np.int64)
        sec, frac, caplen, wirelen = head[:, 0], head[:, 1], head[:, 2], head[:, 3]
        ts = sec * 1_000_000_000 + frac * self.frac_ns
        return Frames(buf, self.linktype, arrays=(rec + 16, caplen, wirelen, ts)), off

    def chunks(self, f: BinaryIO, chunk_size: int) -> Generator[Chunk, None, None]:
        """Read ``f`` (past the file header) to its end, a chunk at a time."""
        rest = b""
        ts = 0
        while data := f.read(chunk_size):
            buf = rest + data if rest else data
            frames, off = self.records(buf, 0, len(buf))
            rest = buf[off:]
            if len(frames):
                self.packets += len(frames)
                ts = int(frames.arrays()[3][-1])
            caplen = self._caplen_at(rest, 8)[0] if len(rest) >= 16 else 0
            if caplen > MAX_RECORD:
                self._corrupt(f"record of {caplen} bytes")
            yield Chunk((frames,) if len(frames) else (), ts)
            if caplen > MAX_RECORD:
                return
        if rest:
            self._corrupt(f"last record cut short ({len(rest)} bytes left)")

    def _corrupt(self, what: str) -> None:
        self.bad += 1
        log.warning("capture.truncated", path=self.path, detail=what, packets=self.packets)
