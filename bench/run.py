"""`make bench`: every benchmark, each printing its own numbers (nothing is asserted).

make bench                                   all of them
make bench BENCH_ARGS="control --count 20000 --hold 0"
make bench BENCH_ARGS="trigger --live-rate 50000"
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

BENCHMARKS = {
    "control": "bench_control",  # API → gobgpd → FRR, rules/s and trafexd's RSS
    "reconcile": "bench_reconcile",  # one reconcile of 100k rules: seconds, memory
    "detect": "bench_detect",  # the sensor's packets/s against a talk-style Scapy loop
    "trigger": "bench_trigger",  # packet → intent accepted by trafexd: latency, intents/s
}


def main(argv: list[str]) -> int:
    names = [argv[0]] if argv and argv[0] in BENCHMARKS else list(BENCHMARKS)
    rest = argv[1:] if argv and argv[0] in BENCHMARKS else argv
    status = 0
    for name in names:
        try:
            module = importlib.import_module(BENCHMARKS[name])
        except ModuleNotFoundError as error:
            print(f"bench {name}: not available ({error})")
            continue
        print(f"== {name}", flush=True)
        status |= module.main(rest)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
