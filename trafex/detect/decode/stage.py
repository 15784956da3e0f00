"""The decode stage: runs of frames in, flow-table updates and detector calls out.

Each run of Ethernet frames goes through the numpy batches
(:class:`~trafex.detect.decode.batch.FrameBatcher`) when there is a flow table
to keep (a retransmission detector); every other run, frame by frame through
the frame handler of its link type (:class:`~trafex.detect.decode.links.Decoder`).
Both give the same result, byte for byte.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from trafex.detect.capture.frames import Frames
from trafex.detect.capture.linktypes import LINKTYPE_ETHERNET, LINKTYPE_MASK
from trafex.detect.decode.batch import FrameBatcher
from trafex.detect.decode.links import Decoder
from trafex.detect.detection import Detection
from trafex.detect.detectors.base import Detector
from trafex.detect.flows.table import TcpFlowTable

BATCH_MIN: int | None = 512
"""Runs of at least this many Ethernet frames are decoded in batches; None: never
(frame by frame). Read when a stage is made."""


class DecodeStage:
    """Decodes runs of frames (see the module's doc); ``decoder`` holds the counters."""

    def __init__(
        self,
        detectors: Sequence[Detector],
        flows: TcpFlowTable | None,
        emit: Callable[[Detection], None],
    ) -> None:
        self.decoder = Decoder(detectors, flows, emit)
        self.batcher: FrameBatcher | None = None
        if self.decoder.flows is not None and BATCH_MIN is not None:
            self.batcher = FrameBatcher(self.decoder, self.decoder.flows, BATCH_MIN)

    def decode(self, frames: Frames) -> None:
        """Decode one run of frames, in order."""
        if self.batcher is not None and frames.linktype & LINKTYPE_MASK == LINKTYPE_ETHERNET:
            self.batcher.frames(frames)
            return
        handle = self.decoder.handler(frames.linktype)
        buf = frames.buf
        for off, caplen, wirelen, ts in zip(*frames.lists(), strict=True):
            handle(buf, off, caplen, wirelen, ts)
