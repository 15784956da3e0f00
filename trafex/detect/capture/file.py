"""Capture files: pcap (both byte orders, micro- and nanosecond) and pcapng.

The file (or a pipe) is read in large chunks by the reader of its format
(:mod:`~trafex.detect.capture.pcap`, :mod:`~trafex.detect.capture.pcapng`); a
file that is not a capture raises
:class:`~trafex.detect.errors.NotACaptureError`.
"""

from __future__ import annotations

import struct
from collections.abc import Generator
from pathlib import Path
from typing import BinaryIO

from trafex.detect.capture.frames import Chunk
from trafex.detect.capture.pcap import PCAP_HEADER, PCAP_MAGIC_NS, PCAP_MAGIC_US, PcapReader
from trafex.detect.capture.pcapng import PCAPNG_SHB, PcapngReader
from trafex.detect.errors import NotACaptureError

CHUNK = 1 << 20
"""Bytes read at a time (unless the file is given another ``chunk_size``)."""


class CaptureFile:
    """A pcap or pcapng file (or a pipe) as a packet source."""

    def __init__(self, path: str | Path, chunk_size: int | None = None) -> None:
        self.path = str(path)
        self.chunk_size = chunk_size
        self._reader: PcapReader | PcapngReader | None = None

    @property
    def packets(self) -> int:
        return self._reader.packets if self._reader is not None else 0

    @property
    def bad(self) -> int:
        return self._reader.bad if self._reader is not None else 0

    def drops(self) -> int | None:
        return None

    def chunks(self) -> Generator[Chunk, None, None]:
        """Read the file to its end, a chunk of frames at a time."""
        try:
            f: BinaryIO = open(self.path, "rb")  # noqa: SIM115 - closed below
        except OSError as exc:
            raise NotACaptureError(self.path, exc.strerror or str(exc)) from exc
        with f:
            head = f.read(PCAP_HEADER)
            chunk_size = self.chunk_size or CHUNK
            if len(head) >= 4 and struct.unpack_from("<I", head)[0] == PCAPNG_SHB:
                pcapng = self._reader = PcapngReader(self.path)
                yield from pcapng.chunks(f, head, chunk_size)
            else:
                pcap = self._reader = self._pcap(head)
                yield from pcap.chunks(f, chunk_size)

    def _pcap(self, head: bytes) -> PcapReader:
        """The reader for a classic pcap file with this header."""
        if len(head) < 4:
            raise NotACaptureError(self.path, "file shorter than a capture header")
        for order in "<>":
            magic = struct.unpack_from(order + "I", head)[0]
            if magic in (PCAP_MAGIC_US, PCAP_MAGIC_NS):
                if len(head) < PCAP_HEADER:
                    raise NotACaptureError(self.path, "pcap header cut short")
                linktype = struct.unpack_from(order + "I", head, 20)[0]
                return PcapReader(self.path, order, magic == PCAP_MAGIC_NS, linktype)
        magic_be = struct.unpack_from(">I", head)[0]
        raise NotACaptureError(self.path, f"unknown magic number 0x{magic_be:08x}")
