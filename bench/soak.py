"""Soak: a real trafexd (with its gobgpd) peered with a real FRR bgpd in a namespace,
loaded with 100,000 active FlowSpec rules (half IPv4, half IPv6) through the typed
client's batched AddFlows, then churned (the oldest rules withdrawn, as many new ones
added) at 1,000 changes per second for ``--seconds`` (default 600, or ``SOAK_SECONDS``).

Prints trafexd's RSS (VmRSS from /proc) after loading and at the end, every error, the
achieved churn rate, and whether FRR's FlowSpec table equals trafex's at the end (the
count and the set of rules). Needs root (a network namespace for FRR). Cleans up the
daemons and the namespace by PID on the way out, also on failure, Ctrl-C or SIGTERM.
Prints numbers; asserts nothing (exit 1 when the tables differ or a step failed).
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import signal
import sys
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "integration"))

from frr import FrrRouter, frr_missing_reason  # noqa: E402
from peered import peered  # noqa: E402
from scratch import scratch  # noqa: E402

from trafex.api.client import ApiError, TrafexClient  # noqa: E402
from trafex.control.changes import IntentOptions  # noqa: E402
from trafex.model.flowspec import FlowRule  # noqa: E402
from trafex.model.grammar import parse_rule  # noqa: E402

# The guard's default cap (10,000 active rules) lifted for the soak; no per-origin rate.
EXTRA_CONFIG = "[guard]\nmax_rules = 0\n"
OPTIONS = IntentOptions(reason="soak", origin="soak")


def rule_for(index: int) -> FlowRule:
    """Rule ``index``: a /32 (even) or /128 (odd) destination unique to it."""
    if index % 2 == 0:
        host = ipaddress.IPv4Address(0x0A000000 + index // 2)
        destination = f"{host}/32"
    else:
        destination = f"3001:4:b::{index // 2 >> 16:x}:{index // 2 & 0xFFFF:x}/128"
    return parse_rule(
        f"destination {destination} protocol =tcp destination-port =443 rate-limit 1000"
    )


def rss_kib(pid: int, name: str = "VmRSS") -> int:
    """A /proc/PID/status memory figure in KiB (0 if the process is gone)."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return 0
    for line in lines:
        if line.startswith(name + ":"):
            return int(line.split()[1])
    return 0


@dataclass
class Errors:
    """Every error seen, printed as it happens and counted."""

    lines: list[str] = field(default_factory=list)

    def add(self, what: str, error: BaseException) -> None:
        line = f"{what}: {type(error).__name__}: {error}"
        self.lines.append(line)
        print(f"  ERROR {line}", flush=True)


def frr_count(router: FrrRouter) -> int:
    """FlowSpec rules FRR has received from trafex, both families (the summaries)."""
    total = 0
    for afi in ("ipv4", "ipv6"):
        data = router.vtysh_json(f"show bgp {afi} flowspec summary json")
        peers = data.get("peers", {}) if isinstance(data, dict) else {}
        total += sum(int(p.get("pfxRcd", 0)) for p in peers.values())
    return total


def wait_count(router: FrrRouter, target: int, timeout: float) -> float | None:
    """Seconds until FRR holds ``target`` rules; None if it did not within ``timeout``."""
    start = time.monotonic()
    while frr_count(router) != target:
        if time.monotonic() - start > timeout:
            return None
        time.sleep(0.5)
    return time.monotonic() - start


def load(client: TrafexClient, count: int, batch: int, errors: Errors) -> deque[str]:
    """Add rules 0..count-1 in batches; the ids stored, oldest first."""
    ids: deque[str] = deque()
    for start in range(0, count, batch):
        items = [(rule_for(i), OPTIONS) for i in range(start, min(start + batch, count))]
        try:
            ids.extend(added.intent.meta.id for added in client.add_flows(items))
        except ApiError as error:
            errors.add(f"load batch at {start}", error)
    return ids


@dataclass
class Churn:
    """The churn's outcome: changes done, seconds taken, the next rule index."""

    added: int = 0
    withdrawn: int = 0
    seconds: float = 0.0
    next_index: int = 0


def churn(
    client: TrafexClient,
    ids: deque[str],
    first: int,
    args: argparse.Namespace,
    errors: Errors,
    pids: tuple[int, int],
) -> Churn:
    """Every tick (0.1 s) withdraw the oldest rules and add as many new ones: ``rate``
    changes per second in all, half withdrawals, half additions, for ``seconds``. Each
    minute prints the rate so far and the RSS of ``pids`` (trafexd, gobgpd)."""
    tick = 0.1
    per_tick = max(1, round(args.rate * tick / 2))
    result = Churn(next_index=first)
    start = time.monotonic()
    ticks = 0
    while time.monotonic() - start < args.seconds:
        gone = [ids.popleft() for _ in range(min(per_tick, len(ids)))]
        try:
            deleted = client.delete_flows(gone)
            result.withdrawn += deleted.count
            if deleted.not_found:
                errors.add("churn delete", LookupError(f"not found: {deleted.not_found}"))
        except ApiError as error:
            errors.add("churn delete", error)
        index = result.next_index
        items = [(rule_for(i), OPTIONS) for i in range(index, index + per_tick)]
        result.next_index += per_tick
        try:
            ids.extend(added.intent.meta.id for added in client.add_flows(items))
            result.added += len(items)
        except ApiError as error:
            errors.add("churn add", error)
        ticks += 1
        delay = start + ticks * tick - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        if ticks % round(60 / tick) == 0:
            rate = (result.added + result.withdrawn) / (time.monotonic() - start)
            print(
                f"  {time.monotonic() - start:6.0f} s: {rate:7.0f} changes/s, RSS trafexd "
                f"{rss_kib(pids[0]) / 1024:.1f} MiB, gobgpd {rss_kib(pids[1]) / 1024:.1f} MiB",
                flush=True,
            )
    result.seconds = time.monotonic() - start
    return result


def frr_destinations(router: FrrRouter) -> list[str]:
    """The destination of every FlowSpec path FRR holds, both families, read from
    ``show bgp AFI flowspec json`` (tens of MB for 100,000 rules)."""
    out: list[str] = []
    for afi in ("ipv4", "ipv6"):
        text = router.vtysh(f"show bgp {afi} flowspec json", timeout=600)
        data: Any = json.loads(text) if text.strip() else {}
        for paths in (data.get("routes") or {}).values():
            # IPv6 prefixes come as "3001:4:b::1/128/off 0".
            out.extend(str(path.get("to", "")).split("/off")[0].strip() for path in paths)
    return out


def compare(client: TrafexClient, router: FrrRouter, expected: int) -> bool:
    """Print whether FRR's table equals trafex's: count and set of destinations."""
    intents = client.list_flows()
    ours = {str(i.rule.match.destination) for i in intents}
    waited = wait_count(router, len(intents), 300)
    theirs_list = frr_destinations(router)
    theirs = {str(ipaddress.ip_network(d)) for d in theirs_list if d}
    equal = len(theirs_list) == len(intents) and theirs == ours
    print(f"trafex: {len(intents)} rules (expected {expected}); FRR: {len(theirs_list)} paths")
    if waited is None:
        print("  FRR's count did not reach trafex's within 300 s")
    print(f"  FRR's table equals trafex's: {'yes' if equal else 'NO'}")
    if not equal:
        print(f"  only in trafex: {len(ours - theirs)} e.g. {sorted(ours - theirs)[:5]}")
        print(f"  only on FRR:    {len(theirs - ours)} e.g. {sorted(theirs - ours)[:5]}")
    return equal


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def run(args: argparse.Namespace) -> int:
    with scratch("trafex-soak.") as folder:
        status = soak(args, folder.path)
        folder.keep = status != 0
    return status


def soak(args: argparse.Namespace, workdir: Path) -> int:
    errors = Errors()
    limit = args.gobgp_memory_limit
    print(
        f"soak: {args.rules} rules, churn {args.rate}/s for {args.seconds:.0f} s, "
        f"reconcile every {args.reconcile:.0f} s, gobgpd memory_limit {limit or 'none'}, "
        f"in {workdir}"
    )
    gobgp_options = [f'memory_limit = "{limit}"'] if limit else []
    with (
        peered(
            workdir,
            reconcile_interval=args.reconcile,
            extra=EXTRA_CONFIG,
            gobgp_options=gobgp_options,
        ) as (router, trafexd),
        TrafexClient(trafexd.api, timeout=300) as client,
    ):
        assert trafexd.process is not None
        pid = trafexd.process.pid
        start = time.monotonic()
        ids = load(client, args.rules, args.batch, errors)
        api_secs = time.monotonic() - start
        on_frr = wait_count(router, len(ids), args.load_timeout)
        print(f"load: {len(ids)} rules through the API in {api_secs:.1f} s", end="")
        if on_frr is None:
            print(f"; FRR has {frr_count(router)} after {args.load_timeout:.0f} s more")
        else:
            print(f"; all on FRR {api_secs + on_frr:.1f} s after the first")
        rss_start = rss_kib(pid)
        gobgpd_start = rss_kib(trafexd.sidecar_pid())
        print(
            f"trafexd RSS at start: {rss_start / 1024:.1f} MiB (gobgpd {gobgpd_start / 1024:.1f})"
        )
        done = churn(client, ids, args.rules, args, errors, (pid, trafexd.sidecar_pid()))
        rss_end = rss_kib(pid)
        gobgpd_end = rss_kib(trafexd.sidecar_pid())
        rate = (done.added + done.withdrawn) / done.seconds if done.seconds else 0.0
        print(
            f"churn: {done.added} added, {done.withdrawn} withdrawn in {done.seconds:.1f} s: "
            f"{rate:.0f} changes/s (asked {args.rate})"
        )
        growth = 100 * (rss_end - rss_start) / rss_start if rss_start else 0.0
        print(
            f"trafexd RSS at end: {rss_end / 1024:.1f} MiB ({growth:+.1f}%), peak "
            f"{rss_kib(pid, 'VmHWM') / 1024:.1f} MiB (gobgpd {gobgpd_end / 1024:.1f})"
        )
        equal = compare(client, router, args.rules)
    print(f"errors: {len(errors.lines)}")
    for line in errors.lines:
        print(f"  {line}")
    return 0 if equal and not errors.lines else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--seconds", type=float, default=float(os.environ.get("SOAK_SECONDS", "600"))
    )
    parser.add_argument("--rules", type=int, default=100_000)
    parser.add_argument("--rate", type=int, default=1000, help="changes per second")
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--load-timeout", type=float, default=900)
    parser.add_argument(
        "--reconcile", type=float, default=30, help="trafexd's reconcile_interval (its default)"
    )
    parser.add_argument(
        "--gobgp-memory-limit",
        default="",
        metavar="SIZE",
        help='the sidecar\'s [gobgp] memory_limit ("1GiB"); default: none',
    )
    args = parser.parse_args(argv)
    reason = frr_missing_reason()
    if reason or os.geteuid() != 0:
        print(f"soak: cannot run here: {reason or 'needs root for a network namespace'}")
        return 2
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        return run(args)
    except KeyboardInterrupt:
        print("soak: interrupted; daemons and namespace cleaned up")
        return 130


if __name__ == "__main__":
    sys.exit(main())
