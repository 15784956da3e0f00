"""Trigger benchmark: from the triggering packet to the intent accepted by trafexd.

Starts a real trafexd with its real gobgpd (peered with a real FRR in a network
namespace when run as root with FRR installed, as ``bench_control``), then:

- **capture**: a capture of ``--packets`` background TCP packets (``--flows``
  conversations, no retransmissions) with ``--events`` triggering events spread evenly
  through it, alternately a DNS answer for a blocklisted name (its own AAAA address,
  one route) and a TCP flow that retransmits a segment three times (its own 4-tuple,
  two FlowSpec rules). ``trafex detect --pcap … --controller …`` (the real CLI, in a
  subprocess) reads it at full speed, so the packet loop is busy while intents are
  sent. Latency per intent is measured by the CLI: from the moment the triggering
  packet was handled to trafexd's answer. p50/p99/max come from its final line.
- **live** (root; ``--no-live`` skips it): a capture of the same kind sent over a veth
  pair from a namespace at ``--live-rate`` packets/s to ``trafex detect --interface``;
  latency from the kernel's receive timestamp of the triggering packet (AF_PACKET,
  wall clock) to trafexd's answer. This is the target's own definition.
- **burst**: ``--burst`` detections' intents (one route, or a flow's two rules) queued
  at once in the background sender, no rate limit: intents/s that trafexd takes one
  call at a time, and the latency of the last ones (queueing included).

Prints numbers; asserts nothing. Target: under 10 ms from packet to accepted intent.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import random
import re
import struct
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "integration"))
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from frr import HOST_V6, FrrRouter, Neighbor, frr_missing_reason  # noqa: E402
from scratch import scratch  # noqa: E402
from trafexd import Trafexd, free_port  # noqa: E402

from trafex.model.grammar import parse_rule  # noqa: E402
from trafex.model.route import UnicastRoute, parse_prefix  # noqa: E402
from trafex.trigger.intent import TriggerIntent  # noqa: E402
from trafex.trigger.sender import BackgroundSender, Sender  # noqa: E402

BLOCKED = "badhacks.com"
ETH4 = b"\x02\0\0\0\0\x01\x02\0\0\0\0\x02\x08\x00"
ETH6 = b"\x02\0\0\0\0\x01\x02\0\0\0\0\x02\x86\xdd"
H4 = ipaddress.IPv6Address("3001:4:b::10").packed
DNS_SERVER = bytes([198, 51, 100, 53])
CLIENT = bytes([10, 0, 0, 10])
SYN, ACK, PSH_ACK, SYN_ACK = 0x02, 0x10, 0x18, 0x12

CONFIG = f"""
[detect.retransmit]
threshold = 3
[detect.dns]
names = ["{BLOCKED}"]
[trigger]
max_intents_per_second = 0   # measure every intent, none rate-limited
"""


def _ip4(proto: int, src: bytes, dst: bytes, payload: bytes, ident: int) -> bytes:
    header = struct.pack("!BBHHHBBH", 0x45, 0, 20 + len(payload), ident & 0xFFFF, 0, 64, proto, 0)
    return ETH4 + header + src + dst + payload


def _tcp(ports: tuple[int, int], seq: int, ack: int, flags: int, data: int = 0) -> bytes:
    return struct.pack("!HHIIBBHHH", *ports, seq, ack, 0x50, flags, 8192, 0, 0) + b"x" * data


def _tcp6(src: bytes, dst: bytes, segment: bytes) -> bytes:
    return ETH6 + struct.pack("!IHBB", 0x60000000, len(segment), 6, 64) + src + dst + segment


def dns_answer(n: int) -> bytes:
    """An A-query answer over IPv4 for e<n>.badhacks.com with AAAA 3001:10:66::<n>."""
    name = f"e{n}.{BLOCKED}"
    qname = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    address = ipaddress.IPv6Address(f"3001:10:66::{n:x}").packed
    answer = b"\xc0\x0c" + struct.pack("!HHIH", 28, 1, 60, 16) + address
    dns = struct.pack("!HHHHHH", n & 0xFFFF, 0x8180, 1, 1, 0, 0) + qname + b"\0\x1c\0\x01"
    udp = struct.pack("!HHHH", 53, 33000 + n % 30000, 8 + len(dns) + len(answer), 0)
    return _ip4(17, DNS_SERVER, CLIENT, udp + dns + answer, n)


def retransmitting_flow(n: int) -> list[bytes]:
    """host 3001:1:a::<n> → 3001:4:b::10:443: handshake, then one segment four times
    (three retransmissions: the detection fires on the last one)."""
    client = ipaddress.IPv6Address(f"3001:1:a::{n:x}").packed
    ports, back = (40000 + n % 20000, 443), (443, 40000 + n % 20000)
    c, s = 1000, 5000
    frames = [
        _tcp6(client, H4, _tcp(ports, c - 1, 0, SYN)),
        _tcp6(H4, client, _tcp(back, s - 1, c, SYN_ACK)),
        _tcp6(client, H4, _tcp(ports, c, s, ACK)),
    ]
    frames += [_tcp6(client, H4, _tcp(ports, c, s, PSH_ACK, 100))] * 4
    return frames


def generate(
    path: Path, packets: int, flows: int, events: int, seed: int = 11, first: int = 1
) -> int:
    """Write the capture; returns the number of frames of the events (numbered from
    ``first``, so two captures can trigger different intents)."""
    rng = random.Random(seed)
    seqs = [[rng.getrandbits(31), rng.getrandbits(31)] for _ in range(flows)]
    started = [False] * flows
    every = max(1, packets // max(events, 1))
    rec = struct.Struct("<IIII")
    out = bytearray(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
    ts_us = 1_700_000_000 * 1_000_000
    event_frames = 0
    n_event = 0
    for i in range(packets):
        batch: list[bytes] = []
        if i % every == every // 2 and n_event < events:
            n = first + n_event
            n_event += 1
            batch = [dns_answer(n)] if n % 2 else retransmitting_flow(n)
            event_frames += len(batch)
        f = i % flows
        server = bytes([192, 0, 2, 1 + f % 8])
        client = bytes([10, 1, f >> 8 & 0xFF, f & 0xFF])
        ports = (1024 + f, 443)
        cseq, sseq = seqs[f]
        if not started[f]:
            started[f] = True
            batch.append(_ip4(6, client, server, _tcp(ports, cseq - 1, 0, SYN), i))
            back = (443, 1024 + f)
            batch.append(_ip4(6, server, client, _tcp(back, sseq - 1, cseq, SYN_ACK), i))
        elif i % 2:
            batch.append(_ip4(6, client, server, _tcp(ports, cseq, sseq, PSH_ACK, 64), i))
            seqs[f][0] = (cseq + 64) & 0xFFFFFFFF
        else:
            back = (443, 1024 + f)
            batch.append(_ip4(6, server, client, _tcp(back, sseq, cseq, ACK), i))
        for frame in batch:
            ts_us += 4
            out += rec.pack(ts_us // 1_000_000, ts_us % 1_000_000, len(frame), len(frame))
            out += frame
    path.write_bytes(out)
    return event_frames


def _done_stats(stderr: str) -> dict[str, str]:
    lines = [line for line in stderr.splitlines() if line.startswith("done ")]
    if not lines:
        raise SystemExit(f"bench_trigger: no final line from trafex detect:\n{stderr}")
    return dict(re.findall(r"(\w+)=(\S+)", lines[-1]))


def _report(label: str, stats: dict[str, str], command: str) -> None:
    print(f"{label}: {command}")
    print(
        f"  intents sent {stats.get('sent')} (failed {stats.get('failed')}, dropped "
        f"{stats.get('dropped')}), {stats.get('packets')} packets at {stats.get('pps')} "
        f"packets/s in {stats.get('seconds')} s"
    )
    print(
        f"  packet → intent accepted by trafexd: p50 {stats.get('latency_ms_p50')} ms, "
        f"p99 {stats.get('latency_ms_p99')} ms, max {stats.get('latency_ms_max')} ms"
    )


def run_capture(api: str, pcap: Path, config: Path) -> None:
    cmd = [sys.executable, "-m", "trafex.cli.main", "detect", "--pcap", str(pcap)]
    cmd += ["--config", str(config), "--controller", api, "--progress", "0"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    if done.returncode:
        raise SystemExit(f"bench_trigger: trafex detect exited {done.returncode}\n{done.stderr}")
    shown = f"trafex detect --pcap {pcap.name} --config {config.name} --controller {api}"
    _report("capture", _done_stats(done.stderr), shown)


def run_live(api: str, pcap: Path, config: Path, rate: float, extra: list[str]) -> None:
    """The capture's frames over a veth pair at ``rate`` packets/s; the CLI on the
    receiving end measures from each triggering packet's kernel timestamp."""
    from tests.unit.detect.vethpair import VethPair

    detect: subprocess.Popen[str] | None = None
    with VethPair() as veth:
        try:
            cmd = [sys.executable, "-m", "trafex.cli.main", "detect", "--interface", veth.outer]
            cmd += ["--config", str(config), "--controller", api, "--progress", "0", *extra]
            detect = subprocess.Popen(
                cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
            )
            time.sleep(2.0)  # the capture socket is open, the controller connected
            out, _ = veth.send_pcap(pcap, rate).communicate(timeout=600)
            time.sleep(1.0)
            detect.terminate()
            _, err = detect.communicate(timeout=60)
        finally:
            if detect is not None and detect.poll() is None:
                detect.kill()  # started here, by PID
                detect.wait(timeout=10)
    sent, secs = out.split() if out else ("0", "0")
    shown = f"trafex detect --interface {veth.outer} --config {config.name} --controller {api}"
    shown += "".join(f" {x}" for x in extra)
    _report(f"live ({int(sent)} frames offered at {int(sent) / float(secs):,.0f}/s)",
            _done_stats(err), shown)  # fmt: skip


def run_burst(api: str, count: int) -> None:
    """``count`` detections' intents queued at once; one call at a time to trafexd."""
    intents: list[list[TriggerIntent]] = []
    for n in range(count):
        if n % 2:
            route = UnicastRoute(parse_prefix(f"3001:10:77::{n:x}/128"))
            intents.append([TriggerIntent(route, 600.0, "bench", "dns")])
        else:
            a, b = f"3001:1:b::{n:x}/128", "3001:4:b::10/128"
            intents.append(
                [
                    TriggerIntent(parse_rule(f"source {a} destination {b} redirect 6:302"),
                                  600.0, "bench", "retransmit"),
                    TriggerIntent(parse_rule(f"source {b} destination {a} redirect 6:302"),
                                  600.0, "bench", "retransmit"),
                ]
            )  # fmt: skip
    sender = Sender(api, timeout=5.0)
    sender.connect()
    background = BackgroundSender(sender, queue_size=count + 1).start()
    start = time.monotonic()
    for batch in intents:
        background.submit(batch, time.time())
    background.close(timeout=600)
    elapsed = time.monotonic() - start
    stats = background.stats
    p50, p99, worst = stats.latency_ms()
    print(
        f"burst: {count} detections ({stats.sent} intents, {stats.failed} failed) queued at "
        f"once: {stats.sent / elapsed:,.0f} intents/s, {count / elapsed:,.0f} calls/s; "
        f"latency with queueing p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {worst:.1f} ms"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0] if __doc__ else None,
        epilog="example: bench/bench_trigger.py --packets 1000000 --events 200 --live-rate 20000",
    )
    parser.add_argument("--packets", type=int, default=1_000_000)
    parser.add_argument("--flows", type=int, default=2_000)
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--burst", type=int, default=2_000, help="0 to skip")
    parser.add_argument("--no-live", action="store_true", help="skip the veth test")
    parser.add_argument("--live-rate", type=float, default=20_000, help="packets/s")
    parser.add_argument("--live-packets", type=int, default=200_000)
    parser.add_argument(
        "--block-timeout", type=int, help="ms, passed to trafex detect (its default: 1)"
    )
    parser.add_argument("--no-frr", action="store_true", help="trafexd without a router")
    args = parser.parse_args(argv)
    with scratch("trafex-bench-trigger.") as folder:
        return run(args, folder.path)


def run(args: argparse.Namespace, workdir: Path) -> int:
    """The benchmark, its files in ``workdir``."""
    pcap = workdir / "trigger.pcap"
    config = workdir / "trigger.toml"
    config.write_text(CONFIG)
    t0 = time.perf_counter()
    frames = generate(pcap, args.packets, args.flows, args.events)
    print(
        f"generated {pcap.name}: {args.packets} background packets + {frames} frames of "
        f"{args.events} events in {time.perf_counter() - t0:.1f} s"
    )
    use_frr = not args.no_frr and os.geteuid() == 0 and frr_missing_reason() is None
    router: FrrRouter | None = None
    trafexd: Trafexd | None = None
    try:
        if use_frr:
            port = free_port()
            router = FrrRouter(workdir / "frr", neighbors=[Neighbor(HOST_V6, 65010, port=port)])
            router.start()
            trafexd = Trafexd(
                workdir / "trafexd",
                [(router.router_v6, 65000, router.host_v6, ["ipv6-unicast", "ipv6-flowspec"])],
                listen_port=port,
                listen_addresses=[router.host_v6],
            ).start()
            router.wait_established(timeout=30)
            print("trafexd + gobgpd, peered with FRR (ipv6-unicast, ipv6-flowspec)")
        else:
            trafexd = Trafexd(workdir / "trafexd").start()
            print("trafexd + gobgpd, no router (--no-frr, not root, or FRR missing)")
        run_capture(trafexd.api, pcap, config)
        if not args.no_live and os.geteuid() == 0:
            live_pcap = workdir / "live.pcap"
            events = max(2, args.events * args.live_packets // args.packets)
            generate(live_pcap, args.live_packets, args.flows, events, seed=12, first=50_000)
            extra = (
                [] if args.block_timeout is None else ["--block-timeout", str(args.block_timeout)]
            )
            run_live(trafexd.api, live_pcap, config, args.live_rate, extra)
        if args.burst:
            run_burst(trafexd.api, args.burst)
    finally:
        if trafexd is not None:
            trafexd.close()
        if router is not None:
            router.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
