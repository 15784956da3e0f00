"""The sensor: detections through one callback, stats, stop, reload, progress."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from trafex.detect import (
    CaptureFile,
    Detection,
    DetectorBase,
    Interests,
    Sensor,
    SensorConfig,
    SensorStats,
)
from trafex.detect.packet import PacketView

from .helpers import first_records_bytes, write_pcap
from .tcpscenarios import SCENARIOS


class TtlCounter(DetectorBase):
    """A tiny extra detector: the plug-in point needs nothing but this class."""

    name = "ttl"
    interests = Interests(packets=True)

    def __init__(self) -> None:
        self.ttls: list[int] = []
        self.reloads = 0

    def on_packet(self, pkt: PacketView) -> Sequence[Detection]:
        self.ttls.append(pkt.ttl)
        return ()

    def reload(self) -> None:
        self.reloads += 1


def _capture(tmp_path: Path) -> Path:
    pkts = SCENARIOS["rto"](False) + SCENARIOS["syn_fin"](True)
    return write_pcap(tmp_path / "s.pcap", sorted(pkts, key=lambda p: float(p.time)))


def test_detections_come_through_the_callback(tmp_path: Path) -> None:
    """Every detection is passed to on_detection and counted in the stats."""
    found: list[Detection] = []
    config = SensorConfig().with_detector("retransmit", threshold=1)
    stats = Sensor(config).run(CaptureFile(_capture(tmp_path)), found.append)
    assert stats.detections == len(found) == 3
    assert stats.packets == 17
    assert stats.bad_packets == 0
    assert stats.flows_opened == 2


def test_a_new_detector_is_one_class(tmp_path: Path) -> None:
    """A per-packet detector sees every IP packet's header fields."""
    ttl = TtlCounter()
    Sensor(SensorConfig(), detectors=[ttl]).run(CaptureFile(_capture(tmp_path)), print)
    assert len(ttl.ttls) == 17
    assert set(ttl.ttls) == {64}


def test_reload_and_progress_are_called(tmp_path: Path) -> None:
    """reload() reaches the detectors; progress lines are reported with live stats."""
    ttl = TtlCounter()
    sensor = Sensor(SensorConfig(), detectors=[ttl], progress_interval=0.0)
    sensor.reload()
    seen: list[SensorStats] = []
    sensor.run(CaptureFile(_capture(tmp_path)), print, seen.append)
    assert ttl.reloads == 1
    assert seen and seen[-1].packets == 17


def test_stop_ends_the_run_after_the_first_chunk(tmp_path: Path) -> None:
    """stop() before running ends the run after the first chunk read: here the first
    three of the file's 17 records."""
    path = _capture(tmp_path)
    sensor = Sensor(SensorConfig())
    sensor.stop()
    stats = sensor.run(CaptureFile(path, chunk_size=first_records_bytes(path, 3)), print)
    assert stats.packets == 3
