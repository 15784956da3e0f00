"""The sensor's Prometheus metrics (``trafex detect --metrics HOST:PORT``), read when scraped.

The collector reads counters that exist anyway: the source's packets, unreadable
records and kernel drops, the flow table's size, the trigger policy's and the
sender's counts (intents let through, held back, accepted by trafexd, failed). Two
counts have no other home and are kept outside the packet loop, by
:meth:`SensorMetrics.run`: bytes, summed per chunk of frames as the source hands it
over (:class:`CountingSource`), and detections by detector, counted as each is
reported. Nothing is counted per packet: without ``--metrics`` nothing changes at all.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Generator, Iterator, Mapping
from typing import Protocol

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from trafex.detect.capture.frames import Chunk
from trafex.detect.capture.source import Source
from trafex.detect.detection import Detection
from trafex.detect.errors import DetectError
from trafex.detect.sensor import Sensor, SensorStats
from trafex.exporter import Exporter, ExporterError, new_registry, serve_metrics


class PolicyCounts(Protocol):
    """The trigger policy's counters (:class:`~trafex.trigger.policy.PolicyStats`)."""

    @property
    def sent(self) -> int: ...

    @property
    def suppressed(self) -> int: ...

    @property
    def rate_limited(self) -> int: ...

    @property
    def invalid(self) -> int: ...

    @property
    def by_detector(self) -> Mapping[str, int]: ...


class SendCounts(Protocol):
    """The sender's counters (:class:`~trafex.trigger.sender.SendStats`)."""

    @property
    def sent(self) -> int: ...

    @property
    def unannounced(self) -> int: ...

    @property
    def dropped(self) -> int: ...

    @property
    def failures(self) -> Mapping[str, int]: ...


class _HasPolicyCounts(Protocol):
    @property
    def stats(self) -> PolicyCounts: ...


class _HasSendCounts(Protocol):
    @property
    def stats(self) -> SendCounts: ...


class TriggerCounts(Protocol):
    """What the metrics read of the trigger (:class:`~trafex.trigger.pipeline.Trigger`)."""

    @property
    def policy(self) -> _HasPolicyCounts: ...

    @property
    def sender(self) -> _HasSendCounts | None: ...


class CountingSource:
    """A :class:`~trafex.detect.capture.source.Source` that sums its frames' wire bytes,
    one sum per run of frames as a chunk is handed over; the rest is the source's."""

    def __init__(self, source: Source) -> None:
        self._source = source
        self.bytes = 0

    @property
    def packets(self) -> int:
        return self._source.packets

    @property
    def bad(self) -> int:
        return self._source.bad

    def drops(self) -> int | None:
        return self._source.drops()

    def chunks(self) -> Generator[Chunk, None, None]:
        chunks = self._source.chunks()
        try:
            for chunk in chunks:
                for frames in chunk.frames:
                    self.bytes += frames.wire_bytes()
                yield chunk
        finally:
            chunks.close()  # the source releases its socket, as without metrics


class SensorCollector:
    """The sensor's metrics, read at each scrape (see the module's doc)."""

    def __init__(self, sensor: Sensor, trigger: TriggerCounts | None) -> None:
        self._sensor = sensor
        self._trigger = trigger
        self._lock = threading.Lock()
        self._source: CountingSource | None = None
        self._detections: Counter[str] = Counter()

    def watch(self, source: CountingSource) -> None:
        """Read this source from now on (the run's)."""
        self._source = source

    def detected(self, detection: Detection) -> None:
        """Count one detection (called by the packet loop's thread, once per detection)."""
        with self._lock:
            self._detections[detection.detector] += 1

    def collect(self) -> Iterator[Metric]:
        yield from self._capture()
        detections = CounterMetricFamily(
            "trafex_sensor_detections", "Detections made, by detector", labels=["detector"]
        )
        with self._lock:
            counts = dict(self._detections)
        for name in sorted({d.name for d in self._sensor.detectors} | set(counts)):
            detections.add_metric([name], counts.get(name, 0))
        yield detections
        if self._trigger is not None:
            yield from _intents(self._trigger)

    def _capture(self) -> Iterator[Metric]:
        source, flows = self._source, self._sensor.flows
        if source is not None:
            yield CounterMetricFamily("trafex_sensor_packets", "Packets read", value=source.packets)
            yield CounterMetricFamily(
                "trafex_sensor_bytes", "Bytes read (frame lengths on the wire)", value=source.bytes
            )
            yield CounterMetricFamily(
                "trafex_sensor_bad_records",
                "Capture records the source could not read",
                value=source.bad,
            )
            drops = source.drops()
            if drops is not None:
                yield CounterMetricFamily(
                    "trafex_sensor_kernel_drops",
                    "Packets the kernel dropped before the sensor saw them (live capture)",
                    value=drops,
                )
        yield GaugeMetricFamily(
            "trafex_sensor_flows", "TCP conversations tracked", value=len(flows)
        )
        yield CounterMetricFamily(
            "trafex_sensor_flows_opened", "TCP conversations opened", value=flows.opened
        )


def _intents(trigger: TriggerCounts) -> Iterator[Metric]:
    """The trigger's metrics: what the policy let through or held back, and what
    trafexd accepted or not (with ``--controller``)."""
    policy = trigger.policy.stats
    let_through = CounterMetricFamily(
        "trafex_sensor_intents",
        "Intents the trigger policy let through, by origin (the detector)",
        labels=["origin"],
    )
    for origin, count in sorted(dict(policy.by_detector).items()):
        let_through.add_metric([origin], count)
    yield let_through
    held = CounterMetricFamily(
        "trafex_sensor_intents_held",
        "Intents the trigger policy held back, by reason",
        labels=["reason"],
    )
    for reason, count in (
        ("suppressed", policy.suppressed),
        ("rate_limited", policy.rate_limited),
        ("invalid", policy.invalid),
    ):
        held.add_metric([reason], count)
    yield held
    sender = trigger.sender
    if sender is None:
        return
    sent = sender.stats
    yield CounterMetricFamily(
        "trafex_sensor_intents_sent", "Intents trafexd accepted (stored)", value=sent.sent
    )
    yield CounterMetricFamily(
        "trafex_sensor_intents_unannounced",
        "Of those, stored while trafexd's sidecar was down",
        value=sent.unannounced,
    )
    failed = CounterMetricFamily(
        "trafex_sensor_send_failures",
        "Intents trafexd did not take, by kind (refused, unreachable, timeout, ...)",
        labels=["kind"],
    )
    for kind, count in sorted(dict(sent.failures).items()):
        failed.add_metric([kind], count)
    yield failed
    yield CounterMetricFamily(
        "trafex_sensor_intents_dropped",
        "Intents dropped before sending (the send queue was full)",
        value=sent.dropped,
    )


class SensorMetrics:
    """A running ``/metrics`` endpoint for one sensor, serving ``registry``."""

    def __init__(
        self,
        sensor: Sensor,
        collector: SensorCollector,
        registry: CollectorRegistry,
        exporter: Exporter,
    ) -> None:
        self._sensor = sensor
        self.collector = collector
        self.registry = registry
        self._exporter = exporter

    def run(
        self,
        source: Source,
        on_detection: Callable[[Detection], None],
        on_progress: Callable[[SensorStats], None] | None = None,
    ) -> SensorStats:
        """:meth:`Sensor.run`, with the bytes and the detections counted."""
        counting = CountingSource(source)
        self.collector.watch(counting)

        def detected(detection: Detection) -> None:
            self.collector.detected(detection)
            on_detection(detection)

        return self._sensor.run(counting, detected, on_progress)

    def stop(self) -> None:
        self._exporter.stop()


def sensor_registry(collector: SensorCollector) -> CollectorRegistry:
    """The sensor's own registry: its collector and the ``process_*`` metrics."""
    registry = new_registry()
    registry.register(collector)
    return registry


def serve_sensor_metrics(
    listen: str | None, sensor: Sensor, trigger: TriggerCounts | None = None
) -> SensorMetrics | None:
    """Serve the sensor's metrics on ``listen`` (``HOST:PORT``; None: no metrics, returns
    None); run the sensor with :meth:`SensorMetrics.run`. Raises :class:`DetectError`
    when it cannot listen."""
    if listen is None:
        return None
    collector = SensorCollector(sensor, trigger)
    registry = sensor_registry(collector)
    try:
        exporter = serve_metrics(listen, registry)
    except ExporterError as error:
        raise DetectError(f"--{error}") from None
    return SensorMetrics(sensor, collector, registry, exporter)
