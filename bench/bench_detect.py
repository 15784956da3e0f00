"""Sensor benchmark: trafex's fast path against a talk-style per-packet Scapy loop.

Generates (once, cached under ``build/bench/``) a pcap of ``--packets`` packets:
IPv4 and IPv6 TCP over ``--flows`` concurrent connections (handshake, data,
ACKs, 1% retransmitted segments, FIN at the end) and 1% DNS responses (one in
ten for a name of the talk's ``BAD_QUERIES``), written record by record from
byte templates with ``struct``. TCP frames are captured with a 128-byte snaplen (as a sensor on a
mirror port would), DNS frames whole. Then prints:

- trafex packets/s, best of ``--repeat`` runs with every run's time (retransmit + dns
  detectors, and with volumetric too), once more record by record (the decoder
  without its numpy batches, ``trafex.detect.decode.batch``), on the same capture as pcapng
  (``editcap``), and peak RSS of this process,
- the talk's loop on the first ``--scapy-packets`` packets, and the ratio: its
  code as shown in the talk (``scapy.sniff(filter=..., prn=process_packet)``,
  ``FlowKey.from_packet``, a ``FlowStatus`` per flow comparing ``(seq, ack)``
  tuples and raising ``SessionTerminated`` on FIN/RST, ``packet.haslayer(DNS)``
  and ``qname.decode() in BAD_QUERIES``) run with ``sniff(offline=...)``, and
  its detections next to trafex's on the same packets,
- bytes per tracked TCP conversation at ``--memory-flows`` conversations
  (tracemalloc, the flow table alone),
- with ``--live`` (root): frames of the capture sent at ``--live-rate`` packets/s
  over a veth pair from a network namespace, received by ``trafex detect``'s
  live source (AF_PACKET TPACKET_V3): packets seen, receive rate, kernel drops.

Run: ``.venv/bin/python bench/bench_detect.py`` (``--help`` for sizes).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import io
import random
import resource
import shutil
import struct
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any, NamedTuple

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from trafex import logs  # noqa: E402
from trafex.detect import CaptureFile, Detection, Sensor, SensorConfig  # noqa: E402
from trafex.detect.flows.table import FlowTableConfig, TcpFlowTable  # noqa: E402

BLOCKED = "badhacks.com"
# The talk's blocklist: its DNS check is an exact match on the question name.
BAD_QUERIES = {"badhacks.com.", "malicious-mail-order.net."}
SNAPLEN = 128
CAPTURE_VERSION = 2  # bumped when generate() writes other bytes (the cache is by name)


def _csum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


class _Flow:
    __slots__ = ("c_hdr", "c_seq", "s_hdr", "s_seq", "sent", "state", "v6")

    def __init__(self, v6: bool, c_hdr: bytes, s_hdr: bytes, rng: random.Random) -> None:
        self.v6 = v6
        self.c_hdr = c_hdr
        self.s_hdr = s_hdr
        self.c_seq = rng.getrandbits(32)
        self.s_seq = rng.getrandbits(32)
        self.state = 0
        self.sent: list[tuple[int, int]] = []


def _headers(v6: bool, n: int) -> tuple[bytes, bytes]:
    """Ethernet + IP address part templates for client->server and server->client."""
    if v6:
        c = struct.pack("!HHHHHHHH", 0x2001, 0xDB8, 1, 0, 0, 0, n >> 16, n & 0xFFFF)
        s = struct.pack("!HHHHHHHH", 0x2001, 0xDB8, 2, 0, 0, 0, 0, 1 + n % 8)
    else:
        c = bytes([10, (n >> 16) & 0xFF, (n >> 8) & 0xFF, n & 0xFF])
        s = bytes([192, 0, 2, 1 + n % 8])
    return c + s, s + c


def _frame(
    v6: bool, addrs: bytes, ports: bytes, seq: int, ack: int, flags: int, payload: int, ident: int
) -> tuple[bytes, int]:
    """One TCP frame (headers only) and its length on the wire."""
    tcp = ports + struct.pack("!IIBBHHH", seq, ack, 0x50, flags, 8192, 0, 0)
    if v6:
        ip = struct.pack("!IHBB", 0x60000000, 20 + payload, 6, 64) + addrs
        eth = b"\x02\0\0\0\0\x01\x02\0\0\0\0\x02\x86\xdd"
    else:
        ip = struct.pack("!BBHHHBBH", 0x45, 0, 40 + payload, ident & 0xFFFF, 0x4000, 64, 6, 0)
        ip += addrs
        eth = b"\x02\0\0\0\0\x01\x02\0\0\0\0\x02\x08\x00"
    frame = eth + ip + tcp
    return frame, len(frame) + payload


def _dns_frame(rng: random.Random, n: int, blocked: bool) -> bytes:
    bad = sorted(BAD_QUERIES)[(n // 10) % len(BAD_QUERIES)].rstrip(".")
    name = bad if blocked else f"host{n}.example.org"
    qname = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    v6 = n % 2 == 0
    qtype = 28 if v6 else 1
    answer = b"\xc0\x0c" + struct.pack("!HHIH", qtype, 1, 300, 16 if v6 else 4)
    answer += rng.randbytes(16 if v6 else 4)
    dns = struct.pack("!HHHHHH", n & 0xFFFF, 0x8180, 1, 1, 0, 0) + qname
    dns += struct.pack("!HH", qtype, 1) + answer
    udp = struct.pack("!HHHH", 53, 1024 + n % 60000, 8 + len(dns), 0) + dns
    ip = struct.pack("!BBHHHBBH", 0x45, 0, 20 + len(udp), n & 0xFFFF, 0, 64, 17, 0)
    ip += bytes([198, 51, 100, 53]) + bytes([10, 0, (n >> 8) & 0xFF, n & 0xFF])
    ip = ip[:10] + struct.pack("!H", _csum(ip)) + ip[12:]
    return b"\x02\0\0\0\0\x01\x02\0\0\0\0\x02\x08\x00" + ip + udp


def generate(path: Path, packets: int, flows: int, seed: int = 7) -> None:
    """Write the benchmark capture (see the module docstring)."""
    rng = random.Random(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    rec = struct.Struct("<IIII")
    active: list[_Flow] = []
    made = 0
    ts_us = 1_700_000_000 * 1_000_000
    out = bytearray(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
    written = 0
    dns_n = 0
    with open(tmp, "wb") as f:
        while written < packets:
            ts_us += 10
            sec, usec = divmod(ts_us, 1_000_000)
            r = rng.random()
            if r < 0.01:
                dns_n += 1
                frame = _dns_frame(rng, dns_n, blocked=dns_n % 10 == 0)
                out += rec.pack(sec, usec, len(frame), len(frame)) + frame
                written += 1
                continue
            while len(active) < flows:
                active.append(_new_flow(made, rng))
                made += 1
            i = rng.randrange(len(active))
            frame, wire = _next_frame(active[i], rng, written)
            if active[i].state > 61:  # closed: its place goes to the last flow
                active[i] = active[-1]
                active.pop()
            cap = min(len(frame), SNAPLEN)
            out += rec.pack(sec, usec, cap, wire) + frame[:cap]
            written += 1
            if len(out) > 1 << 22:
                f.write(out)
                out.clear()
        f.write(out)
    tmp.replace(path)


def _new_flow(made: int, rng: random.Random) -> _Flow:
    """The ``made``-th connection (every other one IPv6), from port 1024 + made to 443."""
    v6 = made % 2 == 1
    c_addr, s_addr = _headers(v6, made)
    c_port = 1024 + made % 64000
    return _Flow(
        v6, c_addr + struct.pack("!HH", c_port, 443), s_addr + struct.pack("!HH", 443, c_port), rng
    )


def _next_frame(fl: _Flow, rng: random.Random, written: int) -> tuple[bytes, int]:
    """The connection's next frame and its length on the wire: handshake, 29 data
    segments (~2% of them retransmitted) each ACKed, FIN both ways."""
    v6 = fl.v6
    addrs_c, ports_c = fl.c_hdr[:-4], fl.c_hdr[-4:]
    addrs_s, ports_s = fl.s_hdr[:-4], fl.s_hdr[-4:]
    state = fl.state
    fl.state += 1
    if state == 0:
        frame = _frame(v6, addrs_c, ports_c, fl.c_seq, 0, 0x02, 0, written)
        fl.c_seq = (fl.c_seq + 1) & 0xFFFFFFFF
    elif state == 1:
        frame = _frame(v6, addrs_s, ports_s, fl.s_seq, fl.c_seq, 0x12, 0, written)
        fl.s_seq = (fl.s_seq + 1) & 0xFFFFFFFF
    elif state < 60 and state % 2:
        frame = _frame(v6, addrs_s, ports_s, fl.s_seq, fl.c_seq, 0x10, 0, written)
    elif state < 60:
        if fl.sent and rng.random() < 0.02:  # ~1% of all packets
            seq, size = fl.sent[rng.randrange(len(fl.sent))]
        else:
            seq, size = fl.c_seq, rng.choice((100, 536, 1200, 1448))
            fl.sent.append((seq, size))
            if len(fl.sent) > 8:
                fl.sent.pop(0)
            fl.c_seq = (fl.c_seq + size) & 0xFFFFFFFF
        frame = _frame(v6, addrs_c, ports_c, seq, fl.s_seq, 0x18, size, written)
    elif state == 60:
        frame = _frame(v6, addrs_c, ports_c, fl.c_seq, fl.s_seq, 0x11, 0, written)
        fl.c_seq = (fl.c_seq + 1) & 0xFFFFFFFF
    else:
        frame = _frame(v6, addrs_s, ports_s, fl.s_seq, fl.c_seq, 0x11, 0, written)
    return frame


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def as_pcapng(path: Path) -> Path | None:
    """The capture converted to pcapng by editcap (cached beside it), or None."""
    out = path.with_suffix(".pcapng")
    if not out.exists():
        editcap = shutil.which("editcap")
        if editcap is None:
            return None
        subprocess.run([editcap, "-F", "pcapng", str(path), str(out)], check=True, timeout=300)
    return out


def run_trafex(
    path: Path, volumetric: bool, repeat: int = 1, batches: bool = True
) -> tuple[int, float, int, int, list[float]]:
    """The best (shortest) of ``repeat`` runs (the machine's other work only adds
    time), and every run's seconds; ``batches=False``: record by record."""
    from trafex.detect.decode import stage

    default = stage.BATCH_MIN
    stage.BATCH_MIN = default if batches else None
    try:
        runs = [_run_trafex_once(path, volumetric) for _ in range(repeat)]
    finally:
        stage.BATCH_MIN = default
    best = min(runs, key=lambda run: run[1])
    return (*best, [run[1] for run in runs])


def _run_trafex_once(path: Path, volumetric: bool) -> tuple[int, float, int, int]:
    config = SensorConfig().with_detector("retransmit", threshold=3)
    config = config.with_detector("dns", names=sorted(BAD_QUERIES))
    if volumetric:
        config = config.with_detector("volumetric", default={"pps": 1_000_000.0})
    sensor = Sensor(config)
    detections = 0

    def count(_d: object) -> None:
        nonlocal detections
        detections += 1

    started = time.perf_counter()
    stats = sensor.run(CaptureFile(path), count)
    elapsed = time.perf_counter() - started
    return stats.packets, elapsed, detections, stats.flows_opened


def talk_filter() -> str | None:
    """The talk's BPF filters, for one pass running both of its scripts' logic, when
    Scapy can apply them to a file (it pipes the file through tcpdump), else None."""
    from scapy.config import conf

    return "tcp or (udp src port 53)" if shutil.which(conf.prog.tcpdump) else None


def run_talk_loop(path: Path, limit: int) -> tuple[int, float, list[str], set[tuple[Any, ...]]]:
    """The talk's two Scapy scripts, as shown on its slides, in one pass over the file.

    The talk sniffs an interface with ``filter="udp src port 53"`` (DNS) and with
    ``filter="tcp"`` (retransmissions), each ``prn=process_packet``; here one
    ``sniff(offline=path, filter="tcp or (udp src port 53)")`` does both, so every
    packet is dissected once, as the two filtered scripts together would. Only
    ``trigger_exabgp`` differs: it records the detection instead of an HTTP POST
    to ExaBGP. ``FlowKey.from_packet`` is not on the slides: it takes the IPv6 or
    IPv4 header. Returns (packets, seconds, DNS answers, flagged flow directions).
    """
    from scapy.layers.dns import DNS
    from scapy.layers.inet import IP, TCP
    from scapy.layers.inet6 import IPv6
    from scapy.packet import Packet
    from scapy.sendrecv import sniff

    retransmit_threshold = 3
    triggered_hosts: list[str] = []
    triggered_flows: set[tuple[Any, ...]] = set()

    class SessionTerminated(Exception):  # noqa: N818 - the talk's name
        pass

    class FlowKey(NamedTuple):
        """Flow Signature"""

        src_ip: str
        src_port: int
        dest_ip: str
        dest_port: int

        @classmethod
        def from_packet(cls, packet: Packet) -> FlowKey:
            ip = packet[IPv6] if packet.haslayer(IPv6) else packet[IP]
            return cls(ip.src, packet[TCP].sport, ip.dst, packet[TCP].dport)

    class FlowStatus:
        """Flow Object to keep track of retransmits"""

        def __init__(self) -> None:
            self.retransmits = 0
            # Sequence is Tuple[seq, ack]
            self.last_sequence: tuple[int, int] = (0, 0)
            # Has been sent to ExaBGP?
            self.has_been_triggered = False

        def analyze(self, packet: Packet) -> int:
            """Detect retransmits
            Returns current TCP retransmit count
            """
            sequence = (packet[TCP].seq, packet[TCP].ack)
            if sequence > self.last_sequence:
                self.last_sequence = sequence
            else:
                self.retransmits += 1
            if packet[TCP].flags.F or packet[TCP].flags.R:
                raise SessionTerminated()
            return self.retransmits

    def trigger_exabgp(what: Any) -> None:
        if isinstance(what, str):
            triggered_hosts.append(what)
        else:
            triggered_flows.add(tuple(what))

    def analyze(packet: Packet) -> str | None:
        """Check for malicious DNS query/response.
        If this is a DNS response for blacklisted
        domain, return resolved IP address
        """
        if packet.haslayer(DNS):
            if not packet[DNS].qr or not packet[DNS].qd:
                return None  # Nothing we're interested in
            if packet[DNS].qd.qname.decode() in BAD_QUERIES:
                return str(packet[DNS].an.rdata)
        return None

    flows: dict[FlowKey, FlowStatus] = {}

    def process_packet(packet: Packet) -> str | None:
        """Process the incoming packet"""
        dest_ip = analyze(packet)  # the DNS script's process_packet
        if dest_ip:
            trigger_exabgp(dest_ip)
        if not packet.haslayer(TCP):  # the retransmission script saw only TCP
            return None
        key = FlowKey.from_packet(packet)
        if key not in flows:
            flows[key] = FlowStatus()  # Init a new flow
        try:
            flow_retransmits = flows[key].analyze(packet)
            if flow_retransmits >= retransmit_threshold:
                if not flows[key].has_been_triggered:
                    trigger_exabgp(key)
                    flows[key].has_been_triggered = True
                return f"Flow {key!r} has retransmits!"
        except SessionTerminated:
            del flows[key]
        return None

    seen = 0

    def counted(packet: Packet) -> str | None:
        nonlocal seen
        seen += 1
        return process_packet(packet)

    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):  # sniff() prints what prn returns
        sniff(
            offline=str(path),
            filter=talk_filter(),
            prn=counted,
            store=False,
            count=limit,
            quiet=True,
        )
    return seen, time.perf_counter() - started, triggered_hosts, triggered_flows


def write_prefix(path: Path, packets: int, out: Path) -> Path:
    """The first ``packets`` records of a (little-endian) pcap file."""
    data = path.read_bytes()
    off = 24
    for _ in range(packets):
        if off + 16 > len(data):
            break
        off += 16 + struct.unpack_from("<I", data, off + 8)[0]
    out.write_bytes(data[:off])
    return out


def trafex_detections(path: Path) -> tuple[list[str], set[tuple[Any, ...]]]:
    """trafex's DNS answers and flagged flow directions (retransmit+dns) on ``path``."""
    config = SensorConfig().with_detector("retransmit", threshold=3)
    config = config.with_detector("dns", names=sorted(BAD_QUERIES))
    hosts: list[str] = []
    flows: set[tuple[Any, ...]] = set()

    def record(d: Detection) -> None:
        if d.detector == "dns":
            addresses = d.evidence.to_dict()["addresses"]
            assert isinstance(addresses, list)
            hosts.extend(str(a) for a in addresses)
        elif d.flow is not None:
            flows.add((d.flow.src, d.flow.sport, d.flow.dst, d.flow.dport))

    Sensor(config).run(CaptureFile(path), record)
    return hosts, flows


def bytes_per_flow(n: int, v6: bool) -> float:
    """tracemalloc bytes held by a flow table with ``n`` conversations, per conversation."""
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    table = TcpFlowTable(FlowTableConfig(max_flows=n + 1))
    alen = 16 if v6 else 4
    for i in range(n):
        src = i.to_bytes(alen, "big")
        dst = (i + 7).to_bytes(alen, "big")
        table.segment(src + dst + b"\x04\x00\x01\xbb", i, 0, 0x02, 1000, 0, i)
    used = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    assert len(table) == n
    return used / n


def run_live(path: Path, rate: float, count: int) -> None:
    """Send ``count`` frames at ``rate`` over a veth from a netns; the sensor receives."""
    from tests.unit.detect.vethpair import VethPair
    from trafex.detect.capture.live import LiveInterface

    config = SensorConfig().with_detector("retransmit", threshold=3)
    config = config.with_detector("dns", names=[BLOCKED])
    with VethPair() as veth:
        source = LiveInterface(veth.outer, idle_stop_s=1.0)
        source.open()
        proc = veth.send_pcap(path, rate, count=count)
        stats = Sensor(config).run(source, lambda d: None)
        out, err = proc.communicate(timeout=120)
        sent, send_secs = out.split() if out else ("0", "0")
        busy = stats.seconds - 1.0  # the run ends after 1 s without packets
        print(
            f"live: sent {sent} frames in {float(send_secs):.2f} s "
            f"({int(sent) / max(float(send_secs), 1e-9):,.0f} packets/s offered); "
            f"received {stats.packets} ({stats.packets / max(busy, 1e-9):,.0f} packets/s), "
            f"kernel drops {stats.drops}"
        )
        if err.strip():
            print(err.strip(), file=sys.stderr)


def churn_memory(seconds: int, flows_per_second: int) -> list[tuple[int, float]]:
    """Short-lived flows for ``seconds`` of packet time: (time, MiB held) every 20 s."""
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    table = TcpFlowTable(FlowTableConfig(idle_timeout=10, closed_timeout=2, sweep_interval=1))
    samples = []
    n = 0
    for t in range(seconds):
        now = t * 1_000_000_000
        for _ in range(flows_per_second):
            key = n.to_bytes(4, "big") + b"\x0a\x00\x00\x01\x04\x00\x01\xbb"
            n += 1
            table.segment(key, 1, 0, 0x02, 1000, 0, now)
            if n % 3:  # two in three close with FIN both ways, the rest just go idle
                table.segment(key, 2, 0, 0x11, 1000, 0, now)
                table.segment(
                    key[4:8] + key[0:4] + key[10:12] + key[8:10], 9, 3, 0x11, 1000, 0, now
                )
        table.maybe_sweep(now)
        if t % 20 == 19:
            samples.append((t + 1, (tracemalloc.get_traced_memory()[0] - base) / 2**20))
    tracemalloc.stop()
    return samples


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        epilog="example: bench/bench_detect.py --packets 1000000 --flows 20000",
    )
    parser.add_argument("--packets", type=int, default=1_000_000)
    parser.add_argument("--flows", type=int, default=20_000)
    parser.add_argument("--scapy-packets", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=3, help="trafex runs; the best is shown")
    parser.add_argument("--memory-flows", type=int, default=1_000_000)
    parser.add_argument("--cache", type=Path, default=ROOT / "build" / "bench")
    parser.add_argument("--live", action="store_true", help="also run the veth test (root)")
    parser.add_argument("--live-only", action="store_true", help="only the veth test")
    parser.add_argument("--live-rate", type=float, default=100_000)
    parser.add_argument("--live-packets", type=int, default=500_000)
    args = parser.parse_args(argv)
    logs.configure("warning")

    path = args.cache / f"detect-v{CAPTURE_VERSION}-{args.packets}-{args.flows}.pcap"
    if not path.exists():
        t0 = time.perf_counter()
        generate(path, args.packets, args.flows)
        print(
            f"generated {path} ({path.stat().st_size / 1e6:.0f} MB) in "
            f"{time.perf_counter() - t0:.1f} s"
        )
    if args.live_only:
        run_live(path, args.live_rate, args.live_packets)
        return 0
    packets, secs, dets, flows, times = run_trafex(path, volumetric=False, repeat=args.repeat)
    pps = packets / secs
    print(
        f"trafex (retransmit+dns, best of {args.repeat}): {packets} packets in {secs:.2f} s = "
        f"{pps:,.0f} packets/s, {flows} TCP conversations, {dets} detections "
        f"(runs: {', '.join(f'{t:.2f} s' for t in times)})"
    )
    packets_r, secs_r, dets_r, _, _ = run_trafex(path, volumetric=False, batches=False)
    print(
        f"trafex record by record (no numpy batches): {packets_r / secs_r:,.0f} packets/s, "
        f"{dets_r} detections"
    )
    pcapng = as_pcapng(path)
    if pcapng is None:
        print("trafex on the capture as pcapng: skipped (editcap, from tshark, not installed)")
    else:
        packets_n, secs_n, dets_n, _, _ = run_trafex(pcapng, volumetric=False, repeat=args.repeat)
        print(
            f"trafex on the capture as pcapng (editcap), best of {args.repeat}: "
            f"{packets_n / secs_n:,.0f} packets/s, {dets_n} detections"
        )
    packets_v, secs_v, dets_v, _, _ = run_trafex(path, volumetric=True, repeat=args.repeat)
    print(
        f"trafex (+volumetric):    {packets_v} packets in {secs_v:.2f} s = "
        f"{packets_v / secs_v:,.0f} packets/s, {dets_v} detections"
    )
    print(f"peak RSS: {peak_rss_mib():.0f} MiB")
    n, ssecs, talk_hosts, talk_flows = run_talk_loop(path, args.scapy_packets)
    spps = n / ssecs
    flt = talk_filter()
    print(
        f"talk-style Scapy loop: {n} packets in {ssecs:.2f} s = {spps:,.0f} packets/s "
        f"(sniff(offline=..., prn=process_packet), "
        + (
            f"filter={flt!r} through tcpdump)"
            if flt
            else "no BPF filter: tcpdump is not "
            "installed, so Scapy cannot filter a file; every packet of this capture would "
            "pass the talk's filters anyway)"
        )
    )
    print(f"speed-up: {pps / spps:.0f}x (trafex retransmit+dns packets/s over the talk loop's)")
    prefix = write_prefix(path, n, path.with_name(f"{path.stem}-first{n}.pcap"))
    hosts, flows_flagged = trafex_detections(prefix)
    print(
        f"detections on those {n} packets: DNS answers for BAD_QUERIES: talk "
        f"{len(talk_hosts)}, trafex {len(hosts)}, "
        f"{'the same' if sorted(talk_hosts) == sorted(hosts) else 'DIFFERENT'}; "
        f"flow directions with >= 3 retransmissions: talk {len(talk_flows)}, trafex "
        f"{len(flows_flagged)}, both {len(talk_flows & flows_flagged)} (the talk counts "
        f"every segment whose (seq, ack) does not grow, duplicate ACKs included; trafex "
        f"counts tshark's tcp.analysis.retransmission)"
    )
    for v6 in (False, True):
        per = bytes_per_flow(args.memory_flows, v6)
        print(
            f"memory: {per:.0f} bytes per tracked TCP conversation at {args.memory_flows} "
            f"conversations ({'IPv6' if v6 else 'IPv4'}, both directions)"
        )
    samples = churn_memory(100, 2000)
    print(
        "memory over a long run (2,000 new flows/s, idle 10 s, closed 2 s): "
        + ", ".join(f"t={t}s {mib:.1f} MiB" for t, mib in samples)
    )
    if args.live:
        run_live(path, args.live_rate, args.live_packets)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
