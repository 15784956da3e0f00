"""The capture stage's plug-in point: a source of frames (a file, an interface)."""

from __future__ import annotations

from collections.abc import Generator
from typing import Protocol

from trafex.detect.capture.frames import Chunk


class Source(Protocol):
    """Where frames come from: a capture file or a live interface.

    :meth:`chunks` reads until the source ends; the sensor decodes each chunk's
    frames, then may stop (``close()`` on the generator ends the reading and
    releases what the source holds).
    """

    @property
    def packets(self) -> int:
        """Frames read so far."""
        ...

    @property
    def bad(self) -> int:
        """Records the source could not read (cut short, impossible lengths or times)."""
        ...

    def chunks(self) -> Generator[Chunk, None, None]:
        """The chunks of frames, in packet order."""
        ...

    def drops(self) -> int | None:
        """Packets the kernel dropped (live capture), ``None`` for files."""
        ...
