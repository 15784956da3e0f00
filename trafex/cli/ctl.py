"""trafex-ctl: a client of trafexd's gRPC API, as ``gobgp`` is of ``gobgpd``."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Callable
from typing import Any

from trafex.api.client import (
    Added,
    ApiError,
    ExhaustedError,
    IntentOptions,
    PreconditionError,
    RefusedError,
    TrafexClient,
    UnauthenticatedError,
    UnreachableError,
)
from trafex.api.security import SecurityError
from trafex.cli.auth import add_auth_options, credentials
from trafex.cli.output import expires_in, intent_dict, iso, table
from trafex.control.config import DEFAULT_API
from trafex.model.components import COMPONENTS, ComponentKind, Family
from trafex.model.duration import parse_duration
from trafex.model.errors import ValidationError
from trafex.model.flowspec import FlowRule
from trafex.model.grammar import parse_match, parse_rule
from trafex.model.intent import MAX_TTL, ORIGIN_CLI
from trafex.model.route import parse_prefix, parse_route

EXAMPLES = """examples:
  trafex-ctl add-flow --source 3001:1:a::10/128 --destination 3001:4:b::10/128 --redirect 6:302
  trafex-ctl add-flow "source 3001:1:a::10/128 destination 3001:4:b::10/128 redirect 6:302"
  trafex-ctl add-flow --destination 192.0.2.1/32 --protocol tcp \\
      --destination-port '>=1024&<=2048' --tcp-flags S --rate-limit 125000 --ttl 10m
  trafex-ctl add-flow --destination 192.0.2.0/24 --discard --dry-run
  trafex-ctl list-flows --json
  trafex-ctl del-flow fs-3f2a9c0d11e2
  trafex-ctl add-route 3001:10:66::5/128 --community 65000:666 --ttl 1h
  trafex-ctl status
"""

# What an id looks like (new_id: fs-/rt- and 12 hex digits), loosely: anything after
# fs-/rt- is taken as an id, so a mistyped one is answered "no flow rule with id ..."
# (NOT_FOUND), not parsed as a rule. No keyword of the grammar starts so.
_ID = re.compile(r"^(fs|rt)-\S+$")


class UsageError(Exception):
    """A user's mistake caught before anything is sent."""


def parse_ttl(text: str) -> float:
    """``--ttl``: ``90``, ``90s``, ``10m``, ``2h``, ``1d``, ``1w`` → seconds, more than
    0 and at most 10 years."""
    try:
        seconds = parse_duration(text)
    except ValidationError:
        seconds = 0.0
    if seconds <= 0:
        raise UsageError(f"--ttl: {text!r} is not a duration (90s, 10m, 2h, 1d)")
    if seconds > MAX_TTL:
        raise UsageError(f"--ttl: {text!r} is longer than 10 years")
    return seconds


# -- building rules from options --------------------------------------------------------


def _component_text(keyword: str, value: str) -> str:
    value = value.strip()
    if " " in value and not value.startswith("["):
        value = f"[ {value} ]"
    return f"{keyword} {value}"


def rule_text(args: argparse.Namespace, *, need_actions: bool) -> str:
    """The one-line text for a rule given as options (and/or as TEXT)."""
    parts = [" ".join(args.text)] if args.text else []
    if args.family:
        parts.append(args.family)
    for component in COMPONENTS:
        value = getattr(args, component.attribute)
        if value is None:
            continue
        if component.kind is ComponentKind.PREFIX:
            parts.append(f"{component.keyword} {value.strip()}")
        else:
            parts.append(_component_text(component.keyword, value))
    if need_actions:
        if args.discard:
            parts.append("discard")
        if args.rate_limit is not None:
            parts.append(f"rate-limit {args.rate_limit}")
        if args.redirect:
            parts.append(f"redirect {args.redirect}")
        if args.mark is not None:
            parts.append(f"mark {args.mark}")
        if args.action:
            parts.append(f"action {args.action}")
    text = " ".join(parts).strip()
    if not text:
        raise UsageError("give the rule as TEXT or as options (see --help)")
    return text


def _emit(args: argparse.Namespace, data: Any, text: str) -> None:
    print(json.dumps(data, indent=None if args.command == "watch" else 2) if args.json else text)


# -- commands ---------------------------------------------------------------------------


def _options(args: argparse.Namespace) -> IntentOptions:
    return IntentOptions(
        ttl=parse_ttl(args.ttl) if args.ttl else None,
        reason=args.reason or "",
        origin=args.origin or ORIGIN_CLI,
        force=args.force,
        dry_run=args.dry_run,
    )


def _emit_added(args: argparse.Namespace, added: Added[Any], subject: str) -> int:
    """``added ID: RULE`` or ``updated ...``; for a dry run ``dry run: would announce
    ID: RULE`` (the id a new rule would get; nothing was stored). Exit 0."""
    data = intent_dict(added.intent) | {"created": added.created, "dry_run": added.dry_run}
    line = f"{data['id']}: {data[subject]}"
    if added.dry_run:
        update = "" if added.created else " (an update of the one in force)"
        text = f"dry run: would announce {line}{update}; nothing stored"
    else:
        text = f"{'added' if added.created else 'updated'} {line}"
    _emit(args, data, text)
    return 0


def cmd_add_flow(client: TrafexClient, args: argparse.Namespace) -> int:
    rule: FlowRule = parse_rule(rule_text(args, need_actions=True))
    return _emit_added(args, client.add_flow(rule, _options(args)), "text")


def cmd_del_flow(client: TrafexClient, args: argparse.Namespace) -> int:
    if len(args.text) == 1 and _ID.match(args.text[0]) and not _has_match_options(args):
        intent = client.delete_flow(args.text[0])
    else:
        intent = client.delete_flow(parse_match(rule_text(args, need_actions=False)))
    data = intent_dict(intent)
    _emit(args, data, f"withdrew {data['id']}: {data['text']}")
    return 0


def _has_match_options(args: argparse.Namespace) -> bool:
    return any(getattr(args, c.attribute, None) is not None for c in COMPONENTS)


def cmd_list_flows(client: TrafexClient, args: argparse.Namespace) -> int:
    family = Family(args.family) if args.family else None
    rules = [intent_dict(intent) for intent in client.list_flows(family)]
    rows = [
        (r["id"], r["family"], r["text"], r["origin"], expires_in(r["expires_at"]), r["reason"])
        for r in rules
    ]
    _emit(args, rules, table(rows, ("ID", "FAMILY", "RULE", "ORIGIN", "EXPIRES", "REASON")))
    return 0


def cmd_add_route(client: TrafexClient, args: argparse.Namespace) -> int:
    route = parse_route(  # checked here: one clear line before anything is sent
        args.prefix,
        args.next_hop or "",
        args.community or (),
        args.large_community or (),
        args.local_preference,
        args.med,
    )
    return _emit_added(args, client.add_route(route, _options(args)), "prefix")


def cmd_del_route(client: TrafexClient, args: argparse.Namespace) -> int:
    selector = args.selector if _ID.match(args.selector) else parse_prefix(args.selector)
    data = intent_dict(client.delete_route(selector))
    _emit(args, data, f"withdrew {data['id']}: {data['prefix']}")
    return 0


def cmd_list_routes(client: TrafexClient, args: argparse.Namespace) -> int:
    routes = [intent_dict(intent) for intent in client.list_routes()]
    rows = [
        (
            r["id"],
            r["prefix"],
            r["next_hop"] or "self",
            ",".join(r["communities"] + r["large_communities"]) or "-",
            r["origin"],
            expires_in(r["expires_at"]),
            r["reason"],
        )
        for r in routes
    ]
    header = ("ID", "PREFIX", "NEXT-HOP", "COMMUNITIES", "ORIGIN", "EXPIRES", "REASON")
    _emit(args, routes, table(rows, header))
    return 0


def cmd_status(client: TrafexClient, args: argparse.Namespace) -> int:
    status = client.status()
    side = status.sidecar
    data: dict[str, Any] = {
        "version": status.version,
        "asn": status.asn,
        "router_id": status.router_id,
        "flows": status.flows,
        "routes": status.routes,
        "last_reconcile": iso(status.last_reconcile),
        "sidecar": {
            "healthy": side.healthy,
            "api": side.api,
            "version": side.version,
            "managed": side.managed,
            "pid": side.pid,
            "restarts": side.restarts,
            "error": side.error or None,
            "send_failures": side.send_failures,
            "last_send_error": side.last_send_error or None,
            "queued_paths": side.queued_paths,
        },
        "peers": [
            {
                "address": p.address,
                "peer_as": p.peer_as,
                "state": p.state,
                "families": list(p.families),
                "received": p.received,
                "advertised": p.advertised,
                "up_since": iso(p.uptime_since),
            }
            for p in status.peers
        ],
    }
    health = "healthy" if side.healthy else f"DOWN ({side.error})"
    lines = [
        f"trafexd {status.version}, AS {status.asn}, router-id {status.router_id}",
        f"sidecar: gobgpd {side.version or '?'} at {side.api}, {health}, "
        f"pid {side.pid or '-'}, restarts {side.restarts}, queued paths {side.queued_paths}",
        *(
            [f"sends failed: {side.send_failures} (last: {side.last_send_error})"]
            if side.send_failures
            else []
        ),
        f"intents: {status.flows} FlowSpec rule(s), {status.routes} route(s); "
        f"last reconcile {data['last_reconcile'] or 'never'}",
        "",
        table(
            [
                (
                    p["address"],
                    str(p["peer_as"]),
                    p["state"],
                    ",".join(p["families"]),
                    str(p["advertised"]),
                    str(p["received"]),
                )
                for p in data["peers"]
            ],
            ("PEER", "AS", "STATE", "FAMILIES", "ADVERTISED", "RECEIVED"),
        ),
    ]
    _emit(args, data, "\n".join(lines))
    return 0


def cmd_watch(client: TrafexClient, args: argparse.Namespace) -> int:
    for event in client.watch_events():
        data = {
            "kind": event.kind.value,
            "time": iso(event.time),
            "id": event.id or None,
            "subject": event.subject,
            "detail": event.detail or None,
        }
        text = " ".join(
            str(v) for v in (data["time"], data["kind"], event.id, event.subject, event.detail) if v
        )
        _emit(args, data, text)
        sys.stdout.flush()
    return 0


# -- argument parsing -------------------------------------------------------------------


def _match_options(parser: argparse.ArgumentParser) -> None:
    """TEXT, --family and one option per FlowSpec component (from the component table)."""
    parser.add_argument("text", nargs="*", help="the rule as one-line text (ExaBGP grammar)")
    parser.add_argument("--family", choices=("ipv4", "ipv6"), help="when no prefix says it")
    group = parser.add_argument_group(
        "match components",
        "numbers take terms like '=80', '>=1024&<=2048', '!=0'; several ('=80 =443') are ORed",
    )
    for component in COMPONENTS:
        prefix = component.kind is ComponentKind.PREFIX
        group.add_argument(
            f"--{component.keyword}", metavar="PREFIX" if prefix else "TERMS", help=component.help
        )


def _intent_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ttl", help="expire after 90s, 10m, 2h, 1d (default: never)")
    parser.add_argument("--reason", help="why (shown in list and events)")
    parser.add_argument("--origin", help=f"who asks (default {ORIGIN_CLI})")
    parser.add_argument(
        "--force",
        action="store_true",
        help="past the breadth guard (a discard or rate-limit broader than /24 or /48, "
        "or with no destination); logged by trafexd",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="validate and apply every guard, show what would be announced, change nothing",
    )


def _client(args: argparse.Namespace) -> TrafexClient:
    """The client the options ask for (watch has no deadline); a file that cannot be
    used is a SecurityError naming the option and the file (nothing is sent)."""
    timeout = None if args.command == "watch" else args.timeout
    return credentials(args).client(args.target, timeout=timeout)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="trafex-ctl",
        description="Announce and withdraw FlowSpec rules and routes through trafexd.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--target",
        default=os.environ.get("TRAFEX_TARGET", DEFAULT_API),
        help=f"trafexd's API (env TRAFEX_TARGET, default {DEFAULT_API})",
    )
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per call")
    add_auth_options(parser)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="machine-readable output")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    add = sub.add_parser(
        "add-flow",
        parents=[common],
        help="announce a FlowSpec rule",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _match_options(add)
    actions = add.add_argument_group("actions (bytes/s for rates)")
    actions.add_argument("--discard", action="store_true", help="drop (traffic-rate 0)")
    actions.add_argument("--rate-limit", metavar="BYTES_PER_S", help="traffic-rate in bytes/s")
    actions.add_argument("--redirect", metavar="RT", help="route-target: 6:302, 1.2.3.4:5")
    actions.add_argument("--mark", type=int, metavar="DSCP", help="re-mark DSCP 0..63")
    actions.add_argument("--action", choices=("sample", "terminal", "sample-terminal"))
    _intent_options(add)
    add.set_defaults(func=cmd_add_flow)

    delete = sub.add_parser("del-flow", parents=[common], help="withdraw a rule by id or match")
    _match_options(delete)
    delete.set_defaults(func=cmd_del_flow)

    lst = sub.add_parser("list-flows", parents=[common], help="the rules in force")
    lst.add_argument("--family", choices=("ipv4", "ipv6"))
    lst.set_defaults(func=cmd_list_flows)

    add_route = sub.add_parser("add-route", parents=[common], help="announce a unicast route")
    add_route.add_argument("prefix", help="3001:10:66::5/128, 192.0.2.1 (a host route)")
    add_route.add_argument("--next-hop", help="default: the sidecar's own address")
    add_route.add_argument("--community", action="append", help="65000:666, no-export, ...")
    add_route.add_argument("--large-community", action="append", help="65000:1:2")
    add_route.add_argument("--local-preference", type=int, help="iBGP sessions only")
    add_route.add_argument("--med", type=int)
    _intent_options(add_route)
    add_route.set_defaults(func=cmd_add_route)

    del_route = sub.add_parser("del-route", parents=[common], help="withdraw a route")
    del_route.add_argument("selector", metavar="ID|PREFIX")
    del_route.set_defaults(func=cmd_del_route)

    sub.add_parser("list-routes", parents=[common], help="the routes in force").set_defaults(
        func=cmd_list_routes
    )
    sub.add_parser("status", parents=[common], help="sidecar and peers").set_defaults(
        func=cmd_status
    )
    sub.add_parser("watch", parents=[common], help="stream events").set_defaults(func=cmd_watch)
    return parser


def _unreachable(args: argparse.Namespace, error: UnreachableError) -> str:
    """Why trafexd cannot be reached: over TLS, gRPC's reason (a certificate refused);
    in plaintext, most likely it is not running."""
    if args.tls_ca is None and args.tls_cert is None:
        return f"cannot reach trafexd at {args.target}: is it running? (make run)"
    return f"cannot reach trafexd at {args.target} over TLS: {error.details}"


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[TrafexClient, argparse.Namespace], int] = args.func
    # Every call has a deadline, so a hung trafexd cannot hang the CLI; watch has none.
    try:
        client = _client(args)
    except SecurityError as error:
        print(f"trafex-ctl: {error}", file=sys.stderr)
        return 2
    try:
        return func(client, args)
    except (ValidationError, UsageError) as error:
        print(f"trafex-ctl: {error}", file=sys.stderr)
        return 2
    except UnreachableError as error:
        print(f"trafex-ctl: {_unreachable(args, error)}", file=sys.stderr)
        return 1
    except UnauthenticatedError as error:
        print(
            f"trafex-ctl: trafexd refused the token: {error.details} [{error.code}]"
            " (give --token-file or TRAFEX_TOKEN_FILE)",
            file=sys.stderr,
        )
        return 1
    except ExhaustedError as error:
        print(f"trafex-ctl: trafexd is at a limit: {error.details} [{error.code}]", file=sys.stderr)
        return 1
    except ApiError as error:  # NotAnnouncedError: stored, not yet announced, exit 1
        print(f"trafex-ctl: {error.details} [{error.code}]", file=sys.stderr)
        refused = isinstance(error, RefusedError)
        guarded = isinstance(error, PreconditionError) and error.guard is not None
        return 2 if refused or guarded else 1
    except KeyboardInterrupt:
        return 130
    finally:
        client.close()


if __name__ == "__main__":
    sys.exit(main())
