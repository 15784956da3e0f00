"""Live capture on a veth pair in a network namespace (root only)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from trafex.detect import Detection, LiveCaptureError, Sensor, SensorConfig
from trafex.detect.capture.live import LiveInterface

from .dnsscenarios import response, udp
from .helpers import write_pcap
from .tcpscenarios import scenario_rto
from .vethpair import VethPair

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        os.geteuid() != 0 or shutil.which("ip") is None,
        reason="needs root and iproute2 for a network namespace",
    ),
]


def _traffic(tmp_path: Path) -> Path:
    answer = response("badhacks.com", [("badhacks.com", "AAAA", "3001:10:66::5")], "AAAA")
    pkts = [*scenario_rto(), udp(answer)]
    return write_pcap(tmp_path / "live.pcap", pkts)


def _capture(veth: VethPair, pcap: Path, bpf: str | None) -> tuple[list[Detection], int | None]:
    config = SensorConfig().with_detector("retransmit", threshold=3)
    config = config.with_detector("dns", names=["badhacks.com"])
    source = LiveInterface(veth.outer, bpf=bpf, idle_stop_s=1.5)
    source.open()  # bound before the first frame is sent
    sender = veth.send_pcap(pcap)
    found: list[Detection] = []
    stats = Sensor(config).run(source, found.append)
    _out, err = sender.communicate(timeout=30)
    assert sender.returncode == 0, err
    assert stats.packets >= 1
    return found, stats.drops


def test_live_interface_detects_like_the_file(tmp_path: Path) -> None:
    """Frames sent over a veth give the same detections as the capture file, no drops."""
    pcap = _traffic(tmp_path)
    with VethPair() as veth:
        found, drops = _capture(veth, pcap, None)
    assert sorted(d.detector for d in found) == ["dns", "retransmit"]
    assert drops == 0


def test_bpf_filter_runs_in_the_kernel(tmp_path: Path) -> None:
    """With --bpf 'udp port 53' only the DNS answer reaches the sensor."""
    pcap = _traffic(tmp_path)
    with VethPair() as veth:
        found, _ = _capture(veth, pcap, "udp port 53")
    assert [d.detector for d in found] == ["dns"]


def test_bad_filter_and_interface_are_clear_errors() -> None:
    """A BPF syntax error and a missing interface raise LiveCaptureError."""
    with pytest.raises(LiveCaptureError, match="no such interface"):
        LiveInterface("tfxnosuch0")
    with VethPair() as veth, pytest.raises(LiveCaptureError, match="bad BPF filter"):
        LiveInterface(veth.outer, bpf="tcp and and").open()


def test_namespaces_are_removed() -> None:
    """After close() neither the namespace nor the veth is left behind."""
    veth = VethPair()
    name = veth.netns
    veth.close()
    listed = subprocess.run(
        ["ip", "netns", "list"], check=False, capture_output=True, text=True
    ).stdout
    assert name not in listed
    assert not Path(f"/sys/class/net/{veth.outer}").exists()
