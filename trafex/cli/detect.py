"""``trafex detect``: run the sensor on a capture file or a live interface.

Wired into ``trafex`` by :mod:`trafex.cli.main` through :func:`add_parser` and
:func:`run`. Detections go to stdout (``--json``: one object per line), the
progress and final statistics lines to stderr. A user's mistake (not a
capture, bad config key, unknown interface) prints one line and exits 2.

With ``--controller HOST:PORT`` or ``--dry-run`` each detection also goes through the
trigger policy (:mod:`trafex.trigger`, the ``[trigger]`` table of ``--config``): the
intents it lets through are sent to trafexd from a background thread, or printed
(``intent …`` lines, or ``{"intent": {…}}`` objects with ``--json``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
import time
from collections.abc import Callable
from types import FrameType
from typing import TextIO

import structlog

from trafex import logs
from trafex.api.security import SecurityError
from trafex.cli.auth import add_auth_options, credentials
from trafex.config import ConfigError, split_host_port
from trafex.detect import (
    CaptureFile,
    DetectError,
    Detection,
    Sensor,
    SensorConfig,
    SensorStats,
    load_config,
)
from trafex.detect.capture.live import LiveInterface
from trafex.detect.metrics import serve_sensor_metrics
from trafex.trigger.config import default_config, load_trigger_config
from trafex.trigger.pipeline import Trigger

BLOCK_TIMEOUT_MS = 50
# With a controller the packet → intent latency counts: a 50 ms ring block timeout alone
# would be five times the 10 ms target at low packet rates. Smaller blocks keep the same
# 64 MiB ring, so it still buffers half a second of slow traffic. At low rates a block
# is handed over at its timeout: half of it is the average wait (bench_trigger: p50
# 3.6 ms with 1 ms, 3.9 ms with 2 ms).
BLOCK_TIMEOUT_CONTROLLER_MS = 1
RING_BYTES = 64 << 20

EXAMPLES = """examples:
  trafex detect --pcap traffic.pcap --blocklist blocklist.txt --json
  trafex detect --pcap traffic.pcapng --retransmit-threshold 5
  trafex detect --interface eth1 --bpf 'tcp or udp port 53' --config trafex.toml
  trafex detect --pcap traffic.pcap --blocklist bad.txt --dry-run
  trafex detect --interface eth1 --blocklist bad.txt --controller 127.0.0.1:50061
"""


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``detect`` subcommand to trafex's parser."""
    parser = subparsers.add_parser(
        "detect",
        help="watch packets and report flows to act on",
        description="Read a pcap/pcapng file or a live interface; report DNS answers for "
        "blocklisted names, TCP flow directions that retransmit, and floods.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    configure_parser(parser)
    parser.set_defaults(func=run)


def configure_parser(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--pcap", metavar="FILE", help="pcap or pcapng file ('-' for stdin)")
    source.add_argument("--interface", metavar="IF", help="live capture on this interface")
    parser.add_argument("--bpf", metavar="FILTER", help="BPF filter for --interface")
    parser.add_argument(
        "--block-timeout",
        type=int,
        metavar="MS",
        help="--interface: longest a packet waits in the kernel's capture ring before the "
        f"sensor sees it (default {BLOCK_TIMEOUT_MS} ms, {BLOCK_TIMEOUT_CONTROLLER_MS} ms "
        "with --controller)",
    )
    parser.add_argument("--config", metavar="FILE", help="TOML file with a [detect] table")
    parser.add_argument(
        "--retransmit-threshold",
        type=int,
        metavar="N",
        help="retransmissions per flow direction that make a detection (enables the detector)",
    )
    parser.add_argument(
        "--blocklist", metavar="FILE", help="domain blocklist (enables the dns detector)"
    )
    parser.add_argument("--json", action="store_true", help="one JSON object per detection")
    trigger = parser.add_mutually_exclusive_group()
    trigger.add_argument(
        "--controller",
        metavar="HOST:PORT",
        help="send the trigger policy's intents to trafexd's API at HOST:PORT",
    )
    trigger.add_argument(
        "--dry-run",
        action="store_true",
        help="print the intents the trigger policy would send (nothing is sent)",
    )
    parser.add_argument(
        "--progress",
        type=float,
        default=2.0,
        metavar="SECONDS",
        help="seconds between progress lines on stderr (0: none)",
    )
    parser.add_argument(
        "--metrics",
        metavar="HOST:PORT",
        help="serve Prometheus metrics at http://HOST:PORT/metrics (packets, bytes, drops, "
        "detections, intents)",
    )
    add_auth_options(parser)  # --controller's TLS and token, as trafex-ctl's


def live_source(args: argparse.Namespace) -> LiveInterface:
    """The live capture; a controller gets a short ring block timeout (low latency)."""
    timeout = getattr(args, "block_timeout", None)
    if timeout is None:
        controller = getattr(args, "controller", None)
        timeout = BLOCK_TIMEOUT_CONTROLLER_MS if controller else BLOCK_TIMEOUT_MS
    if not 1 <= timeout <= 10_000:
        raise DetectError(f"--block-timeout must be 1..10000 ms, got {timeout}")
    if timeout >= BLOCK_TIMEOUT_MS:
        return LiveInterface(args.interface, bpf=args.bpf, block_timeout_ms=timeout)
    block_size = 1 << 18
    return LiveInterface(
        args.interface,
        bpf=args.bpf,
        block_size=block_size,
        blocks=RING_BYTES // block_size,
        block_timeout_ms=timeout,
    )


def build_source(args: argparse.Namespace) -> CaptureFile | LiveInterface:
    """The capture file (``-``: stdin) or the live interface the arguments name."""
    if not args.pcap:
        return live_source(args)
    if args.bpf:
        raise DetectError("--bpf applies to --interface only")
    if getattr(args, "block_timeout", None) is not None:
        raise DetectError("--block-timeout applies to --interface only")
    return CaptureFile("/dev/stdin" if args.pcap == "-" else args.pcap)


def build_config(args: argparse.Namespace) -> SensorConfig:
    # Without a config file the retransmit detector runs with its defaults.
    config = load_config(args.config) if args.config else SensorConfig().with_detector("retransmit")
    if args.retransmit_threshold is not None:
        if args.retransmit_threshold < 1:
            raise DetectError("--retransmit-threshold must be at least 1")
        config = config.with_detector("retransmit", threshold=args.retransmit_threshold)
    if args.blocklist:
        config = config.with_detector("dns", blocklist=args.blocklist)
    return config


def format_detection(d: Detection) -> str:
    """The human-readable line for one detection."""
    ev = d.evidence.to_dict()
    if d.detector == "retransmit" and d.flow is not None:
        return f"retransmit {d.flow} retransmits={ev.get('retransmits')}"
    if d.detector == "dns":
        addresses = ev.get("addresses")
        joined = ", ".join(str(a) for a in addresses) if isinstance(addresses, list) else ""
        return f"dns {ev.get('qname')} -> {joined} (client {ev.get('client')})"
    details = " ".join(f"{k}={json.dumps(v)}" for k, v in ev.items())
    target = d.host or (f"{d.flow.src}->{d.flow.dst}" if d.flow else "")
    return f"{d.detector} {target} {details}"


def format_stats(stats: SensorStats, final: bool, extra: str = "") -> str:
    parts = [
        f"packets={stats.packets}",
        f"pps={stats.pps:.0f}",
        f"flows={stats.flows}",
        f"detections={stats.detections}",
    ]
    if final:
        parts.insert(1, f"bad={stats.bad_packets}")
        parts.append(f"seconds={stats.seconds:.2f}")
    if stats.drops is not None:
        parts.append(f"drops={stats.drops}")
    if extra:
        parts.append(extra)
    return ("done " if final else "progress ") + " ".join(parts)


def build_trigger(args: argparse.Namespace, out: TextIO, err: TextIO) -> Trigger | None:
    """The trigger for ``--controller`` / ``--dry-run``, else None (detections only)."""
    controller = getattr(args, "controller", None)
    if not controller and not getattr(args, "dry_run", False):
        return None
    config = load_trigger_config(args.config) if args.config else default_config()
    if controller:
        try:
            split_host_port(controller)
        except ValueError as error:
            raise DetectError(f"--controller: {error}") from None
    return Trigger.start(
        config,
        controller=controller,
        credentials=credentials(args) if controller else None,
        out=out,
        err=err,
        as_json=args.json,
        live=bool(args.interface),
    )


def run(args: argparse.Namespace, on_detection: Callable[[Detection], None] | None = None) -> int:
    """Run ``trafex detect``; returns the exit code.

    ``on_detection``, when given, is called with every detection after it is printed:
    the place for a trigger policy (e.g. sending intents to trafexd).
    """
    policy = on_detection
    out: TextIO = sys.stdout
    err: TextIO = sys.stderr
    if not structlog.is_configured():
        logs.configure("warning")  # log lines never mix with detections on stdout
    try:
        config = build_config(args)
        source = build_source(args)
        sensor = Sensor(config, progress_interval=args.progress or 1.0)
        trigger = build_trigger(args, out, err)
        metrics = serve_sensor_metrics(getattr(args, "metrics", None), sensor, trigger)
    except (DetectError, SecurityError) as exc:
        print(f"trafex detect: {exc}", file=err)
        return 2
    except ConfigError as exc:
        print(f"trafex detect: config: {exc}", file=err)
        return 2

    # Sending: queue the intents before printing (a slow stdout must not delay them);
    # --dry-run: print the detection first, then its intents.
    send_first = trigger is not None and trigger.sender is not None

    def emit(d: Detection) -> None:
        if send_first:
            assert trigger is not None
            trigger.on_detection(d, time.time())
        line = json.dumps(d.to_dict()) if args.json else format_detection(d)
        print(line, file=out, flush=True)
        if trigger is not None and not send_first:
            trigger.on_detection(d, 0.0)
        if policy is not None:
            policy(d)

    progress: Callable[[SensorStats], None] | None = None
    if args.progress:

        def progress(stats: SensorStats) -> None:
            extra = trigger.stats_text(final=False) if trigger is not None else ""
            print(format_stats(stats, final=False, extra=extra), file=err, flush=True)

    previous = _install_signals(sensor)
    try:
        stats = (metrics or sensor).run(source, emit, progress)
    except DetectError as exc:
        print(f"trafex detect: {exc}", file=err)
        return 2
    except BrokenPipeError:
        return 0
    finally:
        if trigger is not None:
            trigger.close()  # before the handlers go: a second Ctrl-C only asks to stop
        if metrics is not None:
            metrics.stop()
        _restore_signals(previous)
    extra = trigger.stats_text(final=True) if trigger is not None else ""
    print(format_stats(stats, final=True, extra=extra), file=err, flush=True)
    return 0


_Handler = Callable[[int, FrameType | None], object] | int | None


def _install_signals(sensor: Sensor) -> dict[int, _Handler]:
    previous: dict[int, _Handler] = {}

    def on_hup(_sig: int, _frame: FrameType | None) -> None:
        sensor.reload()

    def on_stop(_sig: int, _frame: FrameType | None) -> None:
        sensor.stop()

    for sig, handler in (
        (signal.SIGHUP, on_hup),
        (signal.SIGTERM, on_stop),
        (signal.SIGINT, on_stop),
    ):
        with contextlib.suppress(ValueError):  # not the main thread (tests)
            previous[sig] = signal.signal(sig, handler)
    return previous


def _restore_signals(previous: dict[int, _Handler]) -> None:
    for sig, handler in previous.items():
        signal.signal(sig, handler)
