"""The sensor's /metrics (trafex.detect.metrics): counters read at scrape time.

A sensor runs over a small capture (a TCP flow that retransmits, a DNS answer for a
blocklisted name); the registry's exposition text is parsed back as Prometheus would.
"""

from __future__ import annotations

import argparse
import socket
import urllib.request
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from trafex.cli import detect as cli
from trafex.detect import CaptureFile, Detection, Sensor, SensorConfig
from trafex.detect.capture.frames import Chunk, Frames
from trafex.detect.metrics import (
    CountingSource,
    SensorCollector,
    sensor_registry,
    serve_sensor_metrics,
)
from trafex.trigger.policy import PolicyStats
from trafex.trigger.sender import SendStats

from .dnsscenarios import response, udp
from .helpers import write_pcap
from .tcpscenarios import scenario_rto

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture(autouse=True)
def _reset_logging() -> Iterator[None]:
    """The CLI configures structlog for its stderr; later tests get the defaults back."""
    yield
    structlog.reset_defaults()


def parse(text: str) -> Samples:
    """(name, sorted labels) → value, for every sample of an exposition text."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def scrape(registry: CollectorRegistry) -> Samples:
    return parse(generate_latest(registry).decode())


def _packets() -> list[Any]:
    answer = response("badhacks.com", [("badhacks.com", "AAAA", "3001:10:66::5")], "AAAA")
    return sorted([*scenario_rto(True), udp(answer, True)], key=lambda p: float(p.time))


def _config(tmp_path: Path) -> SensorConfig:
    blocklist = tmp_path / "blocklist.txt"
    blocklist.write_text("badhacks.com\n")
    return (
        SensorConfig()
        .with_detector("retransmit", threshold=3)
        .with_detector("dns", blocklist=str(blocklist))
    )


class _Policy:
    def __init__(self, stats: PolicyStats) -> None:
        self.stats = stats


class _Sender:
    def __init__(self, stats: SendStats) -> None:
        self.stats = stats


class _Trigger:
    """The trigger's counters, where the collector reads them (trigger.pipeline.Trigger)."""

    def __init__(self, policy: PolicyStats, sent: SendStats | None) -> None:
        self.policy = _Policy(policy)
        self.sender = _Sender(sent) if sent is not None else None


def test_a_run_shows_packets_bytes_and_detections_by_detector(tmp_path: Path) -> None:
    """After a run over a capture: the packets and their wire bytes, the detections of
    each detector (0 for one that found nothing), flows opened; no kernel drops for a
    file. A scrape during the run reads the counts of that moment."""
    packets = _packets()
    path = write_pcap(tmp_path / "c.pcap", packets)
    sensor = Sensor(_config(tmp_path))
    metrics = serve_sensor_metrics(f"127.0.0.1:{_free_port()}", sensor)
    assert metrics is not None
    during: list[float] = []

    def on_detection(_d: Detection) -> None:
        samples = scrape(metrics.registry)
        during.append(sum(v for (n, _), v in samples.items() if n.endswith("detections_total")))

    try:
        metrics.run(CaptureFile(path), on_detection)
        samples = scrape(metrics.registry)
    finally:
        metrics.stop()
    assert samples[("trafex_sensor_packets_total", ())] == len(packets)
    assert samples[("trafex_sensor_bytes_total", ())] == sum(len(p) for p in packets)
    assert samples[("trafex_sensor_detections_total", (("detector", "retransmit"),))] == 1
    assert samples[("trafex_sensor_detections_total", (("detector", "dns"),))] == 1
    assert samples[("trafex_sensor_flows_opened_total", ())] >= 1
    assert ("trafex_sensor_kernel_drops_total", ()) not in samples
    assert during == [1, 2]


def test_bytes_are_summed_from_either_form_of_the_frames() -> None:
    """A run of frames given as lists (pcapng, live) or as arrays (pcap) counts the
    same wire bytes."""
    import numpy as np

    columns = ([0, 60], [60, 60], [60, 1514], [1, 2])
    as_lists = Frames(b"", 1, lists=columns)
    as_arrays = Frames(b"", 1, arrays=tuple(np.array(c, dtype=np.int64) for c in columns))  # type: ignore[arg-type]

    class Fake:
        packets, bad = 4, 0

        def drops(self) -> int | None:
            return 3

        def chunks(self) -> Generator[Chunk, None, None]:
            yield Chunk((as_lists,), 1)
            yield Chunk((as_arrays,), 2)

    source = CountingSource(Fake())
    assert [chunk.ts for chunk in source.chunks()] == [1, 2]
    assert (source.bytes, source.packets, source.drops()) == (2 * 1574, 4, 3)


def test_intents_let_through_held_sent_and_failed(tmp_path: Path) -> None:
    """With a trigger: intents let through by origin, held back by reason, accepted by
    trafexd, failed by kind, dropped; without a sender (--dry-run) no send series."""
    policy = PolicyStats(sent=5, suppressed=2, rate_limited=1, by_detector={"dns": 4, "tcp": 1})
    sent = SendStats(sent=3, unannounced=1, failed=2, dropped=1, failures={"unreachable": 2})
    sensor = Sensor(_config(tmp_path))
    samples = scrape(sensor_registry(SensorCollector(sensor, _Trigger(policy, sent))))
    assert samples[("trafex_sensor_intents_total", (("origin", "dns"),))] == 4
    assert samples[("trafex_sensor_intents_held_total", (("reason", "suppressed"),))] == 2
    assert samples[("trafex_sensor_intents_held_total", (("reason", "rate_limited"),))] == 1
    assert samples[("trafex_sensor_intents_sent_total", ())] == 3
    assert samples[("trafex_sensor_intents_unannounced_total", ())] == 1
    assert samples[("trafex_sensor_send_failures_total", (("kind", "unreachable"),))] == 2
    assert samples[("trafex_sensor_intents_dropped_total", ())] == 1
    dry = scrape(sensor_registry(SensorCollector(sensor, _Trigger(policy, None))))
    assert ("trafex_sensor_intents_sent_total", ()) not in dry
    assert dry[("trafex_sensor_intents_total", (("origin", "tcp"),))] == 1


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    cli.add_parser(parser.add_subparsers())
    return parser.parse_args(["detect", *argv])


def test_trafex_detect_serves_metrics_while_it_runs(tmp_path: Path) -> None:
    """trafex detect --metrics HOST:PORT answers GET /metrics during the run (read from
    a detection's callback) and frees the port when the run ends."""
    address = f"127.0.0.1:{_free_port()}"
    path = write_pcap(tmp_path / "c.pcap", _packets())
    blocklist = tmp_path / "blocklist.txt"
    blocklist.write_text("badhacks.com\n")
    args = _args(
        "--pcap", str(path), "--blocklist", str(blocklist), "--progress", "0", "--metrics", address
    )
    seen: list[Samples] = []

    def get(_d: Detection) -> None:
        with urllib.request.urlopen(f"http://{address}/metrics", timeout=5) as answer:
            seen.append(parse(answer.read().decode()))

    assert cli.run(args, on_detection=get) == 0
    assert len(seen) == 2
    assert seen[-1][("trafex_sensor_detections_total", (("detector", "dns"),))] == 1
    assert seen[-1][("trafex_sensor_packets_total", ())] > 0
    with socket.socket() as sock:  # the port is free again (no listener)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", int(address.rsplit(":", 1)[1])))


def test_a_metrics_port_in_use_is_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--metrics on a port already taken: one line naming the address, exit 2."""
    path = write_pcap(tmp_path / "c.pcap", _packets())
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        assert cli.run(_args("--pcap", str(path), "--progress", "0", "--metrics", address)) == 2
    err = capsys.readouterr().err
    assert err == f"trafex detect: --metrics: cannot listen on {address}: Address already in use\n"
