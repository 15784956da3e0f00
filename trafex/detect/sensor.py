"""The sensor: the pipeline from a source of frames to detections, one way.

capture (:mod:`~trafex.detect.capture`: chunks of frames) → decode
(:mod:`~trafex.detect.decode`) → flow table (:mod:`~trafex.detect.flows`) →
detectors (:mod:`~trafex.detect.detectors`) → detections.

``Sensor.run(source, on_detection)`` reads until the source ends (or
:meth:`Sensor.stop`), calls ``on_detection`` for every detection as it is
made, and returns the final :class:`SensorStats`. The callback is where a
trigger policy plugs in (printing, or sending intents to trafexd). Between two
chunks the flow table is swept, detectors that keep time are ticked with the
packet time, a pending :meth:`Sensor.reload` is done and progress is reported.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import structlog

from trafex.detect.capture.source import Source
from trafex.detect.config import SensorConfig
from trafex.detect.decode.stage import DecodeStage
from trafex.detect.detection import Detection
from trafex.detect.detectors.base import Detector, DetectorBase
from trafex.detect.flows.table import TcpFlowTable

log = structlog.get_logger("trafex.detect.sensor")
_NO_TICK = DetectorBase.on_tick


@dataclass(frozen=True, slots=True)
class SensorStats:
    """Counts of one run so far: packets read, bad ones (source or decoder), seconds
    of wall time, TCP conversations tracked now and opened in all, detections made,
    kernel drops (live capture; ``None`` for files)."""

    packets: int
    bad_packets: int
    seconds: float
    flows: int
    flows_opened: int
    detections: int
    drops: int | None

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
        """Stop the run after the chunk being decoded."""
        self._stop = True

    def reload(self) -> None:
        """Ask the detectors to re-read their inputs after the chunk being decoded."""
        self._reload = True

    def run(
        self,
        source: Source,
        on_detection: Callable[[Detection], None],
        on_progress: Callable[[SensorStats], None] | None = None,
    ) -> SensorStats:
        """Decode every chunk of ``source`` (see the module's doc); the final stats."""
        run = _Run(self, source, on_detection, on_progress)
        chunks = source.chunks()
        try:
            for chunk in chunks:
                for frames in chunk.frames:
                    run.stage.decode(frames)
                if not run.between_chunks(chunk.ts):
                    break
        finally:
            chunks.close()  # a live source releases its socket before the final stats
        return run.stats()


class _Run:
    """One run of a sensor: its decode stage, what it does between chunks, its stats."""

    def __init__(
        self,
        sensor: Sensor,
        source: Source,
        on_detection: Callable[[Detection], None],
        on_progress: Callable[[SensorStats], None] | None,
    ) -> None:
        self.sensor = sensor
        self.source = source
        self.on_detection = on_detection
        self.on_progress = on_progress
        self.stage = DecodeStage(sensor.detectors, sensor.flows, on_detection)
        self.tickers = [
            d for d in sensor.detectors if getattr(type(d), "on_tick", None) is not _NO_TICK
        ]
        self.ticked = 0  # detections made by on_tick
        self.started = time.perf_counter()
        self.next_progress = self.started + sensor.progress_interval

    def between_chunks(self, ts: int) -> bool:
        """Sweep, tick, reload, report progress; False when the sensor must stop."""
        sensor = self.sensor
        if ts:
            sensor.flows.maybe_sweep(ts)
            for det in self.tickers:
                for found in det.on_tick(ts):
                    self.ticked += 1
                    self.on_detection(found)
        if sensor._reload:
            sensor._reload = False
            for det in sensor.detectors:
                det.reload()
        if self.on_progress is not None:
            now = time.perf_counter()
            if now >= self.next_progress:
                self.next_progress = now + sensor.progress_interval
                self.on_progress(self.stats())
        return not sensor._stop

    def stats(self) -> SensorStats:
        decoder = self.stage.decoder
        flows = self.sensor.flows
        return SensorStats(
            packets=self.source.packets,
            bad_packets=self.source.bad + decoder.bad,
            seconds=time.perf_counter() - self.started,
            flows=len(flows),
            flows_opened=flows.opened,
            detections=decoder.detections + self.ticked,
            drops=self.source.drops(),
        )
