"""Shared test helpers: write captures with Scapy, ask tshark, run the sensor."""

from __future__ import annotations

import shutil
import struct
import subprocess
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pytest

from trafex.detect import CaptureFile, Detection, DetectorBase, Interests, Sensor, SensorConfig
from trafex.detect.detectors.base import Detector
from trafex.detect.packet import PacketView, addr_to_str

Direction = tuple[str, int, str, int]

SHARED_CAPTURES = Path(__file__).resolve().parents[3] / ".." / "shared" / "captures"
# The third-party captures in SHARED_CAPTURES (each with its tshark oracle in oracle/),
# named here so that their tests show as skipped, not absent, where they are missing.
SHARED_CAPTURE_NAMES = (
    "packetlife__Open_Network_Connection.pcapng",
    "packetlife__TACACS_encrypted.pcap",
    "packetlife__TCP_SACK.pcap",
    "packetlife__packet-c.pcap",
    "sv__bug-4376-syn_retransmit_with_ts.pcap",
    "sv__decode-sll2-02.pcap",
    "sv__dns-response-2x.pcap",
    "sv__http-range-multiflows.pcap",
    "sv__ipv6-kill_router6.pcap",
    "sv__output-eve-ftp-data.pcap",
    "sv__smb-named-pipe-ascii.pcap",
    "sv__tcp-empty-sack.pcap",
    "tcpdump__LINKTYPE_IPV6_invalid.pcap",
    "tcpdump__bgp-infinite-loop.pcap",
    "tcpdump__dns-badcookie.pcap",
    "tcpdump__edns-opts.pcap",
    "tcpdump__nflog.pcap",
    "tcpdump__tcp_header_heapoverflow.pcap",
    "zeek__dns-corrupt.pcap",
    "zeek__dns-ech.pcap",
    "zeek__dns-edns-ecs.pcap",
    "zeek__dns-inverse-query.pcap",
    "zeek__dns-loc-29-trunc.pcap",
    "zeek__dns-long-connection.pcap",
    "zeek__dns-max-compression-depth.pcap",
    "zeek__dns-mdns.pcap",
    "zeek__dns-two-responses.pcap",
    "zeek__geneve-vxlan-dns-truncated.pcap",
    "zeek__http-m57-long-49583-80.pcap",
    "zeek__ipv6-fragmented-dns.pcap",
    "zeek__ipv6-http-atomic-frag.pcap",
    "zeek__ldap-gap-data-missing.pcapng",
    "zeek__linux_dlt_sll2.pcap",
    "zeek__pppoe-over-qinq.pcap",
    "zeek__radiotap.pcap",
    "zeek__tcp-fin_retransmission.pcap",
    "zeek__tcp-option-sack.pcap",
    "zeek__tcp-retransmit-fast009.pcap",
    "zeek__tcp-retransmit-timeout.pcapng",
    "zeek__tcp-truncated-header.pcap",
    "zeek__tunnels-Teredo.pcap",
    "zeek__wikipedia.pcap",
    "zeek__wlanmon.pcap",
)

needs_tshark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")


def write_pcap(
    path: Path, packets: Sequence[Any], start: float = 1_700_000_000.0, gap: float = 0.01
) -> Path:
    """Write Scapy packets; a packet without an explicit time gets ``start + i * gap``."""
    from scapy.utils import wrpcap

    for i, pkt in enumerate(packets):
        if not getattr(pkt, "_trafex_time_set", False):
            pkt.time = start + i * gap
    wrpcap(str(path), list(packets))
    return path


def first_records_bytes(path: Path, records: int) -> int:
    """Bytes of the first ``records`` records of a little-endian pcap file (past its
    24-byte header): a chunk size that reads exactly those records first."""
    data = path.read_bytes()
    off = 24
    for _ in range(records):
        off += 16 + struct.unpack_from("<I", data, off + 8)[0]
    return off - 24


def tshark_fields(
    path: Path, fields: Iterable[str], display_filter: str | None = None, occurrence: str = "a"
) -> list[list[str]]:
    cmd = [
        "tshark",
        "-n",
        "-r",
        str(path),
        "-T",
        "fields",
        "-E",
        f"occurrence={occurrence}",
        "-E",
        "separator=\t",
    ]
    if display_filter:
        cmd += ["-Y", display_filter]
    for field in fields:
        cmd += ["-e", field]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=60)
    return [line.split("\t") for line in done.stdout.splitlines()]


def tshark_retransmissions(path: Path) -> Counter[Direction]:
    """Per flow direction, the packets tshark flags as (fast/spurious) retransmissions."""
    rows = tshark_fields(
        path,
        [
            "ip.src",
            "ipv6.src",
            "tcp.srcport",
            "ip.dst",
            "ipv6.dst",
            "tcp.dstport",
            "tcp.analysis.retransmission",
            "tcp.analysis.fast_retransmission",
            "tcp.analysis.spurious_retransmission",
        ],
        "tcp and not icmp and not icmpv6",
        occurrence="l",
    )
    out: Counter[Direction] = Counter()
    for r in rows:
        if any(r[6:9]):
            out[(r[0] or r[1], int(r[2]), r[3] or r[4], int(r[5]))] += 1
    return out


def flagged(counts: Counter[Direction], threshold: int) -> set[Direction]:
    return {d for d, n in counts.items() if n >= threshold}


class RetransmitRecorder(DetectorBase):
    """Counts the retransmission events the sensor reports, per direction."""

    name = "recorder"
    interests = Interests(retransmissions=True)

    def __init__(self) -> None:
        self.counts: Counter[Direction] = Counter()

    def on_retransmission(self, pkt: PacketView, count: int) -> Sequence[Detection]:
        key = (addr_to_str(pkt.src), pkt.sport, addr_to_str(pkt.dst), pkt.dport)
        self.counts[key] += 1
        return ()


def run_sensor(
    path: Path, config: SensorConfig | None = None, detectors: Sequence[Detector] | None = None
) -> list[Detection]:
    found: list[Detection] = []
    Sensor(config or SensorConfig(), detectors=detectors).run(CaptureFile(path), found.append)
    return found


def trafex_retransmissions(path: Path) -> Counter[Direction]:
    rec = RetransmitRecorder()
    run_sensor(path, detectors=[rec])
    return rec.counts


def retransmit_detections(path: Path, threshold: int) -> set[Direction]:
    config = SensorConfig().with_detector("retransmit", threshold=threshold)
    out = set()
    for d in run_sensor(path, config):
        assert d.flow is not None
        out.add((str(d.flow.src), d.flow.sport, str(d.flow.dst), d.flow.dport))
    return out
