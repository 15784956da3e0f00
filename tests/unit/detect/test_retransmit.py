"""The retransmit detector: once per direction at exactly the threshold, then at most
every repeat_after seconds while the direction keeps retransmitting."""

from __future__ import annotations

import pytest

from trafex.config import Table
from trafex.detect import ConfigError
from trafex.detect.detectors.retransmit import SPEC, RetransmitConfig, RetransmitDetector
from trafex.detect.packet import PacketView


def _pkt(sport: int) -> PacketView:
    pkt = PacketView()
    pkt.src, pkt.dst = bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])
    pkt.sport, pkt.dport, pkt.proto, pkt.ts = sport, 443, 6, 1_500_000_000_000_000_000
    return pkt


def test_fires_once_when_the_count_reaches_the_threshold() -> None:
    """Counts below and above the threshold say nothing; reaching it gives one detection."""
    det = RetransmitDetector(RetransmitConfig(threshold=3))
    results = [det.on_retransmission(_pkt(1234), n) for n in range(1, 7)]
    assert [len(r) for r in results] == [0, 0, 1, 0, 0, 0]
    [d] = results[2]
    assert d.to_dict() == {
        "detector": "retransmit",
        "flow": {"src": "10.0.0.1", "sport": 1234, "dst": "10.0.0.2", "dport": 443, "proto": "tcp"},
        "retransmits": 3,
        "threshold": 3,
        "repeat": False,
        "ts": 1_500_000_000.0,
    }


def _at(sport: int, seconds: float) -> PacketView:
    pkt = _pkt(sport)
    pkt.ts += int(seconds * 1e9)
    return pkt


def test_repeats_while_the_direction_keeps_retransmitting() -> None:
    """A later retransmission reports the direction again once repeat_after seconds
    have passed since its last report (so a trigger can refresh its intent)."""
    det = RetransmitDetector(RetransmitConfig(threshold=2, repeat_after=60))
    times = [0, 1, 30, 59.9, 61, 62, 130]  # retransmissions 1..7 of one direction
    fired = [
        (n, d.to_dict()["repeat"])
        for n, t in enumerate(times, 1)
        for d in det.on_retransmission(_at(1234, t), n)
    ]
    assert fired == [(2, False), (5, True), (7, True)]


def test_repeat_after_zero_reports_once() -> None:
    """With repeat_after = 0 a direction is reported once, however long it retransmits."""
    det = RetransmitDetector(RetransmitConfig(threshold=1, repeat_after=0))
    fired = [len(det.on_retransmission(_at(1234, 100.0 * n), n)) for n in range(1, 6)]
    assert fired == [1, 0, 0, 0, 0]


def test_directions_repeat_independently_and_memory_is_bounded() -> None:
    """Each direction has its own clock; only max_reported directions are remembered
    (a forgotten one reports again at its next retransmission)."""
    det = RetransmitDetector(RetransmitConfig(threshold=1, repeat_after=60, max_reported=2))
    for port in (1, 2, 3):
        assert len(det.on_retransmission(_at(port, 0), 1)) == 1
    assert len(det._reported) == 2
    assert len(det.on_retransmission(_at(3, 10), 2)) == 0  # remembered: too soon
    assert len(det.on_retransmission(_at(1, 10), 2)) == 1  # forgotten: reports again


@pytest.mark.parametrize(
    "table",
    [
        {"threshold": 0},
        {"threshold": 70000},
        {"threshold": "3"},
        {"limit": 3},
        {"repeat_after": -1},
        {"max_reported": 0},
    ],
)
def test_bad_config_is_rejected(table: dict[str, object]) -> None:
    """Thresholds outside 1..65535, wrong types and unknown keys are ConfigErrors."""
    with pytest.raises(ConfigError):
        SPEC.detector(Table(table, "detect.retransmit"))
