"""Fuzzing the sensor's fast path: valid frames (Ethernet, VLAN, IPv4, IPv6, TCP, UDP,
DNS, fragments, ICMP; built with Scapy) with bytes flipped, cut short, random wire
lengths and random times, through the whole sensor (decode stage, flow table, and the
retransmit, DNS and volumetric detectors) record by record and in numpy batches; and
random bytes as a pcap or pcapng file.

Never an exception: a broken packet is counted as bad, a file that is not a capture is
one NotACaptureError. Record by record and batched give the same detections and counts.
Derandomized, no example database.
"""

from __future__ import annotations

import dataclasses
import functools
import struct
from collections.abc import Generator, Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from trafex.detect import CaptureFile, Sensor, SensorConfig
from trafex.detect.capture.frames import Chunk, Frames
from trafex.detect.decode import batch as batch_module
from trafex.detect.decode import stage as stage_module
from trafex.detect.detection import Detection
from trafex.detect.errors import NotACaptureError

FUZZ = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
BLOCKED = "bad.test"
T0 = 1_700_000_000 * 10**9


@functools.cache
def base_frames() -> tuple[bytes, ...]:
    """Valid frames of every kind the sensor decodes (built once)."""
    from scapy.layers.dns import DNS, DNSQR, DNSRR
    from scapy.layers.inet import ICMP, IP, TCP, UDP, fragment
    from scapy.layers.inet6 import IPv6
    from scapy.layers.l2 import Dot1Q, Ether

    eth = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    v4 = IP(src="10.0.0.1", dst="10.0.0.2", ttl=64)
    v6 = IPv6(src="3001:1:a::10", dst="3001:4:b::10")
    answer = DNS(
        id=7,
        qr=1,
        qd=DNSQR(qname=BLOCKED),
        an=DNSRR(rrname=BLOCKED, type="A", rdata="192.0.2.66"),
    )
    packets = [
        eth / v4 / TCP(sport=40000, dport=80, flags="S", seq=1000),
        eth / v4 / TCP(sport=80, dport=40000, flags="SA", seq=5000, ack=1001),
        eth / v4 / TCP(sport=40000, dport=80, flags="PA", seq=1001, ack=5001) / (b"x" * 40),
        eth / v6 / TCP(sport=40001, dport=443, flags="PA", seq=2**32 - 10) / (b"y" * 30),
        eth / v4 / UDP(sport=53, dport=33000) / answer,
        eth / v6 / UDP(sport=53, dport=33001) / answer,
        eth
        / v4
        / TCP(sport=53, dport=40002, flags="PA", seq=9, ack=1)
        / (struct.pack("!H", len(bytes(answer))) + bytes(answer)),
        eth / Dot1Q(vlan=100) / v4 / TCP(sport=40000, dport=80, flags="A", seq=1041, ack=5001),
        eth / v4 / ICMP(type=8) / (b"p" * 20),
        *(
            eth / f
            for f in fragment(  # type: ignore[no-untyped-call]
                v4 / UDP(sport=1, dport=53) / (b"z" * 64), fragsize=32
            )
        ),
        eth / v6 / UDP(sport=5000, dport=6000) / (b"u" * 10),
    ]
    return tuple(bytes(p) for p in packets)


@dataclasses.dataclass(frozen=True)
class Record:
    frame: bytes
    wirelen: int
    ts: int


@st.composite
def records(draw: st.DrawFn) -> Record:
    """A base frame, maybe mutated: bytes overwritten, cut, extended; any wire length
    (also below the captured length) and any time (also going backwards)."""
    frame = bytearray(draw(st.sampled_from(base_frames())))
    kind = draw(st.integers(0, 4))
    if kind >= 1:  # overwrite bytes, mostly in the headers
        for _ in range(draw(st.integers(1, 4))):
            at = draw(st.integers(0, min(len(frame) - 1, 80)))
            junk = draw(st.binary(min_size=1, max_size=4))
            frame[at : at + len(junk)] = junk
    if kind >= 3:  # cut short
        frame = frame[: draw(st.integers(0, len(frame)))]
    if kind == 4:
        frame += draw(st.binary(max_size=16))
    wirelen = draw(
        st.one_of(st.just(len(frame)), st.integers(0, len(frame) + 100), st.just(2**31 - 1))
    )
    ts = T0 + draw(st.one_of(st.integers(0, 60 * 10**9), st.integers(-(10**12), 10**12)))
    return Record(bytes(frame), wirelen, max(ts, 0))


class ListSource:
    """A source of Ethernet frames in chunks of ``chunk`` records, from memory."""

    def __init__(self, recs: Sequence[Record], chunk: int) -> None:
        self.recs = recs
        self.chunk = chunk
        self.packets = 0
        self.bad = 0

    def drops(self) -> int | None:
        return None

    def chunks(self) -> Generator[Chunk, None, None]:
        for start in range(0, len(self.recs), self.chunk):
            part = self.recs[start : start + self.chunk]
            buf = b"".join(r.frame for r in part)
            offsets, at = [], 0
            for r in part:
                offsets.append(at)
                at += len(r.frame)
            lists = (
                offsets,
                [len(r.frame) for r in part],
                [r.wirelen for r in part],
                [r.ts for r in part],
            )
            self.packets += len(part)
            yield Chunk([Frames(buf, 1, lists=lists)], max(r.ts for r in part))


def config() -> SensorConfig:
    """Every detector, with thresholds low enough to fire on a few packets."""
    return (
        SensorConfig()
        .with_detector("retransmit", threshold=1)
        .with_detector("dns", names=[BLOCKED])
        .with_detector(
            "volumetric",
            window=1.0,
            bucket=0.5,
            repeat_after=0.0,
            default={"pps": 2, "bps": 100, "syn_pps": 1, "udp_pps": 1, "icmp_pps": 1},
        )
    )


def run(recs: Sequence[Record], batch_min: int | None, chunk: int) -> tuple[Any, ...]:
    """The sensor over ``recs``: (detections as dicts, stats without the time)."""
    saved = stage_module.BATCH_MIN, batch_module.MIN_ROUND
    stage_module.BATCH_MIN, batch_module.MIN_ROUND = batch_min, 1
    try:
        sensor = Sensor(config())
        found: list[Detection] = []
        stats = sensor.run(ListSource(recs, chunk), found.append)
    finally:
        stage_module.BATCH_MIN, batch_module.MIN_ROUND = saved
    return [d.to_dict() for d in found], dataclasses.replace(stats, seconds=0.0)


@settings(FUZZ, max_examples=400)
@given(st.lists(records(), min_size=1, max_size=40), st.integers(1, 40))
def test_mutated_frames_never_raise_and_batches_agree(recs: list[Record], chunk: int) -> None:
    """Any mix of valid and broken frames: no exception, every frame read, and the
    batched decode gives the same detections and counts as record by record."""
    one = run(recs, None, chunk)
    batched = run(recs, 1, chunk)
    assert one[1].packets == len(recs)
    assert batched == one


def test_the_base_frames_are_decoded_and_detected() -> None:
    """The unmutated frames are not bad, and each detector fires on them (so the
    fuzzing above starts from frames that reach every detector)."""
    recs = [Record(f, len(f), T0 + i * 10**6) for i, f in enumerate(base_frames() * 3)]
    found, stats = run(recs, None, 64)
    assert stats.bad_packets == 0
    assert {d["detector"] for d in found} >= {"retransmit", "dns", "volumetric"}


@settings(FUZZ, max_examples=100)
@given(st.sampled_from(base_frames()), st.data())
def test_frames_cut_inside_the_ip_header_count_as_bad(frame: bytes, data: st.DataObject) -> None:
    """An IPv4 or IPv6 frame cut inside its IP header is one bad packet, nothing else."""
    ethertype = frame[12:14]
    header = {b"\x08\x00": 20, b"\x86\xdd": 40}.get(ethertype)
    if header is None:  # VLAN-tagged: the IP header starts 4 bytes later
        return
    cut = data.draw(st.integers(15, 14 + header - 1))
    for batch_min in (None, 1):
        found, stats = run([Record(frame[:cut], len(frame), T0)], batch_min, 1)
        assert not found
        assert stats.bad_packets == 1
        assert stats.flows == 0


# -- random bytes as a capture file ---------------------------------------------------------

_PCAP_HEADS = [
    struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, snap, link)
    for order in "<>"
    for magic in (0xA1B2C3D4, 0xA1B23C4D)
    for snap, link in ((65535, 1), (0, 1), (2**32 - 1, 113), (65535, 2**32 - 1))
]
_PCAPNG_SHB = struct.pack("<IIIHHq", 0x0A0D0D0A, 28, 0x1A2B3C4D, 1, 0, -1) + struct.pack("<I", 28)


@st.composite
def capture_bytes(draw: st.DrawFn) -> bytes:
    """Random bytes, or a valid pcap/pcapng header over random (or record-like) bytes."""
    body = draw(st.binary(max_size=300))
    kind = draw(st.integers(0, 3))
    if kind == 0:
        return body
    if kind == 1:
        return draw(st.sampled_from(_PCAP_HEADS)) + body
    if kind == 2:  # pcap records with random lengths around the frames
        head = draw(st.sampled_from(_PCAP_HEADS[:4]))
        out = bytearray(head)
        for frame in draw(st.lists(st.sampled_from(base_frames()), max_size=4)):
            caplen = draw(st.one_of(st.just(len(frame)), st.integers(0, 2**32 - 1)))
            wirelen = draw(st.integers(0, 2**32 - 1))
            out += struct.pack("<IIII", draw(st.integers(0, 2**32 - 1)), 0, caplen, wirelen)
            out += frame
        return bytes(out) + body
    return _PCAPNG_SHB + body


@settings(FUZZ, max_examples=300)
@given(capture_bytes())
@example(b"")
@example(b"\x0a\x0d\x0d\x0a")
@example(_PCAPNG_SHB[:-4])
def test_random_bytes_as_a_capture_read_or_one_clear_error(
    tmp_path_factory: pytest.TempPathFactory, data: bytes
) -> None:
    """Any bytes as a capture file: read (bad records counted), or a NotACaptureError
    whose message is one line naming the file."""
    path: Path = tmp_path_factory.mktemp("capture") / "fuzz.pcap"
    path.write_bytes(data)
    try:
        stats = Sensor(config()).run(CaptureFile(path), lambda d: None)
    except NotACaptureError as error:
        assert str(path) in str(error) and "\n" not in str(error)
    else:
        assert stats.bad_packets >= 0
