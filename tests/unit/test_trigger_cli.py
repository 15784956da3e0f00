"""``trafex detect --dry-run`` / ``--controller``: the trigger policy in the sensor's CLI."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog

from tests.unit.fakeapi import FakeController, serve
from trafex.cli import detect as cli
from trafex.detect import DetectError

H1, H4, DNS_SERVER, BAD = "3001:1:a::10", "3001:4:b::10", "3001:10::53", "3001:10:66::5"


@pytest.fixture(autouse=True)
def _reset_logging() -> Iterator[None]:
    yield
    structlog.reset_defaults()


def talk_capture(path: Path, answers: int = 1) -> Path:
    """The talk's two demos: ``answers`` DNS answers for badhacks.com (AAAA
    3001:10:66::5) and a TCP flow host1 → host4:443 that retransmits a segment 4 times."""
    from scapy.layers.dns import DNS, DNSQR, DNSRR
    from scapy.layers.inet import TCP, UDP
    from scapy.layers.inet6 import IPv6
    from scapy.layers.l2 import Ether
    from scapy.utils import wrpcap

    packets: list[Any] = []

    def add(layer: Any) -> None:
        pkt = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / layer
        pkt.time = 1_700_000_000.0 + 0.01 * len(packets)
        packets.append(pkt)

    for n in range(answers):
        add(
            IPv6(src=DNS_SERVER, dst=H1)
            / UDP(sport=53, dport=33333 + n)
            / DNS(
                id=n,
                qr=1,
                qd=DNSQR(qname="badhacks.com", qtype="AAAA"),
                an=DNSRR(rrname="badhacks.com", type="AAAA", rdata=BAD, ttl=60),
            )
        )
    c, s = 1000, 5000
    add(IPv6(src=H1, dst=H4) / TCP(sport=58719, dport=443, flags="S", seq=c - 1))
    add(IPv6(src=H4, dst=H1) / TCP(sport=443, dport=58719, flags="SA", seq=s - 1, ack=c))
    add(IPv6(src=H1, dst=H4) / TCP(sport=58719, dport=443, flags="A", seq=c, ack=s))
    for _ in range(5):
        add(
            IPv6(src=H1, dst=H4)
            / TCP(sport=58719, dport=443, flags="PA", seq=c, ack=s)
            / (b"x" * 100)
        )
    wrpcap(str(path), packets)
    return path


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    cli.add_parser(sub)
    args = parser.parse_args(["detect", *argv])
    return int(args.func(args))


@pytest.fixture
def capture(tmp_path: Path) -> list[str]:
    blocklist = tmp_path / "bad.txt"
    blocklist.write_text("badhacks.com\n")
    pcap = talk_capture(tmp_path / "talk.pcap", answers=3)
    return ["--pcap", str(pcap), "--blocklist", str(blocklist), "--progress", "0"]


def done_line(err: str) -> dict[str, str]:
    (line,) = [x for x in err.splitlines() if x.startswith("done ")]
    return dict(part.split("=", 1) for part in line.split()[1:])


def test_dry_run_prints_the_talks_intents(
    capture: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """--dry-run: after each detection line, the intents it makes; repeats of the DNS
    answer are held down and counted; the final line has the trigger's counters."""
    assert run([*capture, "--dry-run"]) == 0
    out, err = capsys.readouterr()
    intents = [line for line in out.splitlines() if line.startswith("intent ")]
    assert intents == [
        f"intent route {BAD}/128 next-hop self ttl=3600s origin=dns",
        f"intent flow destination {H4}/128 source {H1}/128 protocol =tcp redirect 6:302 "
        "ttl=600s origin=retransmit",
        f"intent flow destination {H1}/128 source {H4}/128 protocol =tcp redirect 6:302 "
        "ttl=600s origin=retransmit",
    ]
    assert out.splitlines()[0].startswith("dns badhacks.com.")
    stats = done_line(err)
    assert (stats["intents"], stats["suppressed"], stats["rate_limited"]) == ("3", "2", "0")
    assert "sent" not in stats


def test_dry_run_json(capture: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """--dry-run --json: intents are {"intent": {...}} objects between the detections,
    each the rule's or route's JSON as trafex-ctl --json gives it (next_hop null:
    next-hop self) with the intent's TTL, reason and origin."""
    assert run([*capture, "--dry-run", "--json"]) == 0
    objects = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    intents = [o["intent"] for o in objects if "intent" in o]
    detections = [o for o in objects if "detector" in o]
    assert len(detections) == 4 and len(intents) == 3
    route = intents[0]
    assert route["kind"] == "route" and route["prefix"] == f"{BAD}/128"
    assert route["next_hop"] is None and route["origin"] == "dns" and route["ttl"] == 3600
    flows = intents[1:]
    assert [f["match"]["source"] for f in flows] == [f"{H1}/128", f"{H4}/128"]
    assert {f["actions"]["redirect"] for f in flows} == {"6:302"}
    assert flows[0]["text"].endswith(" redirect 6:302")
    assert flows[0]["reason"] == f"retransmit: 3 retransmits {H1}:58719 -> {H4}:443"


def test_config_trigger_table(
    capture: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The [trigger] table of --config changes the intents; [detect] still applies."""
    config = tmp_path / "trafex.toml"
    config.write_text(
        "[detect.retransmit]\nthreshold = 2\n"
        '[trigger.dns]\ncommunity = ["65000:666"]\nttl = "10m"\n'
        "[trigger.retransmit]\nboth_directions = false\ndiscard = true\nmatch = []\n"
    )
    assert run([*capture, "--dry-run", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    intents = [line for line in out.splitlines() if line.startswith("intent ")]
    assert intents == [
        f"intent route {BAD}/128 next-hop self community [65000:666] ttl=600s origin=dns",
        f"intent flow destination {H4}/128 source {H1}/128 discard ttl=600s origin=retransmit",
    ]
    assert "retransmits=2" in out


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--controller", "localhost"], "--controller: expected HOST:PORT, got 'localhost'"),
        (["--controller", "::1:50061"], "write an IPv6 address as [ADDRESS]:PORT"),
        (["--controller", "h:99999"], "expected HOST:PORT"),
    ],
)
def test_bad_controller_is_one_line_exit_2(
    capture: list[str], capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    """A malformed --controller is a user's mistake: one line, exit 2."""
    assert run([*capture, *extra]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err


def test_bad_trigger_key_is_one_line_exit_2(
    capture: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An unknown [trigger] key names the key; without --dry-run/--controller the
    [trigger] table is not read at all (behaviour as before)."""
    config = tmp_path / "trafex.toml"
    config.write_text("[trigger.dns]\ncomunity = []\n")
    assert run([*capture, "--dry-run", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("trafex detect: config: trigger.dns.comunity: unknown key")
    assert err.count("\n") == 1
    assert run([*capture, "--config", str(config)]) == 0
    out, err = capsys.readouterr()
    assert "intent" not in out and "intents=" not in err


def test_dry_run_and_controller_exclude_each_other(capture: list[str]) -> None:
    """--dry-run with --controller is a usage error (argparse exits 2)."""
    with pytest.raises(SystemExit) as info:
        run([*capture, "--dry-run", "--controller", "127.0.0.1:1"])
    assert info.value.code == 2


def test_controller_sends_and_reports_latency(
    capture: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """--controller: the route, then both directions in one call, reach trafexd's API
    with their origin; the final line counts them and gives the latency percentiles."""
    with serve(FakeController()) as api:
        assert run([*capture, "--controller", api.target]) == 0
    out, err = capsys.readouterr()
    assert "intent" not in out  # intents are sent, not printed
    changes = [
        [(type(item).__name__, o.origin) for item, o in items]
        for _, items in api.controller.changes
    ]
    assert changes == [[("UnicastRoute", "dns")], [("FlowRule", "retransmit")] * 2]
    stats = done_line(err)
    assert (stats["intents"], stats["sent"], stats["failed"], stats["dropped"]) == (
        "3",
        "3",
        "0",
        "0",
    )
    assert float(stats["latency_ms_max"]) >= float(stats["latency_ms_p50"]) > 0


def test_dead_controller_keeps_the_sensor_running(
    capture: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """Nothing listens at --controller: one line saying so, detections still printed,
    exit 0, the intents counted as failed."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        target = f"127.0.0.1:{sock.getsockname()[1]}"
    assert run([*capture, "--controller", target]) == 0
    out, err = capsys.readouterr()
    assert len(out.splitlines()) == 4
    lines = [x for x in err.splitlines() if not x.startswith("done ")]
    assert len(lines) == 1 and "unreachable" in lines[0] and "keeps running" in lines[0]
    stats = done_line(err)
    assert (stats["sent"], stats["failed"]) == ("0", "3")
    assert "latency_ms_p50" not in stats


def test_block_timeout(capture: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """--block-timeout is for --interface only; with --controller the live ring's blocks
    are handed over after 1 ms (the same 64 MiB ring in smaller blocks), else 50 ms."""
    assert run([*capture, "--block-timeout", "5"]) == 2
    assert "--block-timeout applies to --interface only" in capsys.readouterr().err

    def args(*extra: str) -> argparse.Namespace:
        parser = argparse.ArgumentParser()
        cli.configure_parser(parser)
        return parser.parse_args(["--interface", "lo", *extra])

    plain = cli.live_source(args())
    assert (plain.block_timeout_ms, plain.block_size * plain.blocks) == (50, 64 << 20)
    fast = cli.live_source(args("--controller", "127.0.0.1:50061"))
    assert (fast.block_timeout_ms, fast.block_size * fast.blocks) == (1, 64 << 20)
    assert cli.live_source(args("--block-timeout", "20")).block_timeout_ms == 20
    with pytest.raises(DetectError, match=r"1\.\.10000 ms"):
        cli.live_source(args("--block-timeout", "0"))
