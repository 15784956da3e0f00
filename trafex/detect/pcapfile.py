"""Capture files: pcap (both byte orders, micro- and nanosecond) and pcapng.

The file is read in large chunks (or from a pipe); records are walked with
``struct`` and each frame is handed to the frame handler of its link type
where it lies in the chunk, with its time in nanoseconds. A record cut short
at the end of the file, or with an impossible length, is counted in ``bad``
and ends the reading (nothing after it can be trusted); a file that is not a
capture raises :class:`~trafex.detect.errors.NotACaptureError`.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import structlog

from trafex.detect.decode import FrameHandler, PcapWalker
from trafex.detect.errors import NotACaptureError

if TYPE_CHECKING:
    from trafex.detect.batch import FrameBatcher

log = structlog.get_logger("trafex.detect.pcapfile")

CHUNK = 1 << 20
MAX_RECORD = 1 << 26  # no capture format writes a 64 MiB frame: the file is corrupt
MAX_TS = 1 << 63  # ns: a pcapng time beyond (year 2262) is corrupt, its packet bad

PCAP_MAGIC_US = 0xA1B2C3D4
PCAP_MAGIC_NS = 0xA1B23C4D
PCAPNG_SHB = 0x0A0D0D0A
PCAPNG_BOM = 0x1A2B3C4D

HandlerFor = Callable[[int], FrameHandler]
WalkerFor = Callable[[int, str, int], PcapWalker | None]
"""(linktype, byte order, fraction-to-ns factor) -> a pcap record walker
(see :meth:`~trafex.detect.decode.Decoder.pcap_walker`), or None."""
BatcherFor = Callable[[int], "FrameBatcher | None"]
"""linktype -> the decoder's batcher for frames of that type (pcapng), or None."""
OnChunk = Callable[[int, int], bool]
"""Called after each chunk with (packets so far, time of the last packet in ns);
returning False stops the reading."""


class CaptureFile:
    """A pcap or pcapng file (or a pipe) as a packet source."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self.packets = 0
        self.bad = 0
        self.linktypes: list[int] = []

    def drops(self) -> int | None:
        return None

    def run(
        self,
        handler_for: HandlerFor,
        on_chunk: OnChunk,
        walker_for: WalkerFor | None = None,
        batcher_for: BatcherFor | None = None,
    ) -> None:
        """Hand every frame to ``handler_for(linktype)``; with ``walker_for``, a pcap
        file's records are walked by the walker it returns, if any (a chunk at a time);
        with ``batcher_for``, a pcapng file's frames go in batches to the batcher it
        returns for their interface's link type, if any (in packet order all the same)."""
        try:
            f: BinaryIO = open(self.path, "rb")  # noqa: SIM115 - closed below
        except OSError as exc:
            raise NotACaptureError(self.path, exc.strerror or str(exc)) from exc
        with f:
            head = f.read(24)
            if len(head) < 4:
                raise NotACaptureError(self.path, "file shorter than a capture header")
            magic_le = struct.unpack_from("<I", head)[0]
            magic_be = struct.unpack_from(">I", head)[0]
            if magic_le == PCAPNG_SHB:
                self._pcapng(f, head, handler_for, on_chunk, batcher_for)
                return
            if magic_le in (PCAP_MAGIC_US, PCAP_MAGIC_NS):
                order = "<"
                magic = magic_le
            elif magic_be in (PCAP_MAGIC_US, PCAP_MAGIC_NS):
                order = ">"
                magic = magic_be
            else:
                raise NotACaptureError(self.path, f"unknown magic number 0x{magic_be:08x}")
            if len(head) < 24:
                raise NotACaptureError(self.path, "pcap header cut short")
            linktype = struct.unpack_from(order + "I", head, 20)[0]
            self.linktypes.append(linktype)
            frac_ns = 1 if magic == PCAP_MAGIC_NS else 1000
            unpack = struct.Struct(order + "IIII").unpack_from
            walk = walker_for(linktype, order, frac_ns) if walker_for is not None else None
            self._pcap(f, unpack, frac_ns, handler_for(linktype), on_chunk, walk)

    def _pcap(
        self,
        f: BinaryIO,
        unpack: Callable[[bytes, int], tuple[int, ...]],
        frac_ns: int,
        handle: FrameHandler,
        on_chunk: OnChunk,
        walk: PcapWalker | None,
    ) -> None:
        rest = b""
        packets = 0
        ts = 0
        last_sec = sec_ns = -1
        while True:
            chunk = f.read(CHUNK)
            if not chunk:
                break
            buf = rest + chunk if rest else chunk
            size = len(buf)
            off = 0
            if walk is not None:
                # The walker handles every whole record; the loop below then only
                # sees the record cut by the chunk's end (or a corrupt one).
                off, walked, last_ts = walk(buf, 0, size)
                if walked:
                    packets += walked
                    ts = last_ts
            while off + 16 <= size:
                sec, frac, caplen, wirelen = unpack(buf, off)
                p = off + 16
                if p + caplen > size:
                    if caplen > MAX_RECORD:
                        self.packets = packets
                        self._corrupt(f"record of {caplen} bytes")
                        return
                    break
                if sec != last_sec:  # a multi-digit int product, saved for most packets
                    last_sec = sec
                    sec_ns = sec * 1_000_000_000
                ts = sec_ns + frac * frac_ns
                handle(buf, p, caplen, wirelen, ts)
                off = p + caplen
                packets += 1
            rest = buf[off:]
            self.packets = packets
            if not on_chunk(packets, ts):
                return
        self.packets = packets
        if rest:
            self._corrupt(f"last record cut short ({len(rest)} bytes left)")

    def _corrupt(self, what: str) -> None:
        self.bad += 1
        log.warning("capture.truncated", path=self.path, detail=what, packets=self.packets)

    def _pcapng(
        self,
        f: BinaryIO,
        head: bytes,
        handler_for: HandlerFor,
        on_chunk: OnChunk,
        batcher_for: BatcherFor | None,
    ) -> None:
        rest = head
        order = "<"
        # Per interface: handler, timestamp num and den, snaplen, batcher.
        ifaces: list[tuple[FrameHandler, int, int, int, FrameBatcher | None]] = []
        # Frames waiting for their batcher (offset, caplen, wirelen, time): handed over
        # before any other frame is handled and at the end of each chunk.
        waiting: FrameBatcher | None = None
        frames: list[int] = []
        caplens: list[int] = []
        wirelens: list[int] = []
        times: list[int] = []

        def flush(buf: bytes) -> None:
            if frames:
                assert waiting is not None
                waiting.frames(buf, frames, caplens, wirelens, times)
                frames.clear()
                caplens.clear()
                wirelens.clear()
                times.clear()

        epb = struct.Struct(order + "IIIIIII").unpack_from
        packets = 0
        ts = 0
        first = True
        eof = False
        while not eof:
            chunk = f.read(CHUNK)
            if not chunk:
                eof = True
            buf = rest + chunk if rest else chunk
            size = len(buf)
            off = 0
            while off + 12 <= size:
                if off + 28 <= size:
                    # The common case first: an enhanced packet block of an interface
                    # whose frames are batched (one struct call, no other test).
                    btype, blen, iface, hi, lo, caplen, wirelen = epb(buf, off)
                    if (
                        btype == 6
                        and iface < len(ifaces)
                        and 28 + caplen <= blen
                        and off + blen <= size
                        and not blen % 4
                    ):
                        handle, num, den, _snap, batcher = ifaces[iface]
                        t = ((hi << 32) | lo) * num // den
                        if batcher is not None and batcher is waiting and t < MAX_TS:
                            ts = t
                            frames.append(off + 28)
                            caplens.append(caplen)
                            wirelens.append(wirelen)
                            times.append(ts)
                            packets += 1
                            off += blen
                            continue
                btype_le = struct.unpack_from("<I", buf, off)[0]
                if btype_le == PCAPNG_SHB:
                    if off + 12 > size:
                        break
                    bom = struct.unpack_from("<I", buf, off + 8)[0]
                    if bom == PCAPNG_BOM:
                        order = "<"
                    elif (
                        bom == 0x3C4B2A1D or struct.unpack_from(">I", buf, off + 8)[0] == PCAPNG_BOM
                    ):
                        order = ">"
                    else:
                        flush(buf)
                        raise NotACaptureError(self.path, "pcapng byte-order magic not found")
                    ifaces = []
                    epb = struct.Struct(order + "IIIIIII").unpack_from
                    first = False
                elif first:
                    raise NotACaptureError(self.path, "pcapng file does not start with a section")
                btype, blen = struct.unpack_from(order + "II", buf, off)
                if blen < 12 or blen % 4:
                    flush(buf)
                    self._corrupt(f"pcapng block of length {blen}")
                    self.packets = packets
                    return
                if off + blen > size:
                    if blen > MAX_RECORD:
                        flush(buf)
                        self.packets = packets
                        self._corrupt(f"pcapng block of {blen} bytes")
                        return
                    break
                body = off + 8
                if btype == 6 and off + 28 <= size:  # enhanced packet block
                    iface, hi, lo, caplen, wirelen = struct.unpack_from(order + "IIIII", buf, body)
                    t = MAX_TS  # a packet of an unknown interface: bad
                    if iface < len(ifaces):
                        handle, num, den, _snap, batcher = ifaces[iface]
                        t = ((hi << 32) | lo) * num // den
                    if t < MAX_TS and 28 + caplen <= blen:
                        ts = t
                        if batcher is None:
                            flush(buf)
                            handle(buf, off + 28, caplen, wirelen, ts)
                        else:
                            if batcher is not waiting:
                                flush(buf)
                                waiting = batcher
                            frames.append(off + 28)
                            caplens.append(caplen)
                            wirelens.append(wirelen)
                            times.append(ts)
                        packets += 1
                    else:
                        self.bad += 1
                elif btype == 3 and ifaces:  # simple packet block
                    flush(buf)
                    handle, _num, _den, snap, _batcher = ifaces[0]
                    wirelen = struct.unpack_from(order + "I", buf, body)[0]
                    caplen = min(wirelen, blen - 16, snap or wirelen)
                    handle(buf, off + 12, caplen, wirelen, ts)
                    packets += 1
                elif btype == 2:  # obsolete packet block
                    iface, _drops, hi, lo, caplen, wirelen = struct.unpack_from(
                        order + "HHIIII", buf, body
                    )
                    t = MAX_TS
                    if iface < len(ifaces):
                        handle, num, den, _snap, _batcher = ifaces[iface]
                        t = ((hi << 32) | lo) * num // den
                    if t < MAX_TS and 28 + caplen <= blen:
                        ts = t
                        flush(buf)
                        handle(buf, off + 28, caplen, wirelen, ts)
                        packets += 1
                    else:
                        self.bad += 1
                elif btype == 1:  # interface description block
                    linktype, _res, snaplen = struct.unpack_from(order + "HHI", buf, body)
                    num, den = _tsresol(buf, body + 8, off + blen - 4, order)
                    self.linktypes.append(linktype)
                    batcher = batcher_for(linktype) if batcher_for is not None else None
                    ifaces.append((handler_for(linktype), num, den, snaplen, batcher))
                off += blen
            flush(buf)
            rest = buf[off:]
            self.packets = packets
            if not on_chunk(packets, ts):
                return
        if rest:
            self._corrupt(f"last block cut short ({len(rest)} bytes left)")


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
            else:
                exp = v
                if exp <= 9:
                    num, den = 10 ** (9 - exp), 1
                else:
                    num, den = 1, 10 ** (exp - 9)
        off += 4 + ((length + 3) & ~3)
    return num, den
