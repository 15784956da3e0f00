"""``trafex lab up | down | status | exec | demo | clab``: the talk's four-router lab."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from trafex import logs
from trafex.config import ConfigError
from trafex.lab.runner import DEFAULT_PREFIX, Lab, LabError
from trafex.lab.topology import TOPOLOGY_FILE, load_topology
from trafex.model.errors import TrafexError

EXAMPLES = """examples:
  sudo trafex lab up                      # 4 FRR routers, hosts, trafexd, enforcer, sensor
  trafex lab exec host1 -- traceroute -6 -n -s 3001:1:a::10 3001:4:b::10
  trafex lab exec controller -- trafex-ctl list-flows
  trafex lab vtysh router4 'show bgp ipv6 unicast 3001:10:66::5/128'
  trafex lab exec router1 -- trafex enforce status --config lab/routers/router1/enforce.toml
  trafex lab demo dns                     # exits 0 only when the path change was seen
  trafex lab demo retransmit
  trafex lab down                         # removes everything, also after a crash
"""


def add_parser(sub: Any) -> None:
    parser = sub.add_parser(
        "lab",
        help="the four-router lab of the talk, in network namespaces",
        description="Build, inspect and remove the lab of lab/topology.toml, and run the "
        "talk's two demos in it.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--prefix", default=DEFAULT_PREFIX, help="namespace name prefix")
    parser.add_argument("--topology", type=Path, default=TOPOLOGY_FILE, help=argparse.SUPPRESS)
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    up = verbs.add_parser("up", help="build the lab; returns once every BGP session is up")
    up.add_argument("--timeout", type=float, default=30.0, help="seconds (default 30)")
    up.set_defaults(func=cmd_up)
    verbs.add_parser("down", help="remove everything the lab made").set_defaults(func=cmd_down)
    status = verbs.add_parser("status", help="namespaces, processes, BGP sessions")
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=cmd_status)
    run = verbs.add_parser("exec", help="run a command in a node: exec NODE -- CMD …")
    run.add_argument("node")
    run.add_argument("argv", nargs=argparse.REMAINDER, metavar="-- CMD")
    run.set_defaults(func=cmd_exec)
    vty = verbs.add_parser("vtysh", help="an FRR command on a router: vtysh NODE 'show …'")
    vty.add_argument("node")
    vty.add_argument("command", help="e.g. 'show bgp ipv6 unicast'")
    vty.set_defaults(func=cmd_vtysh)
    demo = verbs.add_parser("demo", help="run one of the talk's demos and check its result")
    demo.add_argument("name", choices=("dns", "retransmit"))
    demo.add_argument("--json", action="store_true", help="the result as JSON")
    demo.set_defaults(func=cmd_demo)
    clab = verbs.add_parser("clab", help="print the containerlab topology (lab/trafex.clab.yml)")
    clab.set_defaults(func=cmd_clab)
    pki = verbs.add_parser("pki", help="make the API's CA, certificate and token (once)")
    pki.set_defaults(func=cmd_pki)


def _lab(args: argparse.Namespace) -> Lab:
    return Lab(load_topology(args.topology), prefix=args.prefix)


def run(args: argparse.Namespace) -> int:
    """Run one verb; a user's mistake or a missing piece is one line and exit 2/1."""
    logs.configure("warning")
    try:
        result: int = args.func(args)
    except ConfigError as error:
        print(f"trafex lab: {error}", file=sys.stderr)
        return 2
    except (LabError, TrafexError, OSError) as error:
        print(f"trafex lab: {error}", file=sys.stderr)
        return 1
    return result


def cmd_up(args: argparse.Namespace) -> int:
    lab = _lab(args)
    seconds = lab.up(timeout=args.timeout)
    print(f"lab {args.prefix!r} up in {seconds:.1f} s: every BGP session established")
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    problems = _lab(args).down()
    for problem in problems:
        print(f"trafex lab: {problem}", file=sys.stderr)
    return 1 if problems else 0


def cmd_status(args: argparse.Namespace) -> int:
    data = _lab(args).status()
    if args.json:
        print(json.dumps(data, indent=1))
        return 0
    if not data["namespaces"]:
        print(f"lab {args.prefix!r} is down")
        return 1
    print(f"lab {args.prefix!r}: {len(data['namespaces'])} namespaces, run dir {data['rundir']}")
    for proc in data["processes"]:
        state = "alive" if proc["alive"] else "DEAD"
        print(f"  {proc['node']:<10} {proc['name']:<8} pid {proc['pid']:<8} {state}")
    for node, peers in data["bgp"].items():
        for peer, state in peers.items():
            print(f"  bgp {node:<16} -> {peer:<18} {state}")
    return 0


def cmd_exec(args: argparse.Namespace) -> int:
    argv = list(args.argv)
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        print("trafex lab: give a command: trafex lab exec NODE -- CMD …", file=sys.stderr)
        return 2
    return _lab(args).exec(args.node, argv)


def cmd_vtysh(args: argparse.Namespace) -> int:
    sys.stdout.write(_lab(args).vtysh(args.node, args.command))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from trafex.lab import demo

    lab = _lab(args)
    result = demo.run(lab, args.name)
    if args.json:
        print(json.dumps(result.as_dict(), indent=1))
    else:
        print(result.report())
    return 0 if result.ok else 1


def cmd_clab(args: argparse.Namespace) -> int:
    from trafex.lab.clab import render

    sys.stdout.write(render(load_topology(args.topology)))
    return 0


def cmd_pki(args: argparse.Namespace) -> int:
    """Make (or keep) the lab's PKI: `trafex lab up` does it too; containerlab needs it
    before `containerlab deploy`."""
    access = _lab(args).make_pki()
    print(f"{access.pki}: CA {access.ca.name}, trafexd's certificate and key; token {access.token}")
    return 0
