"""Policy routing for FlowSpec redirects: ``ip rule fwmark M lookup T`` and table T.

A redirect rule's packets get firewall mark M in nftables (:mod:`trafex.enforce.compile`);
here each configured route-target gets a rule per address family sending marked packets
to its table, and the table gets its routes (a default route towards the analysis
segment, say). Everything is written with routing protocol :data:`PROTO_TRAFEX`, so
that :func:`sync` finds and removes what an earlier run or an older config left, and
:func:`clear` removes all of it. Netlink through pyroute2; nothing parses ``ip`` output.
"""

from __future__ import annotations

import socket
from collections.abc import Sequence
from typing import Any

import structlog
from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from trafex.enforce.config import RedirectConfig, StaticRoute
from trafex.model.errors import TrafexError

log = structlog.get_logger("trafex.enforce")

PROTO_TRAFEX = 248  # rtnetlink protocol of trafex's rules and routes (unassigned)
_FAMILIES = (socket.AF_INET, socket.AF_INET6)


class RoutingError(TrafexError):
    """A policy rule or route could not be written."""


def _family(route: StaticRoute) -> int:
    return socket.AF_INET if route.destination.version == 4 else socket.AF_INET6


def _route_args(route: StaticRoute, table: int, ipr: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "dst": str(route.destination),
        "table": table,
        "family": _family(route),
        "proto": PROTO_TRAFEX,
    }
    if route.gateway is not None:
        args["gateway"] = str(route.gateway)
    if route.device is not None:
        found = ipr.link_lookup(ifname=route.device)
        if not found:
            raise RoutingError(f"route {route} in table {table}: no interface {route.device}")
        args["oif"] = found[0]
    return args


def _ours(ipr: Any, family: int) -> tuple[list[Any], list[Any]]:
    rules = [r for r in ipr.get_rules(family=family) if r.get("protocol") == PROTO_TRAFEX]
    # Without a table, pyroute2 dumps every table (table=0 would match none).
    routes = [r for r in ipr.get_routes(family=family) if r["proto"] == PROTO_TRAFEX]
    return rules, routes


def sync(redirects: Sequence[RedirectConfig], first_priority: int) -> None:
    """Make the kernel's trafex rules and routes exactly those of ``redirects``."""
    try:
        with IPRoute() as ipr:
            _clear(ipr)
            for offset, redirect in enumerate(redirects):
                for family in _FAMILIES:
                    ipr.rule(
                        "add",
                        family=family,
                        table=redirect.table,
                        fwmark=redirect.mark,
                        priority=first_priority + offset,
                        protocol=PROTO_TRAFEX,
                    )
                for route in redirect.routes:
                    ipr.route("replace", **_route_args(route, redirect.table, ipr))
    except NetlinkError as error:
        raise RoutingError(f"policy routing: {error}") from None
    for redirect in redirects:
        log.info(
            "enforce.redirect_table",
            target=str(redirect.target),
            table=redirect.table,
            mark=redirect.mark,
            routes=[str(r) for r in redirect.routes],
        )


def _clear(ipr: Any) -> None:
    for family in _FAMILIES:
        rules, routes = _ours(ipr, family)
        for rule in rules:
            ipr.rule(
                "del",
                family=family,
                table=rule.get("table"),
                priority=rule.get("priority"),
                fwmark=rule.get("fwmark"),
            )
        for route in routes:
            ipr.route("del", **_route_key(route, family))


def _route_key(route: Any, family: int) -> dict[str, Any]:
    dst = route.get("dst")
    length = route["dst_len"]
    if dst is None:
        dst = "0.0.0.0" if family == socket.AF_INET else "::"
    return {"dst": f"{dst}/{length}", "table": route.get("table"), "family": family}


def clear() -> None:
    """Remove every trafex rule and route (the enforcer stops)."""
    try:
        with IPRoute() as ipr:
            _clear(ipr)
    except NetlinkError as error:
        raise RoutingError(f"policy routing: {error}") from None


def installed() -> list[str]:
    """trafex's rules and routes, as text lines (for status)."""
    lines = []
    with IPRoute() as ipr:
        for family in _FAMILIES:
            rules, routes = _ours(ipr, family)
            name = "ip" if family == socket.AF_INET else "ip -6"
            lines += [
                f"{name} rule {r.get('priority')}: fwmark {r.get('fwmark'):#x} "
                f"lookup {r.get('table')}"
                for r in rules
            ]
            for route in routes:
                key = _route_key(route, family)
                via = route.get("gateway")
                lines.append(
                    f"{name} route {key['dst']}{f' via {via}' if via else ''} table {key['table']}"
                )
    return lines
