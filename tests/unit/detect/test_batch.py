"""The numpy batches decode a run of frames exactly as the decoder does frame by frame.

The reference is ``Decoder.ether()`` called for every record, as the decode
stage does without batches. On random mixes of TCP conversations (IPv4 and IPv6,
handshakes, retransmissions, keep-alives, FINs, sequence numbers near 2**32),
DNS over UDP and TCP, frames that the batch cannot prove harmless (VLAN-tagged
copies of a conversation's segments, fragments, tunnels) and mutated frames,
both leave the same flow table (byte for byte), the same counters and the same
detector calls in the same order.
"""

from __future__ import annotations

import dataclasses
import struct
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trafex.detect import CaptureFile, Sensor, SensorConfig
from trafex.detect.capture import file as pcapfile_module
from trafex.detect.capture.pcap import PcapReader
from trafex.detect.decode import batch as batch_module
from trafex.detect.decode import stage as decode_module
from trafex.detect.decode.batch import FrameBatcher
from trafex.detect.decode.stage import DecodeStage
from trafex.detect.detection import Detection
from trafex.detect.detectors.base import DetectorBase, Interests
from trafex.detect.flows.table import FlowTableConfig, TcpFlowTable
from trafex.detect.packet import PacketView

from .helpers import SHARED_CAPTURE_NAMES, SHARED_CAPTURES
from .tcptraces import events, trace_segments

_MAC = b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01"


class Recorder(DetectorBase):
    """Records every call the decoder makes, with the packet's fields."""

    name = "recorder"

    def __init__(self, per_packet: bool) -> None:
        self.interests = Interests(
            packets=per_packet,
            retransmissions=True,
            udp_ports=frozenset({53}),
            tcp_ports=frozenset({53}),
        )
        self.calls: list[tuple[Any, ...]] = []

    @staticmethod
    def _fields(pkt: PacketView) -> tuple[Any, ...]:
        return (pkt.ts, pkt.version, pkt.src, pkt.dst, pkt.proto, pkt.sport, pkt.dport)

    def on_retransmission(self, pkt: PacketView, count: int) -> Sequence[Detection]:
        self.calls.append(("retrans", count, pkt.seq, pkt.ack, pkt.tcp_flags, *self._fields(pkt)))
        return ()

    def on_packet(self, pkt: PacketView) -> Sequence[Detection]:
        self.calls.append(("packet", pkt.length, pkt.ttl, pkt.fragment, *self._fields(pkt)))
        return ()

    def on_payload(self, pkt: PacketView, payload: bytes) -> Sequence[Detection]:
        self.calls.append(("payload", payload, *self._fields(pkt)))
        return ()


def _ip(v6: bool, c: int, client: bool, proto: int, body: bytes) -> bytes:
    """An IP packet of conversation ``c`` (client to server when ``client``)."""
    if v6:
        a = bytes.fromhex("20010db8") + bytes(9) + c.to_bytes(2, "big") + b"\x01"
        b = bytes.fromhex("20010db8") + bytes(9) + c.to_bytes(2, "big") + b"\x02"
        src, dst = (a, b) if client else (b, a)
        head = struct.pack("!IHBB", 0x60000000, len(body), proto, 64)
        return b"\x86\xdd" + head + src + dst + body
    a, b = bytes([10, c >> 8, c & 0xFF, 1]), bytes([10, c >> 8, c & 0xFF, 2])
    src, dst = (a, b) if client else (b, a)
    head = struct.pack("!BBHHHBBH", 0x45, 0, 20 + len(body), 1, 0, 64, proto, 0)
    return b"\x08\x00" + head + src + dst + body


def _tcp(
    v6: bool, c: int, client: bool, port: int, seq: int, ack: int, flags: int, win: int, size: int
) -> bytes:
    ports = (40000 + c, port) if client else (port, 40000 + c)
    body = struct.pack(
        "!HHIIBBHHH", *ports, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, 0x50, flags, win, 0, 0
    )
    return _MAC + _ip(v6, c, client, 6, body + bytes(size))


def _udp(v6: bool, c: int, sport: int, dport: int, payload: bytes) -> bytes:
    body = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    return _MAC + _ip(v6, c, False, 17, body)


def _vlan(frame: bytes, tpid: bytes = b"\x81\x00") -> bytes:
    return frame[:12] + tpid + b"\x00\x64" + frame[12:]


def _three_tags(frame: bytes) -> bytes:
    """Three VLAN tags: more than the batches read past."""
    return _vlan(_vlan(_vlan(frame), b"\x88\xa8"), b"\x91\x00")


def _vxlan(frame: bytes) -> bytes:
    """The frame in VXLAN (UDP to port 4789): the decoder opens it."""
    return _udp(False, 200, 50000, 4789, b"\x08" + bytes(7) + frame)


def _ip_options(frame: bytes) -> bytes:
    """An IPv4 frame with 4 bytes of options (NOPs) added; others unchanged."""
    if frame[12:14] != b"\x08\x00":
        return frame
    tot = struct.unpack_from("!H", frame, 16)[0]
    head = bytearray(frame[14:34])
    head[0] = 0x46
    head[2:4] = struct.pack("!H", tot + 4)
    return frame[:14] + bytes(head) + b"\x01" * 4 + frame[34:]


_DNS = bytes.fromhex("abcd81800001000100000000") + b"\x03bad\x00\x00\x01\x00\x01"
_DNS += b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04\x0a\x00\x00\x05"

# Extra frames: (kind, conversation, pick, time offset in µs).
extras = st.lists(
    st.tuples(st.integers(0, 8), st.integers(0, 5), st.integers(0, 1000), st.integers(0, 50_000)),
    max_size=12,
)
conversations = st.lists(
    st.tuples(
        events,
        st.booleans(),  # handshake
        st.booleans(),  # IPv6
        st.sampled_from([(1_000_000, 7_000_000), (0xFFFFFF00, 0xFFFFFFF0), (5, 0x7FFFFFF0)]),
        st.sampled_from([443, 53]),  # 53: DNS over TCP, a watched port
        st.integers(0, 20_000),  # start, µs
        st.sampled_from([0, 0, 1, 2]),  # VLAN tags (2: QinQ)
    ),
    min_size=1,
    max_size=6,
)


def _trace(convs: list[Any], more: list[Any]) -> list[tuple[int, bytes]]:
    """(time in µs, frame) of the conversations and extra frames, in time order."""
    frames: list[tuple[int, int, bytes]] = []  # (time, order, frame): stable by order
    tcp: list[tuple[int, bytes]] = []
    for c, (evs, handshake, v6, isn, port, start, *tags) in enumerate(convs):
        for client, seq, ack, flags, win, size, t in trace_segments(evs, handshake, isn):
            frame = _tcp(v6, c, client, port, seq, ack, flags, win, size)
            for tpid in (b"\x81\x00", b"\x88\xa8")[: tags[0] if tags else 0]:
                frame = _vlan(frame, tpid)
            tcp.append((t + start, frame))
    for t, frame in tcp:
        frames.append((t, len(frames), frame))
    base = min(t for t, _ in tcp)
    for kind, c, pick, dt in more:
        frames.append((base + dt, len(frames), _extra(kind, c, tcp[pick % len(tcp)][1], pick)))
    frames.sort()
    return [(t, frame) for t, _, frame in frames]


def _extra(kind: int, c: int, segment: bytes, pick: int) -> bytes:
    """An extra frame of ``kind`` (conversation ``c``; ``segment``: some TCP segment)."""
    v6 = bool(c & 1)
    if kind == 0:  # a DNS answer
        return _udp(v6, c, 53, 33000 + c, _DNS)
    if kind == 1:  # UDP to a tunnel port (VXLAN)
        return _udp(v6, c, 53, 4789, b"\x08" + bytes(7) + _MAC + b"\x08\x00" + bytes(20))
    if kind == 2:  # a VLAN-tagged copy of some segment: reaches the flow table
        return _vlan(segment)
    if kind == 3:  # an IPv4 fragment
        head = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 28, 9, 0x2000, 64, 6, 0, bytes(4), bytes(4))
        return _MAC + b"\x08\x00" + head + bytes(8)
    if kind == 4:  # ARP
        return _MAC + b"\x08\x06" + bytes(28)
    if kind == 5:  # a segment cut short
        return segment[: 14 + pick % 60]
    if kind == 6:  # a segment with junk in its headers
        junk = bytearray(segment)
        junk[14 + pick % 40] ^= 0xFF
        return bytes(junk)
    if kind == 7:  # ICMP
        return _MAC + _ip(v6, c, True, 58 if v6 else 1, bytes(8))
    return _ip_options(segment)  # a copy of some segment with IPv4 options: reaches the flow table


def _records(trace: list[tuple[int, bytes]], order: str = "<") -> bytes:
    out = bytearray()
    for t, frame in trace:
        sec, usec = divmod(t, 1_000_000)
        out += struct.pack(order + "IIII", sec, usec, len(frame), len(frame) + 4) + frame
    return bytes(out)


class _Side:
    """One decode stage with its flow table and recorder."""

    def __init__(self, per_packet: bool, max_flows: int) -> None:
        self.recorder = Recorder(per_packet)
        self.flows = TcpFlowTable(FlowTableConfig(max_flows=max_flows))
        self.stage = DecodeStage([self.recorder], self.flows, lambda d: None)
        self.decoder = self.stage.decoder

    def assert_same(self, other: _Side) -> None:
        for name in ("bad", "non_ip", "fragments", "unsupported", "detections"):
            assert getattr(self.decoder, name) == getattr(other.decoder, name), name
        assert self.flows.index == other.flows.index
        assert self.flows.slab == other.flows.slab
        assert self.flows.stats() == other.flows.stats()
        assert self.recorder.calls == other.recorder.calls


def _assert_same(
    buf: bytes,
    per_packet: bool,
    max_flows: int = 1_000_000,
    order: str = "<",
    chunk: int = 7,
    max_batch: int = 4096,
) -> FrameBatcher:
    """Decode every record of ``buf`` in batches, in runs of ``chunk`` records (however
    small, splitting at every unsafe record), and record by record with ether(); after
    every run, both are in the same state."""
    batch, ref = _Side(per_packet, max_flows), _Side(per_packet, max_flows)
    walker = batch.stage.batcher
    assert isinstance(walker, FrameBatcher)
    walker.min_records = 1
    reader = PcapReader("t.pcap", order, False, 1)
    walker.unsafe_share = 0  # however many unsafe records: split, never fall back
    walker.min_round = 1  # the prefix step however few segments are left
    walker.max_batch = max_batch
    header = struct.Struct(order + "IIII").unpack_from
    ends = []  # where each record ends
    pos = 0
    while pos + 16 <= len(buf):
        pos += 16 + header(buf, pos)[2]
        ends.append(pos)

    def handle(side: _Side, start: int, stop: int) -> int:
        """Records from ``start`` to ``stop``, one by one with ether() (the reference)."""
        ether = side.decoder.handler(1)
        while start < stop:
            sec, usec, caplen, wirelen = header(buf, start)
            ether(buf, start + 16, caplen, wirelen, sec * 1_000_000_000 + usec * 1000)
            start += 16 + caplen
        return start

    off = ref_off = 0
    for end in [*ends[chunk - 1 :: chunk], len(buf)]:
        frames, off = reader.records(buf, off, end)
        batch.stage.decode(frames)
        ref_off = handle(ref, ref_off, off)
        batch.assert_same(ref)
    handle(batch, off, len(buf))  # what the reader leaves (a record cut short)
    handle(ref, ref_off, len(buf))
    batch.assert_same(ref)
    return walker


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    conversations,
    extras,
    st.booleans(),
    st.sampled_from([1, 2, 3, 5, 8, 13, 1000]),
    st.sampled_from([2, 3, 4096]),
)
def test_batch_equals_record_by_record(
    convs: list[Any], more: list[Any], per_packet: bool, chunk: int, max_batch: int
) -> None:
    """Random conversations and extra frames (DNS, tunnels, VLAN copies, fragments,
    ARP, cut and mutated segments, ICMP, IP options), in runs and batches of any size,
    with and without a per-packet detector: the same as record by record."""
    _assert_same(_records(_trace(convs, more)), per_packet, chunk=chunk, max_batch=max_batch)


@settings(max_examples=50, deadline=None, suppress_health_check=list(HealthCheck))
@given(conversations, st.booleans())
def test_batch_equals_record_by_record_big_endian(convs: list[Any], per_packet: bool) -> None:
    """A big-endian pcap's records in batches: the same as record by record."""
    _assert_same(_records(_trace(convs, []), ">"), per_packet, order=">")


def _long_trace(conversations: int = 40) -> list[tuple[int, bytes]]:
    """Many conversations with retransmissions and out-of-order ACKs, interleaved."""
    evs = [(True, 0, 1000, 0, 8192, 300, 0x18), (False, 2, 0, 0, 8192, 300, 0x10)] * 6
    evs += [(True, 1, 0, 0, 8192, 300_000, 0x18), (True, 0, 1000, 0, 8192, 100, 0x18)] * 3
    evs += [(False, 0, 100, 0, 8192, 100, 0x18), (True, 4, 0, 0, 8192, 100, 0x11)]
    convs = [
        (evs, c % 3 != 0, c % 2 == 1, (1000 * c, 9000 * c), 443, 997 * c)
        for c in range(conversations)
    ]
    return _trace(convs, [(0, c, 0, 7000 * c) for c in range(6)])


# Duplicate ACKs (counted, not counted after the peer's keep-alive), a fast
# retransmission, a zero window and its probe: state that a chunk boundary can cut.
_DUPS = [
    (True, 0, 1000, 0, 8192, 100, 0x18),
    (False, 2, 0, 0, 8192, 100, 0x10),
    (False, 3, 0, 0, 8192, 100, 0x10),  # keep-alive
    *[(True, 2, 0, 0, 8192, 100, 0x10)] * 4,  # same ACK, same window: after a keep-alive
    (False, 0, 10, 0, 8192, 100, 0x18),
    *[(True, 2, 0, 0, 8192, 100, 0x10)] * 5,  # duplicate ACKs
    (False, 1, 10, 0, 8192, 100, 0x18),  # fast retransmission
    (True, 2, 0, 0, 0, 100, 0x10),  # zero window
    (False, 0, 1, 0, 8192, 100, 0x18),  # window probe
    *[(True, 2, 0, 0, 8192, 100, 0x10)] * 3,
    (False, 0, 1000, 0, 8192, 100, 0x18),
    (True, 6, 0, 0, 8192, 100, 0x10),  # an ACK of data the capture did not see
    (True, 0, 100, 0, 8192, 100, 0x18),
    (False, 0, 100, 0, 8192, 100, 0x18),
    (True, 2, 0, 0, 8192, 100, 0x10),
    (False, 4, 0, 0, 8192, 100, 0x14),  # RST
    (True, 2, 0, 0, 8192, 100, 0x10),
]
# One side only (the peer never sends): its ACKs are beyond the peer's nothing.
_ONE_SIDED = [(True, 0, 1000, 0, 8192, 100, 0x18), (True, 0, 10, 0, 8192, 100, 0x10)] * 4


@pytest.mark.parametrize("chunk", range(1, 12))
@pytest.mark.parametrize("handshake", [True, False])
def test_duplicate_acks_keepalives_and_probes_across_chunks(chunk: int, handshake: bool) -> None:
    """Duplicate ACKs, keep-alives, a fast retransmission, a zero window and its probe,
    ACKs of unseen data, a one-sided conversation, cut by runs of every size: the same
    in batches as record by record."""
    convs = [(_DUPS, handshake, v6, (0xFFFFFF00 * v6, 7000), 443, 500 * v6) for v6 in (False, True)]
    convs.append((_ONE_SIDED, handshake, False, (10, 7000), 443, 300))
    _assert_same(_records(_trace(convs, [])), False, chunk=chunk)


@pytest.mark.parametrize("chunk", range(1, 8))
def test_gap_in_sequence_across_chunks(chunk: int) -> None:
    """Data beyond the next expected byte (lost before the capture point): that
    direction's highest sequence to be acked lags its next sequence number, which
    the prefix step leaves to segment()."""
    trace = _long_trace(4)
    tcp = [i for i, (_, f) in enumerate(trace) if f[12:14] == b"\x08\x00" and f[23] == 6]
    for at in tcp[10::9]:
        frame = bytearray(trace[at][1])
        seq = struct.unpack_from("!I", frame, 38)[0]
        struct.pack_into("!I", frame, 38, (seq + 5000) & 0xFFFFFFFF)
        trace[at] = (trace[at][0], bytes(frame))
    _assert_same(_records(trace), False, chunk=chunk)


def test_batch_takes_in_order_segments_and_leaves_the_rest() -> None:
    """On a clean trace every record goes through a batch, most in-order segments in
    the prefix step: not a test that passes because everything fell back."""
    buf = _records(_long_trace())
    walker = _assert_same(buf, False, chunk=100)
    records = len(_long_trace())
    assert walker.batched == records
    assert walker.in_order > records * 0.6


@pytest.mark.parametrize(
    "wrap", [_three_tags, _ip_options, _vxlan], ids=["three-vlan-tags", "ip-options", "vxlan"]
)
@pytest.mark.parametrize("chunk", [1000, 50])
def test_unsafe_record_splits_the_chunk(wrap: Any, chunk: int) -> None:
    """A segment outside the batches that the decoder still takes to the flow table
    (three VLAN tags, IPv4 options, in VXLAN) is decoded on its own, between two
    batches."""
    trace = _long_trace()
    tcp = [i for i, (_, f) in enumerate(trace) if f[12:14] == b"\x08\x00" and f[23] == 6]
    for at in sorted(tcp[5::40], reverse=True):  # a copy right after the segment
        trace.insert(at + 1, (trace[at][0], wrap(trace[at][1])))
    walker = _assert_same(_records(trace), False, chunk=chunk)
    assert walker.batched == len(trace) - len(tcp[5::40])


@pytest.mark.parametrize(
    "tpids",
    [(b"\x81\x00",), (b"\x81\x00", b"\x88\xa8"), (b"\x92\x00", b"\x91\x00")],
    ids=["802.1q", "qinq", "9100-9200"],
)
def test_vlan_tagged_capture_in_batches(tpids: tuple[bytes, ...]) -> None:
    """A capture from a mirror port that keeps 802.1Q tags (or two): every record in
    batches, the in-order segments in the prefix step, as without tags; lengths count
    from the IP header past the tags (an IP length beyond the frame, a frame cut
    inside its TCP header)."""
    trace = _long_trace()
    shift = 4 * len(tpids)
    for i, (t, untagged) in enumerate(trace):
        frame = bytearray(untagged)
        if i % 37 == 5 and frame[12:14] == b"\x08\x00":
            frame[16:18] = (struct.unpack_from("!H", frame, 16)[0] + 100).to_bytes(2, "big")
        for tpid in tpids:
            frame[12:12] = tpid + b"\x00\x64"
        if i % 53 == 7:
            del frame[54 + shift - 1 :]
        trace[i] = (t, bytes(frame))
    walker = _assert_same(_records(trace), False, chunk=100)
    cut = len(range(7, len(trace), 53))  # decoded on their own (TCP outside the batches)
    assert walker.batched == len(trace) - cut
    assert walker.in_order > len(trace) * 0.5


def test_new_conversations_near_max_flows_go_record_by_record() -> None:
    """When new conversations could fill the table (evictions then depend on every
    conversation's last time), the rest of the chunk goes record by record."""
    walker = _assert_same(_records(_long_trace()), False, max_flows=30)
    assert walker.batched < len(_long_trace())


SensorResult = tuple[list[Detection], bytearray, Any]


def _sensor_both(
    path: Path, config: SensorConfig, patch: pytest.MonkeyPatch, batch_min: int = 1
) -> tuple[SensorResult, SensorResult]:
    """The sensor on ``path`` frame by frame, then with batches from ``batch_min``
    frames: (detections, flow table bytes, stats without the time) of each."""
    results = []
    for size in (None, batch_min):
        patch.setattr(decode_module, "BATCH_MIN", size)
        sensor = Sensor(config)
        found: list[Detection] = []
        stats = sensor.run(CaptureFile(path), found.append)
        results.append((found, sensor.flows.slab, dataclasses.replace(stats, seconds=0.0)))
    return results[0], results[1]


def test_sensor_results_do_not_depend_on_batches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through the sensor and a pcap file (chunks cut records): the same detections
    and flows with and without batches (default size)."""
    trace = _long_trace(400)
    path = tmp_path / "t.pcap"
    path.write_bytes(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1) + _records(trace))
    config = (
        SensorConfig().with_detector("retransmit", threshold=1).with_detector("dns", names=["bad"])
    )
    default = decode_module.BATCH_MIN
    assert default is not None and len(trace) > default
    ref, batched = _sensor_both(path, config, monkeypatch, default)
    assert batched == ref and len(ref[0]) > 40


@pytest.mark.parametrize("name", SHARED_CAPTURE_NAMES)
def test_real_captures_same_with_batches(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Third-party captures (shared/captures): the same detections, counters and flow
    table with batches of a few records (every chunk batched, split often) as
    record by record."""
    path = SHARED_CAPTURES / name
    if not path.exists():
        pytest.skip(f"{path} not present")
    config = (
        SensorConfig()
        .with_detector("retransmit", threshold=1)
        .with_detector("dns", names=["example.com", "google.com", "badhacks.com"])
    )
    monkeypatch.setattr(batch_module, "MAX_BATCH", 7)
    monkeypatch.setattr(batch_module, "MIN_ROUND", 1)
    monkeypatch.setattr(batch_module, "UNSAFE_SHARE", 0)  # split, however many
    ref, batched = _sensor_both(path, config, monkeypatch)
    assert batched == ref


def _pcapng(
    trace: list[tuple[int, bytes]], order: str = "<", ns: bool = False, raw_every: int = 0
) -> bytes:
    """A pcapng file of the trace: one Ethernet interface (µs, or ns with if_tsresol);
    with ``raw_every``, every that many IPv4 frames go on a second interface of link
    type RAW (IP, no Ethernet header), which the batches do not take."""

    def block(btype: int, body: bytes) -> bytes:
        body += bytes(-len(body) % 4)
        return (
            struct.pack(order + "II", btype, 12 + len(body))
            + body
            + struct.pack(order + "I", 12 + len(body))
        )

    shb = struct.pack(order + "IHHq", 0x1A2B3C4D, 1, 0, -1)
    tsresol = struct.pack(order + "HH", 9, 1) + b"\x09\x00\x00\x00" if ns else b""
    idb = struct.pack(order + "HHI", 1, 0, 0) + tsresol + struct.pack(order + "HH", 0, 0)
    out = bytearray(block(0x0A0D0D0A, shb) + block(1, idb))
    raw_idb = struct.pack(order + "HHI", 101, 0, 0) + tsresol + struct.pack(order + "HH", 0, 0)
    out += block(1, raw_idb)
    for i, (t_us, frame) in enumerate(trace):
        stamp = t_us * 1000 if ns else t_us
        iface, data = 0, frame
        if raw_every and i % raw_every == 0 and frame[12:14] == b"\x08\x00":
            iface, data = 1, frame[14:]
        head = struct.pack(
            order + "IIIII", iface, stamp >> 32, stamp & 0xFFFFFFFF, len(data), len(data)
        )
        out += block(6, head + data)
    return bytes(out)


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    conversations,
    extras,
    st.sampled_from(["<", ">"]),
    st.booleans(),
    st.sampled_from([0, 3]),
    st.sampled_from([200, 1 << 20]),
)
def test_pcapng_same_with_batches(
    convs: list[Any], more: list[Any], order: str, ns: bool, raw_every: int, chunk_bytes: int
) -> None:
    """A pcapng file through the sensor: the same with its Ethernet frames in batches
    (every chunk, split often) as one by one, in either byte order and time
    resolution, with frames of another interface (not batched) in between and
    blocks cut by the reader's chunks."""
    data = _pcapng(_trace(convs, more), order, ns, raw_every)
    config = (
        SensorConfig().with_detector("retransmit", threshold=1).with_detector("dns", names=["bad"])
    )
    with tempfile.TemporaryDirectory() as tmp, pytest.MonkeyPatch.context() as patch:
        path = Path(tmp) / "t.pcapng"
        path.write_bytes(data)
        patch.setattr(pcapfile_module, "CHUNK", chunk_bytes)
        patch.setattr(batch_module, "MAX_BATCH", 3)
        patch.setattr(batch_module, "MIN_ROUND", 1)
        patch.setattr(batch_module, "UNSAFE_SHARE", 0)
        ref, batched = _sensor_both(path, config, patch)
    assert batched == ref
    assert ref[2].packets == len(_trace(convs, more))


_ETHERTYPES = [b"\x08\x00", b"\x86\xdd", b"\x81\x00", b"\x88\xa8", b"\x88\x47", b"\x00\x40"]


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    st.lists(
        st.tuples(
            st.sampled_from(_ETHERTYPES),
            st.binary(min_size=0, max_size=100),
            st.integers(-20, 20),  # wire length minus captured length
        ),
        min_size=1,
        max_size=30,
    ),
    conversations,
    st.sampled_from([1, 4, 1000]),
)
def test_random_frames_same_in_batches(
    junk: list[tuple[bytes, bytes, int]], convs: list[Any], chunk: int
) -> None:
    """Frames of random bytes after a plausible Ethernet type (and wire lengths below
    or above the captured length), mixed into real conversations: never an
    exception, and the same as frame by frame."""
    trace = _trace(convs, [])
    out = bytearray()
    for i, (t, frame) in enumerate(trace):
        out += struct.pack("<IIII", t // 1_000_000, t % 1_000_000, len(frame), len(frame)) + frame
        if i < len(junk):
            et, body, extra = junk[i]
            bad = _MAC + et + body
            wire = max(0, len(bad) + extra)
            out += struct.pack("<IIII", t // 1_000_000, t % 1_000_000, len(bad), wire) + bad
    _assert_same(bytes(out), False, chunk=chunk)


def test_pcapng_sections_of_both_byte_orders_same_with_batches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two pcapng sections (as ``cat a.pcapng b.pcapng`` makes), little then big
    endian, the second with nanosecond times: the same in batches as one by one."""
    trace = _long_trace(30)
    half = len(trace) // 2
    path = tmp_path / "two.pcapng"
    path.write_bytes(_pcapng(trace[:half], "<") + _pcapng(trace[half:], ">", ns=True, raw_every=5))
    config = SensorConfig().with_detector("retransmit", threshold=1)
    monkeypatch.setattr(batch_module, "MAX_BATCH", 50)
    ref, batched = _sensor_both(path, config, monkeypatch)
    assert batched == ref
    assert ref[2].packets == len(trace) and len(ref[0]) > 10
