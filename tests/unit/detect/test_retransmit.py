"""The retransmit detector: once per direction, at exactly the threshold."""

from __future__ import annotations

import pytest

from trafex.detect import ConfigError
from trafex.detect.packet import PacketView
from trafex.detect.retransmit import RetransmitConfig, RetransmitDetector, from_config


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
        "ts": 1_500_000_000.0,
    }


@pytest.mark.parametrize(
    "table", [{"threshold": 0}, {"threshold": 70000}, {"threshold": "3"}, {"limit": 3}]
)
def test_bad_config_is_rejected(table: dict[str, object]) -> None:
    """Thresholds outside 1..65535, wrong types and unknown keys are ConfigErrors."""
    with pytest.raises(ConfigError):
        from_config(table)
