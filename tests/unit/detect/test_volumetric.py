"""The volumetric detector: per-destination rates over a sliding window, per kind, groups."""

from __future__ import annotations

import ipaddress
import itertools
from pathlib import Path
from typing import Any

import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP

from trafex.config import Table
from trafex.detect import ConfigError, SensorConfig
from trafex.detect.detectors.volumetric import VolumetricEvidence, read_config
from trafex.model.protocols import PROTO_TCP

from .dnsscenarios import eth
from .helpers import run_sensor, write_pcap

VICTIM = ipaddress.ip_address("192.0.2.80")


def _flood(n: int, rate: float, layer: Any, sources: int = 4, dst: str = str(VICTIM)) -> list[Any]:
    pkts = []
    for i in range(n):
        p = eth() / IP(src=f"198.51.100.{1 + i % sources}", dst=dst) / layer
        p.time = 1_700_000_000 + i / rate
        p._trafex_time_set = True
        pkts.append(p)
    return pkts


def _config(table: dict[str, Any]) -> SensorConfig:
    return SensorConfig().with_detector("volumetric", **table)


def test_syn_flood_names_sources_port_and_protocol(tmp_path: Path) -> None:
    """A SYN flood over the syn_pps threshold gives one detection naming sources and port."""
    pkts = _flood(3000, 1000.0, TCP(sport=1234, dport=443, flags="S"))
    path = write_pcap(tmp_path / "syn.pcap", pkts)
    found = run_sensor(path, _config({"window": 2.0, "default": {"syn_pps": 500}}))
    assert len(found) == 1
    ev = found[0].evidence
    assert isinstance(ev, VolumetricEvidence)
    assert found[0].host == VICTIM
    assert (ev.kind, ev.metric, ev.ip_proto) == ("tcp-syn", "pps", PROTO_TCP)
    assert ev.top_dst_ports[0][:2] == (PROTO_TCP, 443)
    sources = {ipaddress.ip_address(f"198.51.100.{i}") for i in range(1, 5)}
    assert {src for src, _n in ev.top_sources} == sources
    assert ev.to_dict()["ip_proto"] == "tcp"
    top = ev.to_dict()["top_dst_ports"]
    assert isinstance(top, list) and isinstance(top[0], dict)
    assert (top[0]["proto"], top[0]["port"]) == ("tcp", 443)
    assert ev.rate > ev.threshold == 500


def test_under_threshold_is_quiet(tmp_path: Path) -> None:
    """Traffic under every threshold gives nothing."""
    path = write_pcap(tmp_path / "low.pcap", _flood(500, 100.0, UDP(sport=5, dport=53)))
    assert run_sensor(path, _config({"default": {"pps": 500, "udp_pps": 200}})) == []


def test_bps_threshold_counts_bits(tmp_path: Path) -> None:
    """Large UDP packets trip the bits/s threshold, not the packets/s one."""
    pkts = _flood(2000, 1000.0, UDP(sport=5, dport=9) / (b"x" * 1000))
    path = write_pcap(tmp_path / "bps.pcap", pkts)
    found = run_sensor(path, _config({"window": 1.0, "default": {"pps": 5000, "bps": 4e6}}))
    assert [(d.evidence.to_dict()["kind"], d.evidence.to_dict()["metric"]) for d in found] == [
        ("all", "bps")
    ]


def test_host_groups_pick_the_most_specific_prefix(tmp_path: Path) -> None:
    """A host in a group uses the group's thresholds; others use the default."""
    pkts = _flood(1000, 1000.0, ICMP()) + _flood(1000, 1000.0, ICMP(), dst="192.0.2.200")
    pkts.sort(key=lambda p: float(p.time))
    path = write_pcap(tmp_path / "icmp.pcap", pkts)
    config = _config(
        {
            "window": 1.0,
            "default": {"icmp_pps": 100000},
            "groups": [
                {"name": "web", "prefixes": ["192.0.2.0/24"], "icmp_pps": 100000},
                {"name": "one", "prefixes": ["192.0.2.80/32"], "icmp_pps": 300},
            ],
        }
    )
    found = run_sensor(path, config)
    assert [(d.host, d.evidence.to_dict()["group"]) for d in found] == [(VICTIM, "one")]


def test_fires_again_after_calming_down(tmp_path: Path) -> None:
    """Two floods separated by a quiet period give two detections (re-armed)."""
    first = _flood(1000, 1000.0, UDP(sport=1, dport=2))
    second = _flood(1000, 1000.0, UDP(sport=1, dport=2))
    for p in second:
        p.time += 30
    path = write_pcap(tmp_path / "two.pcap", first + second)
    found = run_sensor(path, _config({"window": 2.0, "default": {"udp_pps": 200}}))
    assert len(found) == 2


def test_a_flood_that_goes_on_is_reported_again(tmp_path: Path) -> None:
    """A flood lasting 25 s with repeat_after 10 s: the first detection, then a repeat
    about every 10 s (marked as such), so a trigger can refresh its intent."""
    pkts = _flood(25 * 150, 150.0, UDP(sport=1, dport=2))
    path = write_pcap(tmp_path / "long.pcap", pkts)
    config = _config({"window": 2.0, "repeat_after": 10.0, "default": {"udp_pps": 100}})
    found = run_sensor(path, config)
    repeats = [d.evidence.to_dict()["repeat"] for d in found]
    assert repeats == [False, True, True]
    gaps = [b.ts - a.ts for a, b in itertools.pairwise(found)]
    assert all(10 <= gap < 12 for gap in gaps)


def test_repeat_after_zero_reports_a_flood_once(tmp_path: Path) -> None:
    """With repeat_after = 0 a flood is reported once, however long it goes on."""
    pkts = _flood(25 * 150, 150.0, UDP(sport=1, dport=2))
    path = write_pcap(tmp_path / "long.pcap", pkts)
    config = _config({"window": 2.0, "repeat_after": 0, "default": {"udp_pps": 100}})
    assert len(run_sensor(path, config)) == 1


def test_a_new_flood_after_a_repeat_is_not_a_repeat(tmp_path: Path) -> None:
    """A flood that starts after the previous one ended (its rate fell under the
    threshold) is new: its first detection is not a repeat."""
    first = _flood(15 * 150, 150.0, UDP(sport=1, dport=2))
    second = _flood(300, 150.0, UDP(sport=1, dport=2))
    for p in second:
        p.time += 60
    path = write_pcap(tmp_path / "two.pcap", first + second)
    config = _config({"window": 2.0, "repeat_after": 10.0, "default": {"udp_pps": 100}})
    repeats = [d.evidence.to_dict()["repeat"] for d in run_sensor(path, config)]
    assert repeats == [False, True, False]


@pytest.mark.parametrize(
    ("table", "key"),
    [
        ({"windw": 1}, "detect.volumetric.windw"),
        ({"repeat_after": -1}, "detect.volumetric.repeat_after"),
        ({"default": {"ppps": 1}}, "detect.volumetric.default.ppps"),
        (
            {"groups": [{"name": "x", "prefixes": ["10.0.0.0/8"], "sin_pps": 1}]},
            "detect.volumetric.groups[0].sin_pps",
        ),
        ({"groups": [{"name": "x", "prefixes": ["nope"]}]}, "detect.volumetric.groups[0].prefixes"),
    ],
)
def test_config_errors_name_the_key(table: dict[str, Any], key: str) -> None:
    """Unknown keys and bad values name the offending key."""
    with pytest.raises(ConfigError) as err:
        read_config(Table(table, "detect.volumetric"))
    assert err.value.key == key
