"""Capture files: pcap byte orders and resolutions, pcapng, truncation, non-captures."""

from __future__ import annotations

import contextlib
import struct
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trafex.detect import CaptureFile, NotACaptureError, Sensor, SensorConfig

from .helpers import trafex_retransmissions, write_pcap
from .tcpscenarios import scenario_rto


def _pcap_bytes(order: str = "<", nanos: bool = False) -> bytearray:
    magic = 0xA1B23C4D if nanos else 0xA1B2C3D4
    out = bytearray(struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, 65535, 1))
    for p in scenario_rto():
        t = float(p.time)
        frac = round((t - int(t)) * (1e9 if nanos else 1e6))
        data = bytes(p)
        out += struct.pack(order + "IIII", int(t), frac, len(data), len(data)) + data
    return out


def _pcap(path: Path, order: str, nanos: bool) -> Path:
    path.write_bytes(bytes(_pcap_bytes(order, nanos)))
    return path


@pytest.mark.parametrize("order", ["<", ">"], ids=["little", "big"])
@pytest.mark.parametrize("nanos", [False, True], ids=["usec", "nsec"])
def test_pcap_variants_read_the_same(tmp_path: Path, order: str, nanos: bool) -> None:
    """Little/big endian, micro/nanosecond pcaps all give the same retransmissions."""
    counts = trafex_retransmissions(_pcap(tmp_path / "a.pcap", order, nanos))
    assert sorted(counts.values()) == [3]


def test_pcapng_reads_like_pcap(tmp_path: Path) -> None:
    """A pcapng file (written by Scapy) gives the same result as the pcap."""
    from scapy.utils import wrpcapng

    path = tmp_path / "a.pcapng"
    wrpcapng(str(path), scenario_rto())
    assert sorted(trafex_retransmissions(path).values()) == [3]
    assert sorted(
        trafex_retransmissions(write_pcap(tmp_path / "a.pcap", scenario_rto())).values()
    ) == [3]


def test_truncated_file_counts_one_bad_record(tmp_path: Path) -> None:
    """A file cut inside its last record: the rest is read, the cut record counted bad."""
    path = write_pcap(tmp_path / "a.pcap", scenario_rto())
    data = path.read_bytes()
    path.write_bytes(data[:-10])
    stats = Sensor(SensorConfig()).run(CaptureFile(path), lambda d: None)
    assert stats.packets == len(scenario_rto()) - 1
    assert stats.bad_packets == 1


@pytest.mark.parametrize("content", [b"", b"hello world, not a capture", b"\xd4\xc3"])
def test_not_a_capture_raises_one_clear_error(tmp_path: Path, content: bytes) -> None:
    """A file that is not a capture raises NotACaptureError naming the file."""
    path = tmp_path / "x.bin"
    path.write_bytes(content)
    with pytest.raises(NotACaptureError, match=r"x\.bin"):
        Sensor(SensorConfig()).run(CaptureFile(path), lambda d: None)


def test_missing_file_raises_not_a_capture(tmp_path: Path) -> None:
    """A missing file is reported as NotACaptureError too (one line in the CLI)."""
    with pytest.raises(NotACaptureError):
        next(CaptureFile(tmp_path / "missing.pcap").chunks())


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.binary(max_size=400), st.integers(min_value=0, max_value=2000))
def test_corrupt_files_never_crash(
    tmp_path_factory: pytest.TempPathFactory, junk: bytes, cut: int
) -> None:
    """A real capture cut anywhere, with junk appended, or with a pcapng header over junk,
    is read without any exception but NotACaptureError."""
    base = bytes(_pcap_bytes())
    tmp = tmp_path_factory.mktemp("fuzz")
    for i, data in enumerate(
        [
            base[:cut] + junk,
            base[:24] + junk,
            b"\x0a\x0d\x0d\x0a" + junk,
            b"\xd4\xc3\xb2\xa1" + junk,
        ]
    ):
        path = tmp / f"{i}.pcap"
        path.write_bytes(data)
        with contextlib.suppress(NotACaptureError):
            Sensor(SensorConfig()).run(CaptureFile(path), lambda d: None)


def test_pcapng_time_beyond_2262_is_a_bad_packet(tmp_path: Path) -> None:
    """A pcapng packet whose time does not fit in 64-bit nanoseconds (2**64 - 1
    microseconds) is counted bad and skipped instead of stopping the sensor; the
    packets around it are read with their own times."""
    from scapy.utils import wrpcapng

    good = tmp_path / "good.pcapng"
    wrpcapng(str(good), scenario_rto())
    data = bytearray(good.read_bytes())
    # The first enhanced packet block's timestamp: 2**64 - 1 microseconds.
    off = 0
    while struct.unpack_from("<I", data, off)[0] != 6:
        off += struct.unpack_from("<I", data, off + 4)[0]
    struct.pack_into("<II", data, off + 12, 0xFFFFFFFF, 0xFFFFFFFF)
    bad = tmp_path / "bad.pcapng"
    bad.write_bytes(bytes(data))
    times: list[int] = []
    source = CaptureFile(bad)
    for chunk in source.chunks():
        for frames in chunk.frames:
            times.extend(frames.lists()[3])
    assert source.bad == 1
    assert source.packets == len(scenario_rto()) - 1
    assert all(t < 1 << 63 for t in times)
    stats = Sensor(SensorConfig().with_detector("retransmit")).run(CaptureFile(bad), lambda d: None)
    assert stats.bad_packets == 1
