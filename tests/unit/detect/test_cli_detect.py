"""``trafex detect``: output formats, exit codes, one-line errors."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from trafex.cli import detect as cli
from trafex.detect import CaptureFile, Detection, DetectorBase, Sensor, SensorConfig

from .dnsscenarios import response, udp
from .helpers import first_records_bytes, write_pcap
from .tcpscenarios import scenario_rto


@pytest.fixture(autouse=True)
def _reset_logging() -> Iterator[None]:
    """The CLI configures structlog for its stderr; later tests get the defaults back."""
    yield
    structlog.reset_defaults()


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    cli.add_parser(sub)
    args = parser.parse_args(["detect", *argv])
    return int(args.func(args))


def _capture(tmp_path: Path) -> Path:
    answer = response("badhacks.com", [("badhacks.com", "AAAA", "3001:10:66::5")], "AAAA")
    pkts = [*scenario_rto(True), udp(answer, True)]
    return write_pcap(tmp_path / "c.pcap", sorted(pkts, key=lambda p: float(p.time)))


def test_json_lines(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--json prints one object per detection with the documented keys; stats on stderr."""
    bl = tmp_path / "bl.txt"
    bl.write_text("badhacks.com\n")
    code = _run(
        [
            "--pcap",
            str(_capture(tmp_path)),
            "--blocklist",
            str(bl),
            "--retransmit-threshold",
            "3",
            "--json",
            "--progress",
            "0",
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0
    objs = [json.loads(line) for line in out.splitlines()]
    by = {o["detector"]: o for o in objs}
    assert by["retransmit"]["flow"] == {
        "src": "3001:1:a::10",
        "sport": 40001,
        "dst": "3001:4:b::10",
        "dport": 443,
        "proto": "tcp",
    }
    assert by["retransmit"]["retransmits"] == 3
    assert by["dns"]["qname"] == "badhacks.com."
    assert by["dns"]["addresses"] == ["3001:10:66::5"]
    assert by["dns"]["client"] == "3001:1:a::10"
    assert "done packets=" in err and "bad=0" in err


def test_human_lines(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Without --json each detection is one readable line."""
    assert _run(["--pcap", str(_capture(tmp_path)), "--progress", "0"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("retransmit tcp 3001:1:a::10:40001 -> 3001:4:b::10:443")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--pcap", "/etc/hostname"], "not a pcap or pcapng capture"),
        (["--pcap", "/nonexistent.pcap"], "not a pcap or pcapng capture"),
        (["--pcap", "PCAP", "--blocklist", "/nonexistent"], "cannot read blocklist"),
        (["--pcap", "PCAP", "--config", "CONF"], "detect.bogus"),
        (["--interface", "nosuchif0"], "no such interface"),
        (["--pcap", "PCAP", "--bpf", "tcp"], "--bpf applies to --interface"),
    ],
)
def test_user_errors_are_one_line_exit_2(
    tmp_path: Path, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A user's mistake prints one line on stderr (no traceback) and exits 2."""
    conf = tmp_path / "c.toml"
    conf.write_text("[detect]\nbogus = 1\n")
    argv = [
        str(_capture(tmp_path)) if a == "PCAP" else str(conf) if a == "CONF" else a for a in argv
    ]
    assert _run([*argv, "--progress", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert message in err[0]


def test_help_shows_an_example() -> None:
    """`trafex detect --help` shows an example command."""
    done = subprocess.run(
        [sys.executable, "-m", "trafex.cli.main", "detect", "--help"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert "trafex detect --pcap" in done.stdout


def test_progress_lines_on_stderr(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """With a short --progress interval a progress line (packets, pps, flows) goes to stderr."""
    assert _run(["--pcap", str(_capture(tmp_path)), "--progress", "0.000001"]) == 0
    err = capsys.readouterr().err
    assert "progress packets=" in err
    assert "flows=" in err


class _Reloads(DetectorBase):
    """A detector that counts its reloads."""

    name = "reloads"

    def __init__(self) -> None:
        self.reloads = 0

    def reload(self) -> None:
        self.reloads += 1


def test_sighup_reloads_and_sigterm_stops(tmp_path: Path) -> None:
    """After the CLI's SIGHUP and SIGTERM handlers ran, the sensor reloads its
    detectors once and stops after the first chunk it reads (one record here)."""
    detector = _Reloads()
    sensor = Sensor(SensorConfig(), detectors=[detector])
    previous = cli._install_signals(sensor)
    try:
        os.kill(os.getpid(), signal.SIGHUP)
        os.kill(os.getpid(), signal.SIGTERM)
    finally:
        cli._restore_signals(previous)
    path = _capture(tmp_path)
    stats = sensor.run(CaptureFile(path, chunk_size=first_records_bytes(path, 1)), print)
    assert detector.reloads == 1
    assert stats.packets == 1


def test_stdin_pipe(tmp_path: Path) -> None:
    """--pcap - reads a capture from a pipe."""
    data = _capture(tmp_path).read_bytes()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "trafex.cli.main",
            "detect",
            "--pcap",
            "-",
            "--json",
            "--progress",
            "0",
        ],
        input=data,
        capture_output=True,
        check=True,
        timeout=60,
    )
    [line] = done.stdout.decode().splitlines()
    assert json.loads(line)["detector"] == "retransmit"


def test_policy_callback_sees_every_detection(tmp_path: Path) -> None:
    """run(args, on_detection=...) hands each printed detection to a trigger policy."""
    parser = argparse.ArgumentParser()
    cli.add_parser(parser.add_subparsers())
    args = parser.parse_args(["detect", "--pcap", str(_capture(tmp_path)), "--progress", "0"])
    seen: list[Detection] = []
    assert cli.run(args, on_detection=seen.append) == 0
    assert [d.detector for d in seen] == ["retransmit"]
