"""What a source hands to the decoder: runs of frames where they lie in a buffer.

A source reads a chunk (a megabyte of a file, a block of the kernel's ring) and
finds its frames without copying them: per frame, its offset in the chunk's
buffer, the bytes captured, its length on the wire and its time in nanoseconds.
Consecutive frames of one link type make one :class:`Frames` run; a
:class:`Chunk` is the runs of one read, in packet order.

A reader fills the four columns in whichever form its record loop makes them
cheaply: Python lists (pcapng, live) or numpy arrays (pcap: the record headers
are gathered at once). Decoding frame by frame wants lists and the numpy
batches want arrays; each form is made from the other on first use.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

I64 = npt.NDArray[np.int64]
Lists = tuple[list[int], list[int], list[int], list[int]]
"""(offsets, captured lengths, wire lengths, times in ns), one entry per frame."""
Arrays = tuple[I64, I64, I64, I64]
"""The same columns as int64 arrays."""


class Frames:
    """A run of frames of one link type, in packet order, lying in ``buf``."""

    __slots__ = ("_arrays", "_lists", "buf", "linktype")

    def __init__(
        self, buf: bytes, linktype: int, lists: Lists | None = None, arrays: Arrays | None = None
    ) -> None:
        if lists is None and arrays is None:
            raise ValueError("Frames needs its columns as lists or as arrays")
        self.buf = buf
        self.linktype = linktype
        self._lists = lists
        self._arrays = arrays

    def __len__(self) -> int:
        if self._lists is not None:
            return len(self._lists[0])
        assert self._arrays is not None
        return len(self._arrays[0])

    def wire_bytes(self) -> int:
        """The frames' lengths on the wire, summed in whichever form the columns are."""
        if self._lists is not None:
            return sum(self._lists[2])
        assert self._arrays is not None
        return int(self._arrays[2].sum())

    def lists(self) -> Lists:
        """The columns as lists: (offsets, caplens, wirelens, times)."""
        if self._lists is None:
            assert self._arrays is not None
            offsets, caplens, wirelens, times = (a.tolist() for a in self._arrays)
            self._lists = (offsets, caplens, wirelens, times)
        return self._lists

    def arrays(self) -> Arrays:
        """The columns as int64 arrays: (offsets, caplens, wirelens, times)."""
        if self._arrays is None:
            assert self._lists is not None
            offsets, caplens, wirelens, times = (np.array(c, dtype=np.int64) for c in self._lists)
            self._arrays = (offsets, caplens, wirelens, times)
        return self._arrays


@dataclass(frozen=True, slots=True)
class Chunk:
    """One read of a source: its runs of frames, in packet order (none when nothing
    came), and the time of the last packet read so far (ns; 0 before the first)."""

    frames: Sequence[Frames]
    ts: int
