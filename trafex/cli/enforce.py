"""``trafex enforce run | status | check-config``: the Linux FlowSpec enforcer."""

from __future__ import annotations

import argparse
import json
import sys
import threading
from pathlib import Path
from typing import Any

from trafex import logs
from trafex.bgp.client import GobgpClient, SidecarError
from trafex.config import ConfigError
from trafex.enforce import nftables, routing
from trafex.enforce.config import EnforceConfig, load_enforce_config
from trafex.enforce.daemon import Enforcer, read_state
from trafex.model.errors import TrafexError
from trafex.stopping import stop_event

EXAMPLES = """examples:
  trafex enforce run --config /etc/trafex/enforce.toml
  trafex enforce status              # each rule with its packet and byte counters
  trafex enforce status --json
  trafex enforce check-config /etc/trafex/enforce.toml
"""


def add_parser(sub: Any) -> None:
    parser = sub.add_parser(
        "enforce",
        help="Linux FlowSpec enforcer: BGP FlowSpec -> nftables + policy routing",
        description="Learn FlowSpec rules over BGP (own gobgpd) and enforce them with "
        "nftables and policy routing (redirect to a route-target's table).",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    run = verbs.add_parser("run", help="run the enforcer until SIGTERM")
    run.add_argument("--config", type=Path, required=True, help="TOML config")
    run.add_argument("--log-level", choices=logs.LEVELS, default="info")
    run.add_argument("--log-format", choices=("auto", "json", "console"), default="auto")
    run.set_defaults(func=cmd_run)
    status = verbs.add_parser("status", help="rules in force with their counters")
    status.add_argument("--config", type=Path, required=True, help="TOML config")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(func=cmd_status)
    check = verbs.add_parser("check-config", help="check a config file and exit")
    check.add_argument("file", type=Path)
    check.set_defaults(func=cmd_check)


def run(args: argparse.Namespace) -> int:
    """Run one verb; a bad config is one line naming the key and exit 2."""
    try:
        result: int = args.func(args)
    except ConfigError as error:
        print(f"trafex enforce: {error}", file=sys.stderr)
        return 2
    return result


def cmd_check(args: argparse.Namespace) -> int:
    config = load_enforce_config(args.file)
    settings = config.enforce
    print(
        f"{args.file}: ok (AS {config.bgp.asn}, {len(config.bgp.neighbors)} neighbor(s), "
        f"table inet {settings.table}, {len(settings.redirects)} redirect target(s))"
    )
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    logs.configure(args.log_level, args.log_format)
    enforcer = Enforcer(load_enforce_config(args.config))
    done = stop_event("enforce", also=enforcer.wake)
    try:
        enforcer.start()
    except (TrafexError, OSError) as error:
        print(f"trafex enforce: {error}", file=sys.stderr)
        enforcer.stop()
        return 1
    runner = threading.Thread(target=enforcer.run, name="apply", daemon=True)
    runner.start()
    done.wait()
    enforcer.stop()
    runner.join(timeout=5)
    return 0


def status_data(config: EnforceConfig) -> dict[str, Any]:
    """What ``status`` shows: the rules of the last rebuild with their live counters,
    the peers, the policy routing."""
    state = read_state(config) or {}
    table = config.enforce.table
    try:
        counters = nftables.counters(table)
    except TrafexError:
        counters = {}
    rules = []
    for rule in state.get("rules", []):
        packets, octets = counters.get(rule.get("counter") or "", (0, 0))
        rules.append({**rule, "packets": packets, "bytes": octets})
    client = GobgpClient(config.gobgp.api, timeout=2.0)
    try:
        peers = [
            {"address": p.address, "peer_as": p.peer_as, "state": p.state, "received": p.received}
            for p in client.peers()
        ]
    except SidecarError as error:
        peers = []
        state.setdefault("error", str(error))
    finally:
        client.close()
    try:
        policy = routing.installed()
    except (TrafexError, OSError):
        policy = []
    return {
        "running": bool(state),
        "table": f"inet {table}",
        "rules": rules,
        "undecodable": state.get("undecodable", []),
        "peers": peers,
        "policy_routing": policy,
        **({"error": state["error"]} if "error" in state else {}),
    }


def cmd_status(args: argparse.Namespace) -> int:
    data = status_data(load_enforce_config(args.config))
    if args.json:
        print(json.dumps(data, indent=1))
        return 0 if data["running"] else 1
    if not data["running"]:
        print("trafex enforce: not running (no state file)", file=sys.stderr)
        return 1
    installed = [r for r in data["rules"] if not r["refused"]]
    refused = [r for r in data["rules"] if r["refused"]]
    peers = ", ".join(f"{p['address']} {p['state']}" for p in data["peers"]) or "none"
    print(f"Filter: {data['table']}   peers: {peers}")
    print(f"{'Name':<60} {'Bytes':>12} {'Packets':>10}")
    for rule in installed:
        print(f"{rule['text']:<60} {rule['bytes']:>12} {rule['packets']:>10}")
    for rule in refused:
        print(f"REFUSED {rule['text']}: {rule['refused']}")
    for flow in data["undecodable"]:
        print(f"UNDECODABLE from {flow['peer']}: {flow['error']}")
    for line in data["policy_routing"]:
        print(line)
    return 0
