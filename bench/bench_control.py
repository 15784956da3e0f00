"""Controller benchmark: N IPv6 FlowSpec rules through trafex's API until a real FRR
has received all of them, then withdrawn; rules/s both ways and trafexd's peak RSS.
Then --hold rules held at once, with trafexd's RSS.

Needs root (a network namespace for FRR). Prints numbers; asserts nothing.
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "integration"))

from frr import FrrRouter  # noqa: E402
from peered import peered  # noqa: E402
from scratch import scratch  # noqa: E402
from trafexd import Trafexd  # noqa: E402

from trafex.api.adapter import rule_to_spec  # noqa: E402
from trafex.api.stubs import trafex_pb2 as pb  # noqa: E402
from trafex.bgp.client import GobgpClient  # noqa: E402
from trafex.model.grammar import parse_rule  # noqa: E402


def _rss_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _received(router: FrrRouter) -> int:
    data = router.vtysh_json("show bgp ipv6 flowspec summary json")
    peers = data.get("peers", {}) if isinstance(data, dict) else {}
    return sum(int(p.get("pfxRcd", 0)) for p in peers.values())


def _rules(count: int, offset: int = 0) -> list[Any]:
    out = []
    for i in range(offset, offset + count):
        text = (
            f"destination 3001:4:b::{i // 65536:x}:{i % 65536:x}/128 "
            f"source 3001:1:a::10/128 protocol =tcp destination-port =443 rate-limit 1000"
        )
        out.append(pb.AddFlowRequest(flow=rule_to_spec(parse_rule(text))))
    return out


def _wait(router: FrrRouter, target: int, timeout: float) -> float:
    start = time.monotonic()
    while _received(router) != target:
        if time.monotonic() - start > timeout:
            raise SystemExit(f"bench: FRR has {_received(router)} rules, expected {target}")
        time.sleep(0.02)
    return time.monotonic()


def _round(
    trafexd: Trafexd, router: FrrRouter, args: argparse.Namespace, clients: int
) -> tuple[float, float, float]:
    """Add ``args.count`` rules in batches from ``clients`` concurrent callers until FRR
    has them all, then withdraw them; (add rules/s, API seconds, withdraw rules/s)."""
    requests = _rules(args.count)
    batches = [
        pb.AddFlowsRequest(flows=requests[i : i + args.batch])
        for i in range(0, len(requests), args.batch)
    ]
    with ThreadPoolExecutor(clients) as pool:
        start = time.monotonic()
        responses = list(pool.map(lambda b: trafexd.stub.AddFlows(b, timeout=120), batches))
        api_done = time.monotonic()
        frr_done = _wait(router, args.count, 120)
        ids = [r.rule.meta.id for response in responses for r in response.results]
        deletes = [
            pb.DeleteFlowsRequest(ids=ids[i : i + args.batch])
            for i in range(0, len(ids), args.batch)
        ]
        withdraw_start = time.monotonic()
        list(pool.map(lambda d: trafexd.stub.DeleteFlows(d, timeout=120), deletes))
        gone = _wait(router, 0, 120)
    return (
        args.count / (frr_done - start),
        api_done - start,
        args.count / (gone - withdraw_start),
    )


def _baseline(trafexd: Trafexd, router: FrrRouter, args: argparse.Namespace) -> tuple[float, float]:
    """The machine's ceiling: the rules sent to the same gobgpd with GobgpClient (binary
    paths, AddPathStream), no validation, store or API; (add, withdraw) rules/s."""
    rules = [
        parse_rule(
            f"destination 3001:4:b::{i // 65536:x}:{i % 65536:x}/128 "
            f"source 3001:1:a::10/128 protocol =tcp destination-port =443 rate-limit 1000"
        )
        for i in range(args.count)
    ]
    client = GobgpClient(trafexd.gobgp_api)
    try:
        start = time.monotonic()
        client.announce(rules, batch_size=args.batch)
        added = _wait(router, args.count, 120)
        withdraw_start = time.monotonic()
        client.withdraw([r.match for r in rules], batch_size=args.batch)
        gone = _wait(router, 0, 120)
    finally:
        client.close()
    return args.count / (added - start), args.count / (gone - withdraw_start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument(
        "--clients",
        type=lambda text: [int(n) for n in text.split(",")],
        default=[1, 2],
        help="concurrent API callers, one round each (default 1,2)",
    )
    parser.add_argument("--hold", type=int, default=100_000, help="0 to skip")
    args = parser.parse_args(argv)
    # trafexd's default reconcile interval (the tests use 5 s: a reconcile would land
    # in most runs). The guard's default cap (10,000 rules in force) is lifted for --hold.
    no_cap = "[guard]\nmax_rules = 0\n"
    with (
        scratch("trafex-bench.") as folder,
        peered(folder.path, (6,), reconcile_interval=30, extra=no_cap) as (router, trafexd),
    ):
        assert trafexd.process is not None
        pid = trafexd.process.pid
        for clients in args.clients:
            add_rate, api_secs, del_rate = _round(trafexd, router, args, clients)
            print(
                f"control: {args.count} IPv6 FlowSpec rules, batches of {args.batch}, "
                f"{clients} client{'s' if clients > 1 else ''}"
            )
            print(
                f"  add API→FRR RIB:     {add_rate:10.0f} rules/s"
                f"  (API answered after {api_secs:.2f} s)"
            )
            print(f"  withdraw API→FRR:    {del_rate:10.0f} rules/s")
        print(f"  trafexd peak RSS:    {_rss_kib(pid, 'VmHWM') / 1024:10.1f} MiB")
        add_rate, del_rate = _baseline(trafexd, router, args)
        print("baseline: the same rules streamed straight to gobgpd from Python (no trafexd)")
        print(f"  add Python→FRR RIB:  {add_rate:10.0f} rules/s")
        print(f"  withdraw:            {del_rate:10.0f} rules/s")
        if args.hold:
            requests = _rules(args.hold, offset=1_000_000)
            start = time.monotonic()
            for i in range(0, len(requests), args.batch):
                trafexd.stub.AddFlows(
                    pb.AddFlowsRequest(flows=requests[i : i + args.batch]), timeout=120
                )
            _wait(router, args.hold, 300)
            print(
                f"  hold {args.hold} rules: on FRR after {time.monotonic() - start:.1f} s, "
                f"trafexd RSS {_rss_kib(pid, 'VmRSS') / 1024:.1f} MiB "
                f"(peak {_rss_kib(pid, 'VmHWM') / 1024:.1f} MiB)"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
