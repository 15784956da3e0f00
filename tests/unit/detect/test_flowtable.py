"""The flow table: Wireshark's retransmission semantics (tshark is the oracle), bounds."""

from __future__ import annotations

import struct
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trafex.detect import CaptureFile
from trafex.detect.flows.table import FlowTableConfig, TcpFlowTable, reverse_key

from .helpers import (
    flagged,
    needs_tshark,
    retransmit_detections,
    trafex_retransmissions,
    tshark_retransmissions,
    write_pcap,
)
from .tcpscenarios import SCENARIOS
from .tcptraces import Event, events, trace_segments, write_trace

SEC = 1_000_000_000


@needs_tshark
@pytest.mark.parametrize("v6", [False, True], ids=["ipv4", "ipv6"])
@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_scenario_counts_equal_tshark(tmp_path: Path, name: str, v6: bool) -> None:
    """Per flow direction, trafex counts exactly the packets tshark flags as retransmissions."""
    path = write_pcap(tmp_path / f"{name}.pcap", SCENARIOS[name](v6))
    assert tshark_retransmissions(path) == trafex_retransmissions(path)


@needs_tshark
@pytest.mark.parametrize("threshold", [1, 3, 5])
def test_mixed_capture_flags_same_directions_as_tshark(tmp_path: Path, threshold: int) -> None:
    """All scenarios in one capture: the retransmit detector flags tshark's directions."""
    pkts = []
    for i, make in enumerate(SCENARIOS.values()):
        for p in make(i % 2 == 1):
            p.time += i * 100
            pkts.append(p)
    pkts.sort(key=lambda p: float(p.time))
    path = write_pcap(tmp_path / "mixed.pcap", pkts)
    expected = flagged(tshark_retransmissions(path), threshold)
    assert expected == retransmit_detections(path, threshold)


def _key(i: int) -> bytes:
    return (
        bytes([10, 0, i >> 8, i & 0xFF, 10, 1, 0, 1]) + (1024 + i).to_bytes(2, "big") + b"\x01\xbb"
    )


def test_reverse_key_swaps_addresses_and_ports() -> None:
    """The reverse key of src+dst+sport+dport is dst+src+dport+sport (IPv4 and IPv6)."""
    assert reverse_key(bytes(range(12))) == bytes([4, 5, 6, 7, 0, 1, 2, 3, 10, 11, 8, 9])
    k6 = bytes(range(36))
    assert reverse_key(reverse_key(k6)) == k6
    assert reverse_key(k6)[:16] == k6[16:32]


def test_both_directions_share_one_conversation() -> None:
    """A reply uses the conversation opened by the first packet; one flow is tracked."""
    table = TcpFlowTable()
    key = _key(1)
    table.segment(key, 100, 0, 0x02, 1000, 0, 1)
    table.segment(reverse_key(key), 500, 101, 0x12, 1000, 0, 2)
    assert len(table) == 1
    assert table.opened == 1


def test_max_flows_bounds_the_table() -> None:
    """The table never holds more than max_flows conversations; the excess is evicted."""
    table = TcpFlowTable(FlowTableConfig(max_flows=100))
    for i in range(1000):
        table.segment(_key(i), 1, 0, 0x02, 1000, 0, i)
        assert len(table) <= 100
    assert table.evicted_full >= 900


def test_idle_flows_are_evicted() -> None:
    """A flow without packets for idle_timeout is dropped by the sweep; active ones stay."""
    table = TcpFlowTable(FlowTableConfig(idle_timeout=60, sweep_interval=1))
    table.segment(_key(1), 1, 0, 0x02, 1000, 0, 1 * SEC)
    table.segment(_key(2), 1, 0, 0x02, 1000, 0, 1 * SEC)
    table.segment(_key(2), 2, 0, 0x10, 1000, 0, 50 * SEC)
    assert table.sweep(70 * SEC) == 1
    assert len(table) == 1
    assert table.evicted_idle == 1


def test_fin_both_ways_and_rst_end_flows() -> None:
    """After FIN both ways, or an RST, a flow is evicted once closed_timeout has passed."""
    table = TcpFlowTable(FlowTableConfig(idle_timeout=600, closed_timeout=5))
    a, b = _key(1), _key(2)
    table.segment(a, 1, 0, 0x11, 1000, 0, 1 * SEC)
    table.segment(reverse_key(a), 9, 2, 0x11, 1000, 0, 1 * SEC)
    table.segment(b, 1, 0, 0x04, 1000, 0, 1 * SEC)
    table.segment(_key(3), 1, 0, 0x11, 1000, 0, 1 * SEC)  # FIN one way only: stays
    assert table.sweep(7 * SEC) == 2
    assert len(table) == 1
    assert table.evicted_closed == 2


def test_memory_is_flat_over_a_long_run() -> None:
    """Short-lived flows over a long run: the table stays at its steady-state size."""
    table = TcpFlowTable(FlowTableConfig(idle_timeout=2, closed_timeout=1, sweep_interval=1))
    sizes = []
    for t in range(200):
        now = t * SEC
        for i in range(50):
            key = _key((t * 50 + i) % 60000)
            table.segment(key, 1, 0, 0x02, 1000, 0, now)
            table.segment(key, 2, 0, 0x14, 1000, 0, now)
        table.maybe_sweep(now)
        sizes.append(len(table))
    assert max(sizes[50:]) <= 150
    assert len(table.slab) <= 2 * 4096 * 2 * 48  # the slab did not keep growing


def test_new_isn_starts_a_new_conversation() -> None:
    """A SYN with another ISN restarts the analysis; counts stay with the 4-tuple."""
    table = TcpFlowTable()
    key = _key(5)
    table.segment(key, 100, 0, 0x02, 1000, 0, 1 * SEC)
    table.segment(key, 100, 0, 0x02, 1000, 0, 2 * SEC)  # retransmitted SYN
    assert table.retransmissions(key) == 1
    table.segment(key, 101, 0, 0x04, 1000, 0, 3 * SEC)
    table.segment(key, 100, 0, 0x02, 1000, 0, 4 * SEC)  # same ISN after RST: retransmission
    assert table.retransmissions(key) == 2
    table.segment(key, 9000, 0, 0x02, 1000, 0, 5 * SEC)  # another ISN: a new conversation
    assert table.port_reuses == 1
    assert table.retransmissions(key) == 2
    table.segment(key, 9000, 0, 0x02, 1000, 0, 6 * SEC)  # its SYN again
    assert table.retransmissions(key) == 3


@needs_tshark
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(events, st.booleans())
def test_random_conversations_equal_tshark(evs: list[Event], handshake: bool) -> None:
    """Random mixes of new data, resent data, ACKs, keep-alives, FINs and SYNs (with
    random windows and gaps): per-direction counts equal tshark's."""
    with tempfile.TemporaryDirectory() as tmp:
        path = write_trace(Path(tmp) / "r.pcap", evs, handshake)
        assert tshark_retransmissions(path) == trafex_retransmissions(path)


class _GeneralOnly(TcpFlowTable):
    """The flow table without segment()'s fast path: every segment takes the general
    analysis (the reference)."""

    def segment(
        self, key: bytes, seq: int, ack: int, flags: int, win: int, seglen: int, now: int
    ) -> int:
        return self.analysis.general(self.track(key, now), seq, ack, flags, win, seglen, now)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    events,
    st.booleans(),
    st.sampled_from([(1_000_000, 7_000_000), (0xFFFFFF00, 0xFFFFFFF0), (0, 0x7FFFFFF0)]),
)
def test_fast_path_equals_general_path(
    evs: list[Event], handshake: bool, isn: tuple[int, int]
) -> None:
    """segment()'s fast path leaves the table byte for byte as the general analysis
    alone does, and flags the same segments (random traffic, sequence numbers near 0
    and 2**32)."""
    fast, general = TcpFlowTable(), _GeneralOnly()
    a, b = _key(1), reverse_key(_key(1))
    for client, seq, ack, flags, win, size, t_us in trace_segments(evs, handshake, isn):
        args = (seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, flags, win, size, t_us * 1000)
        key = a if client else b
        assert fast.segment(key, *args) == general.segment(key, *args)
        assert fast.slab == general.slab


def test_state_is_a_readable_copy() -> None:
    """state() decodes one direction's record; an unknown key gives None."""
    table = TcpFlowTable()
    key = _key(9)
    table.segment(key, 100, 0, 0x02, 1000, 0, 1 * SEC)
    table.segment(key, 101, 7, 0x11, 2000, 10, 2 * SEC)
    state = table.state(key)
    assert state is not None
    assert (state.nextseq, state.lastack, state.window) == (112, 7, 2000)
    assert state.fin and not state.rst
    assert state.last_seen_ns == 2 * SEC
    assert table.state(_key(10)) is None


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(events, st.booleans())
def test_decoder_fast_paths_equal_general_path(evs: list[Event], handshake: bool) -> None:
    """A pcap file decoded frame by frame, with the decoder's and segment()'s fast
    paths, leaves the table byte for byte as the general analysis alone does, and
    flags the same segments."""
    from trafex.detect.decode.stage import DecodeStage
    from trafex.detect.detectors.retransmit import RetransmitConfig, RetransmitDetector

    with tempfile.TemporaryDirectory() as tmp:
        path = write_trace(Path(tmp) / "r.pcap", evs, handshake)
        tables: list[TcpFlowTable] = []
        found: list[list[object]] = [[], []]
        for table, seen in zip((TcpFlowTable(), _GeneralOnly()), found, strict=True):
            det = RetransmitDetector(RetransmitConfig(threshold=1))
            stage = DecodeStage([det], table, seen.append)
            stage.batcher = None  # frame by frame
            for chunk in CaptureFile(path).chunks():
                for frames in chunk.frames:
                    stage.decode(frames)
            tables.append(table)
    assert tables[0].slab == tables[1].slab
    assert found[0] == found[1]


def test_record_layout_is_published_consistently() -> None:
    """The published record layout: every field at the offset its predecessors' sizes
    give, the named offsets among them, 48 bytes in all."""
    from trafex.detect.flows import layout

    offset = 0
    for f in layout.FIELDS:
        assert f.offset == offset, f.name
        offset += struct.calcsize("<" + f.code)
    assert offset == layout.RECORD_SIZE == layout.RECORD.size == 48
    offsets = {f.name: f.offset for f in layout.FIELDS}
    named = {n[4:].lower(): getattr(layout, n) for n in dir(layout) if n.startswith("OFF_")}
    named.pop("dupack_win_flags")
    assert named == {k: offsets[k] for k in named}
    assert offsets["dupacks"] == layout.OFF_DUPACK_WIN_FLAGS
