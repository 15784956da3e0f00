"""Reconcile benchmark: a controller (real store, real gobgpd, no peer) holding
``--rules`` FlowSpec rules, reconciled ``--runs`` times with nothing to repair (the
steady state: every 30 s by default), then once with 1% of the paths gone from
gobgpd. Prints seconds per reconcile, paths read per second, the Python memory one
reconcile allocates at its peak (tracemalloc), and this process's RSS before and after
the runs, with glibc's allocator tuned as trafexd tunes it (``--glibc-default``: not).
Prints numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "integration"))

from gobgpd import bare_gobgpd, gobgpd_missing_reason  # noqa: E402
from scratch import scratch  # noqa: E402

from trafex import allocator, logs  # noqa: E402
from trafex.bgp.client import GobgpClient  # noqa: E402
from trafex.control.controller import Controller, IntentOptions  # noqa: E402
from trafex.control.events import EventBus  # noqa: E402
from trafex.control.guardrails import Guards  # noqa: E402
from trafex.control.store import Store  # noqa: E402
from trafex.model.flowspec import FlowRule  # noqa: E402
from trafex.model.grammar import parse_rule  # noqa: E402


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def rules(count: int) -> list[FlowRule]:
    """Half IPv4 /32, half IPv6 /128 destinations, one action set (as the soak's)."""
    out = []
    for i in range(count):
        if i % 2:
            destination = f"3001:4:b::{i // 2 >> 16:x}:{i // 2 & 0xFFFF:x}/128"
        else:
            destination = f"10.{i // 2 >> 16 & 0xFF}.{i // 2 >> 8 & 0xFF}.{i // 2 & 0xFF}/32"
        out.append(
            parse_rule(f"destination {destination} protocol =tcp destination-port =443 discard")
        )
    return out


def timed(controller: Controller) -> float:
    start = time.perf_counter()
    controller.reconcile("bench")
    return time.perf_counter() - start


def run(controller: Controller, client: GobgpClient, held: list[FlowRule], runs: int) -> None:
    start = time.perf_counter()
    for i in range(0, len(held), 10_000):
        controller.add([(rule, IntentOptions(origin="bench")) for rule in held[i : i + 10_000]])
    controller.flush()
    print(
        f"reconcile: {len(held)} rules stored and announced in {time.perf_counter() - start:.1f} s"
    )
    timed(controller)  # the first: warms the caches
    rss_before = rss_mib()
    seconds = [timed(controller) for _ in range(runs)]
    rss_after = rss_mib()
    median = statistics.median(seconds)
    print(
        f"  steady state: {median:.2f} s per reconcile (median of {runs}, min "
        f"{min(seconds):.2f}), {len(held) / median:,.0f} paths read/s"
    )
    print(f"  RSS of this process: {rss_before:.1f} MiB before the runs, {rss_after:.1f} after")
    tracemalloc.start()
    timed(controller)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"  Python memory a reconcile allocates at its peak: {peak / 2**20:.1f} MiB")
    lost = held[::100]
    client.withdraw(lost)
    result = controller.reconcile("bench")
    print(f"  1% gone from gobgpd ({len(lost)} paths): repaired {result.announced}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rules", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument(
        "--glibc-default",
        action="store_true",
        help="leave glibc's mmap threshold adjusting itself (trafexd fixes it)",
    )
    args = parser.parse_args(argv)
    logs.configure("warning", "console")  # the controller's "reconciled" lines are not numbers
    tuned = False if args.glibc_default else allocator.fix_mmap_threshold()
    print(f"reconcile: glibc mmap threshold {'fixed, as trafexd does' if tuned else 'adjusting'}")
    reason = gobgpd_missing_reason()
    if reason:
        print(f"bench reconcile: cannot run here: {reason}")
        return 2
    with (
        scratch("trafex-bench-reconcile.") as folder,
        bare_gobgpd(folder.path, timeout=5.0) as client,
    ):
        store = Store(folder.path / "state")
        guards = Guards(max_rules=0, max_routes=0)
        controller = Controller(store, client, EventBus(), guards=guards)
        try:
            run(controller, client, rules(args.rules), args.runs)
        finally:
            controller.close()
            store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
