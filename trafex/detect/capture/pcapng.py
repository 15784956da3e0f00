"""pcapng (sections of either byte order, any number of interfaces): the block loop.

Every packet block (enhanced, simple, obsolete) adds its frame to the current
run of frames; a run ends where the link type changes and at the end of the
chunk. The common block, an enhanced packet block of a known interface whose
link type is the run's, takes one ``struct`` call and no other test. A block
cut by the chunk's end waits for the next chunk; one with an impossible length
ends the reading, counted in ``bad``; a packet with an impossible time or
length, or of an unknown interface, is counted in ``bad`` and skipped.
"""

from __future__ import annotations

import struct
from collections.abc import Generator
from typing import BinaryIO

import structlog

from trafex.detect.capture.frames import Chunk, Frames
from trafex.detect.errors import NotACaptureError

log = structlog.get_logger("trafex.detect.capture")

PCAPNG_SHB = 0x0A0D0D0A
PCAPNG_BOM = 0x1A2B3C4D
MAX_BLOCK = 1 << 26  # no capture format writes a 64 MiB frame: the file is corrupt
MAX_TS = 1 << 63  # ns: a time beyond (year 2262) is corrupt, its packet bad

Interface = tuple[int, int, int, int]
"""(link type, timestamp numerator, denominator (to ns), snaplen)."""


class _CorruptError(Exception):
    """A block that ends the reading."""


class PcapngReader:
    """The blocks of one pcapng file, chunk by chunk."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.packets = 0
        self.bad = 0
        self.ts = 0  # time of the last packet read
        self._order = "<"
        self._epb = struct.Struct("<IIIIIII").unpack_from
        self._ifaces: list[Interface] = []
        self._first = True
        self._runs: list[Frames] = []
        self._linktype = -1  # the current run's
        self._run: tuple[list[int], list[int], list[int], list[int]] = ([], [], [], [])

    def chunks(self, f: BinaryIO, head: bytes, chunk_size: int) -> Generator[Chunk, None, None]:
        """Read ``f`` to its end, a chunk at a time (``head``: what was read of it)."""
        rest = head
        eof = False
        while not eof:
            data = f.read(chunk_size)
            eof = not data
            buf = rest + data if rest else data
            try:
                off = self.blocks(buf, len(buf))
            except _CorruptError as exc:
                self._corrupt(str(exc))
                yield Chunk(self._take(buf), self.ts)
                return
            except NotACaptureError:
                if self._runs or self._run[0]:
                    yield Chunk(self._take(buf), self.ts)  # the frames before it first
                raise
            rest = buf[off:]
            yield Chunk(self._take(buf), self.ts)
        if rest:
            self._corrupt(f"last block cut short ({len(rest)} bytes left)")

    def blocks(self, buf: bytes, size: int) -> int:
        """Read the whole blocks of ``buf[:size]``; returns the offset after them.

        An enhanced packet block is read here, with one ``struct`` call; the common
        one (a known interface, the current run's link type, a good time) is added to
        the run right here (``_frame()`` inlined). Every other packet, and every other
        block, goes through the methods below; the state they change is re-read after.
        """
        off = 0
        packets = 0
        ts = self.ts
        epb, ifaces, linktype = self._epb, self._ifaces, self._linktype
        offsets, caplens, wirelens, times = self._run
        while off + 12 <= size:
            packet = False
            if off + 28 <= size:
                btype, blen, iface, hi, lo, caplen, wirelen = epb(buf, off)
                # A whole enhanced packet block, its frame inside it, in a section with
                # interfaces (the others are counted bad by _block()).
                if (
                    btype == 6
                    and 28 + caplen <= blen
                    and off + blen <= size
                    and not blen % 4
                    and ifaces
                ):
                    packet = True
                    if iface < len(ifaces):
                        lt, num, den, _snap = ifaces[iface]
                        t = ((hi << 32) | lo) * num // den
                        if lt == linktype and t < MAX_TS:
                            ts = t
                            offsets.append(off + 28)
                            caplens.append(caplen)
                            wirelens.append(wirelen)
                            times.append(t)
                            packets += 1
                            off += blen
                            continue
            self.ts = ts
            self.packets += packets
            packets = 0
            if packet:  # bad, or it starts a run
                self._packet(buf, iface, hi, lo, off + 28, caplen, wirelen, True)
                off += blen
            else:
                nxt = self._block(buf, off, size)
                if nxt < 0:
                    break
                off = nxt
            ts = self.ts
            epb, ifaces, linktype = self._epb, self._ifaces, self._linktype
            offsets, caplens, wirelens, times = self._run
        self.ts = ts
        self.packets += packets
        return off

    def _block(self, buf: bytes, off: int, size: int) -> int:
        """Any block but an enhanced packet block read by blocks(): the offset after it,
        or -1 when it is not whole yet."""
        if struct.unpack_from("<I", buf, off)[0] == PCAPNG_SHB:
            self._section(buf, off)
        elif self._first:
            raise NotACaptureError(self.path, "pcapng file does not start with a section")
        order = self._order
        header: tuple[int, int] = struct.unpack_from(order + "II", buf, off)
        btype, blen = header
        if blen < 12 or blen % 4:
            raise _CorruptError(f"pcapng block of length {blen}")
        if off + blen > size:
            if blen > MAX_BLOCK:
                raise _CorruptError(f"pcapng block of {blen} bytes")
            return -1
        body = off + 8
        if btype == 6 and off + 28 <= size:
            # An enhanced packet block that blocks() did not read: its frame does not
            # fit in it, or no interface is described yet.
            self.bad += 1
        elif btype == 3 and self._ifaces:  # simple packet block
            linktype, _num, _den, snap = self._ifaces[0]
            wirelen = struct.unpack_from(order + "I", buf, body)[0]
            caplen = min(wirelen, blen - 16, snap or wirelen)
            self._frame(buf, linktype, off + 12, caplen, wirelen, self.ts)
        elif btype == 2:  # obsolete packet block
            iface, _drops, hi, lo, caplen, wirelen = struct.unpack_from(order + "HHIIII", buf, body)
            self._packet(buf, iface, hi, lo, off + 28, caplen, wirelen, 28 + caplen <= blen)
        elif btype == 1:  # interface description block
            linktype, _res, snaplen = struct.unpack_from(order + "HHI", buf, body)
            num, den = _tsresol(buf, body + 8, off + blen - 4, order)
            self._ifaces.append((linktype, num, den, snaplen))
        return off + blen

    def _section(self, buf: bytes, off: int) -> None:
        """A section header block: its byte order; no interface yet."""
        bom = struct.unpack_from("<I", buf, off + 8)[0]
        if bom == PCAPNG_BOM:
            order = "<"
        elif bom == 0x3C4B2A1D or struct.unpack_from(">I", buf, off + 8)[0] == PCAPNG_BOM:
            order = ">"
        else:
            raise NotACaptureError(self.path, "pcapng byte-order magic not found")
        self._order = order
        self._epb = struct.Struct(order + "IIIIIII").unpack_from
        self._ifaces = []
        self._first = False

    def _packet(
        self,
        buf: bytes,
        iface: int,
        hi: int,
        lo: int,
        at: int,
        caplen: int,
        wirelen: int,
        fits: bool,
    ) -> None:
        """A packet of interface ``iface`` with its 64-bit time: a frame, or bad."""
        if iface >= len(self._ifaces):  # a packet of an unknown interface
            self.bad += 1
            return
        linktype, num, den, _snap = self._ifaces[iface]
        t = ((hi << 32) | lo) * num // den
        if t < MAX_TS and fits:
            self.ts = t
            self._frame(buf, linktype, at, caplen, wirelen, t)
        else:
            self.bad += 1

    def _frame(self, buf: bytes, linktype: int, at: int, caplen: int, wirelen: int, t: int) -> None:
        """Add a frame to the current run (a new one if its link type is another)."""
        if linktype != self._linktype:
            self._close(buf)
            self._linktype = linktype
        offsets, caplens, wirelens, times = self._run
        offsets.append(at)
        caplens.append(caplen)
        wirelens.append(wirelen)
        times.append(t)
        self.packets += 1

    def _close(self, buf: bytes) -> None:
        """End the current run (if it has frames)."""
        if self._run[0]:
            self._runs.append(Frames(buf, self._linktype, lists=self._run))
            self._run = ([], [], [], [])

    def _take(self, buf: bytes) -> list[Frames]:
        """The runs of the chunk in ``buf``, the current one ended."""
        self._close(buf)
        runs = self._runs
        self._runs = []
        return runs

    def _corrupt(self, what: str) -> None:
        self.bad += 1
        log.warning("capture.truncated", path=self.path, detail=what, packets=self.packets)


def _tsresol(buf: bytes, off: int, end: int, order: str) -> tuple[int, int]:
    """(numerator, denominator) turning an interface's timestamps into nanoseconds."""
    num, den = 1000, 1  # default: microseconds
    while off + 4 <= end:
        code, length = struct.unpack_from(order + "HH", buf, off)
        if code == 0:
            break
        if code == 9 and length >= 1:
            v = buf[off + 4]
            if v & 0x80:
                num, den = 1_000_000_000, 1 << (v & 0x7F)
            elif v <= 9:
                num, den = 10 ** (9 - v), 1
            else:
                num, den = 1, 10 ** (v - 9)
        off += 4 + ((length + 3) & ~3)
    return num, den
