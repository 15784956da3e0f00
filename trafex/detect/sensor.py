"""The sensor: a source of frames, the decoder, the flow table and the detectors.

``Sensor.run(source, on_detection)`` reads until the source ends (or
:meth:`Sensor.stop`), calls ``on_detection`` for every detection as it is
made, and returns the final :class:`SensorStats`. The callback is where a
trigger policy plugs in (printing, or sending intents to trafexd).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import structlog

from trafex.detect.config import SensorConfig
from trafex.detect.decode import Decoder, FrameHandler
from trafex.detect.detection import Detection
from trafex.detect.detector import Detector, DetectorBase
from trafex.detect.flowtable import TcpFlowTable
from trafex.detect.pcapfile import CaptureFile

log = structlog.get_logger("trafex.detect.sensor")
_NO_TICK = DetectorBase.on_tick


class Source(Protocol):
    """Where frames come from: a capture file or a live interface."""

    packets: int
    bad: int

    def run(
        self, handler_for: Callable[[int], FrameHandler], on_chunk: Callable[[int, int], bool]
    ) -> None:
        """Hand every frame to ``handler_for(linktype)``; call ``on_chunk`` now and then
        with (packets so far, last packet time in ns) and stop when it returns False."""
        ...

    def drops(self) -> int | None:
        """Packets the kernel dropped (live capture), ``None`` for files."""
        ...


@dataclass(frozen=True, slots=True)
class SensorStats:
    packets: int
    bad_packets: int
    seconds: float
    flows: int
    flows_opened: int
    detections: int
    drops: int | None
    fragments: int
    non_ip: int
    unsupported: int

    @property
    def pps(self) -> float:
        return self.packets / self.seconds if self.seconds > 0 else 0.0


class Sensor:
    """Runs detectors over one source; ``reload()`` and ``stop()`` are signal-safe."""

    def __init__(
        self,
        config: SensorConfig | None = None,
        detectors: Sequence[Detector] | None = None,
        progress_interval: float = 1.0,
    ) -> None:
        self.config = config or SensorConfig()
        self.detectors = (
            list(detectors) if detectors is not None else (self.config.build_detectors())
        )
        self.flows = TcpFlowTable(self.config.flows)
        self.progress_interval = progress_interval
        self._stop = False
        self._reload = False

    def stop(self) -> None:
        self._stop = True

    def reload(self) -> None:
        """Ask the detectors to re-read their inputs at the next chunk of packets."""
        self._reload = True

    def run(
        self,
        source: Source,
        on_detection: Callable[[Detection], None],
        on_progress: Callable[[SensorStats], None] | None = None,
    ) -> SensorStats:
        decoder = Decoder(self.detectors, self.flows, on_detection)
        flows = self.flows
        tickers = [d for d in self.detectors if getattr(type(d), "on_tick", None) is not _NO_TICK]
        started = time.perf_counter()
        next_progress = started + self.progress_interval

        def stats_now() -> SensorStats:
            return self._stats(source, decoder, time.perf_counter() - started)

        def on_chunk(packets: int, ts: int) -> bool:
            nonlocal next_progress
            if ts:
                flows.maybe_sweep(ts)
                for det in tickers:
                    for found in det.on_tick(ts):
                        decoder.detections += 1
                        on_detection(found)
            if self._reload:
                self._reload = False
                for det in self.detectors:
                    det.reload()
            if on_progress is not None:
                now = time.perf_counter()
                if now >= next_progress:
                    next_progress = now + self.progress_interval
                    on_progress(stats_now())
            return not self._stop

        if isinstance(source, CaptureFile):
            # A pcap file's records are walked by the decoder itself (one loop, no call
            # per packet between reader and decoder) when it has a walker for them; a
            # pcapng file's frames go to it in batches where it has a batcher.
            source.run(decoder.handler, on_chunk, decoder.pcap_walker, decoder.frame_batcher)
        else:
            source.run(decoder.handler, on_chunk)
        final = stats_now()
        return final

    def _stats(self, source: Source, decoder: Decoder, seconds: float) -> SensorStats:
        return SensorStats(
            packets=source.packets,
            bad_packets=source.bad + decoder.bad,
            seconds=seconds,
            flows=len(self.flows),
            flows_opened=self.flows.opened,
            detections=decoder.detections,
            drops=source.drops(),
            fragments=decoder.fragments,
            non_ip=decoder.non_ip,
            unsupported=decoder.unsupported,
        )
