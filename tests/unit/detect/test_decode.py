"""The decoder: every supported link type reaches the same detections; junk never crashes."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trafex.detect import SensorConfig
from trafex.detect.capture.frames import Frames
from trafex.detect.capture.pcap import PcapReader
from trafex.detect.decode.links import Decoder
from trafex.detect.decode.stage import DecodeStage
from trafex.detect.detectors.retransmit import RetransmitConfig, RetransmitDetector
from trafex.detect.flows.table import TcpFlowTable

from .helpers import run_sensor, trafex_retransmissions
from .tcpscenarios import scenario_rto


def _write_raw(path: Path, linktype: int, frames: list[tuple[float, bytes]]) -> Path:
    out = bytearray(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, linktype))
    for t, frame in frames:
        sec = int(t)
        out += struct.pack("<IIII", sec, int((t - sec) * 1e6), len(frame), len(frame)) + frame
    path.write_bytes(bytes(out))
    return path


def _frames(v6: bool) -> list[tuple[float, bytes, bytes]]:
    """(time, ethernet header, IP packet) of a conversation with 3 retransmissions."""
    return [(float(p.time), bytes(p)[:14], bytes(p)[14:]) for p in scenario_rto(v6)]


def _ip_et(v6: bool) -> bytes:
    return b"\x86\xdd" if v6 else b"\x08\x00"


WRAPPERS: dict[str, tuple[int, Any]] = {
    "ethernet": (1, lambda eth, ip, v6: eth + ip),
    "vlan": (1, lambda eth, ip, v6: eth[:12] + b"\x81\x00\x00\x64" + _ip_et(v6) + ip),
    "qinq": (
        1,
        lambda eth, ip, v6: eth[:12] + b"\x88\xa8\x00\x0a\x81\x00\x00\x64" + _ip_et(v6) + ip,
    ),
    "sll": (113, lambda eth, ip, v6: b"\x00\x00\x00\x01\x00\x06" + b"\x02" * 8 + _ip_et(v6) + ip),
    "sll2": (
        276,
        lambda eth, ip, v6: (
            _ip_et(v6) + b"\x00\x00" + b"\x00\x00\x00\x02" + b"\x00\x01\x00\x06" + b"\x02" * 8 + ip
        ),
    ),
    "raw": (101, lambda eth, ip, v6: ip),
    "null": (0, lambda eth, ip, v6: struct.pack("<I", 30 if v6 else 2) + ip),
    "loop": (108, lambda eth, ip, v6: struct.pack(">I", 30 if v6 else 2) + ip),
    "pppoe": (
        1,
        lambda eth, ip, v6: (
            eth[:12]
            + b"\x88\x64\x11\x00\x00\x01"
            + struct.pack("!H", len(ip) + 2)
            + (b"\x00\x57" if v6 else b"\x00\x21")
            + ip
        ),
    ),
}


@pytest.mark.parametrize("v6", [False, True], ids=["ipv4", "ipv6"])
@pytest.mark.parametrize("link", sorted(WRAPPERS))
def test_link_types_give_same_retransmissions(tmp_path: Path, link: str, v6: bool) -> None:
    """The same conversation under every link type gives the same per-direction counts."""
    linktype, wrap = WRAPPERS[link]
    frames = [(t, wrap(eth, ip, v6)) for t, eth, ip in _frames(v6)]
    path = _write_raw(tmp_path / f"{link}.pcap", linktype, frames)
    counts = trafex_retransmissions(path)
    assert sorted(counts.values()) == [3]


def test_unknown_link_type_is_counted_not_fatal(tmp_path: Path) -> None:
    """Frames of an unsupported link type are counted as unsupported and skipped."""
    path = _write_raw(tmp_path / "x.pcap", 147, [(1.0, b"\x00" * 60)])
    assert run_sensor(path, SensorConfig()) == []


def _decoder() -> tuple[Decoder, TcpFlowTable]:
    flows = TcpFlowTable()
    det = RetransmitDetector(RetransmitConfig(threshold=1))
    return Decoder([det], flows, lambda d: None), flows


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=200), st.sampled_from([0, 1, 101, 113, 276, 239, 105, 127, 10]))
def test_random_frames_never_raise(frame: bytes, linktype: int) -> None:
    """Any bytes under any link type are decoded or counted as bad, never an exception."""
    decoder, _ = _decoder()
    decoder.handler(linktype)(frame, 0, len(frame), len(frame) + 7, 1)


@settings(max_examples=300, deadline=None)
@given(
    st.integers(min_value=0, max_value=120),
    st.integers(min_value=0, max_value=119),
    st.binary(min_size=1, max_size=3),
)
def test_truncated_and_mutated_tcp_never_raise(cut: int, at: int, junk: bytes) -> None:
    """Real frames cut short or with bytes overwritten are skipped or decoded, never fatal."""
    decoder, _ = _decoder()
    handle = decoder.handler(1)
    for _, eth, ip in _frames(False) + _frames(True):
        frame = bytearray(eth + ip)
        frame[at : at + len(junk)] = junk
        data = bytes(frame[:cut])
        handle(data, 0, len(data), len(eth + ip), 1)


def test_short_frames_count_as_bad() -> None:
    """A frame too short for its headers is counted in bad."""
    decoder, flows = _decoder()
    _, eth, ip = _frames(False)[0]
    decoder.handler(1)(eth + ip[:30], 0, 44, 60, 1)
    assert decoder.bad == 1
    assert len(flows) == 0


def _recording_decoder() -> tuple[Decoder, TcpFlowTable, list[Any]]:
    flows = TcpFlowTable()
    found: list[Any] = []
    det = RetransmitDetector(RetransmitConfig(threshold=1))
    return Decoder([det], flows, found.append), flows, found


@settings(max_examples=300, deadline=None)
@given(
    st.integers(min_value=0, max_value=120),
    st.integers(min_value=0, max_value=119),
    st.binary(min_size=1, max_size=3),
    st.integers(min_value=0, max_value=40),
)
def test_record_loop_and_stage_equal_ether_handler(
    cut: int, at: int, junk: bytes, which: int
) -> None:
    """The pcap record loop and the decode stage (frame by frame) decode exactly as
    ether() called on each record: same counters, same flow table bytes, same
    detections, on real and mutated frames; a record cut by the chunk's end is left
    for the next chunk."""
    frames = _frames(False) + _frames(True)
    records = bytearray()
    for i, (t, eth, ip) in enumerate(frames):
        frame = bytearray(eth + ip)
        if i % 41 == which:
            frame[at : at + len(junk)] = junk
            frame = frame[:cut]
        sec = int(t)
        records += struct.pack("<IIII", sec, int((t - sec) * 1e6), len(frame), len(eth + ip))
        records += frame
    whole = len(records)
    records += b"\x00" * 10  # a record header cut by the chunk's end
    buf = bytes(records)
    header = struct.Struct("<IIII").unpack_from

    staged, staged_flows, staged_found = _recording_stage()
    run, off = PcapReader("t.pcap", "<", False, 1).records(buf, 0, len(buf))
    assert (off, len(run)) == (whole, len(frames))
    staged.decode(run)

    handled, handled_flows, handled_found = _recording_decoder()
    handle = handled.handler(1)
    pos = 0
    while pos < whole:
        sec, frac, caplen, wirelen = header(buf, pos)
        handle(buf, pos + 16, caplen, wirelen, sec * 1_000_000_000 + frac * 1000)
        pos += 16 + caplen
    for name in ("bad", "non_ip", "fragments", "unsupported", "detections"):
        assert getattr(staged.decoder, name) == getattr(handled, name), name
    assert staged_flows.slab == handled_flows.slab
    assert staged_flows.index == handled_flows.index
    assert staged_found == handled_found


def _recording_stage() -> tuple[DecodeStage, TcpFlowTable, list[Any]]:
    """A decode stage that decodes frame by frame (no batches)."""
    flows = TcpFlowTable()
    found: list[Any] = []
    det = RetransmitDetector(RetransmitConfig(threshold=1))
    stage = DecodeStage([det], flows, found.append)
    stage.batcher = None
    return stage, flows, found


def test_batches_only_for_ethernet_with_a_flow_table() -> None:
    """The stage batches runs of Ethernet frames when it keeps a flow table (a
    retransmission detector wants it); other link types go frame by frame."""
    flows = TcpFlowTable()
    stage = DecodeStage([RetransmitDetector(RetransmitConfig())], flows, print)
    assert stage.batcher is not None
    assert DecodeStage([], TcpFlowTable(), print).batcher is None
    stage.batcher.min_records = 1
    _, eth, ip = _frames(False)[0]
    stage.decode(Frames(ip, 101, lists=([0], [len(ip)], [len(ip)], [1])))  # RAW: IP only
    assert (stage.batcher.batched, len(flows)) == (0, 1)
    stage.decode(Frames(eth + ip, 1, lists=([0], [len(eth + ip)], [len(eth + ip)], [2])))
    assert (stage.batcher.batched, len(flows)) == (1, 1)
