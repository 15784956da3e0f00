"""gobgpd's TOML configuration, rendered from trafexd's (pure: text in, text out).

trafexd's neighbors start administratively down: trafexd enables them (through
gobgpd's API) once it has announced the whole store, so the first UPDATEs a router
gets hold every rule, followed by End-of-RIB. With ``[bgp] graceful_restart`` every
neighbor and every family it carries has RFC 4724 graceful restart, and gobgpd runs
with ``-r`` (restarting: the forwarding-state bit set per family), so a router keeps
trafex's paths as stale across a restart of trafexd or gobgpd until that End-of-RIB.

trafexd's sidecar only ever announces what trafexd injects: a global import policy
accepts locally originated paths and rejects everything learned from peers, so gobgpd
never re-advertises one router's routes to another (trafex is no transit).

``trafex enforce``'s sidecar is the opposite (``learn=True``): it accepts what its peers
send and announces nothing.
"""

from __future__ import annotations

from trafex.bgp.config import BgpConfig, NeighborConfig

LOCAL_ONLY_POLICY = "trafex-local-only"
# Seconds a restarting gobgpd (``-r``) waits for every peer's End-of-RIB before it
# sends its own paths and End-of-RIB anyway (a neighbor that is down would otherwise
# hold back every other session's for gobgpd's default of 360 s). trafexd takes
# nothing from its peers, so it has no reason to wait long.
DEFERRAL_TIME = 5


_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\t": "\\t",
    "\n": "\\n",
    "\f": "\\f",
    "\r": "\\r",
}


def _q(value: str) -> str:
    """A TOML basic string, in ASCII whatever the text (the file is written in the
    locale's encoding): non-ASCII characters as ``\\uXXXX``, or ``\\UXXXXXXXX`` outside
    the BMP (JSON's surrogate pairs are not valid TOML)."""
    out = []
    for char in value:
        code = ord(char)
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif 0x20 <= code < 0x7F:
            out.append(char)
        elif 0xD800 <= code <= 0xDFFF:
            raise ValueError(f"lone surrogate U+{code:04X} cannot be written in TOML")
        elif code <= 0xFFFF:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    return '"' + "".join(out) + '"'


def _graceful_restart(bgp: BgpConfig) -> list[str]:
    """RFC 4724 with RFC 8538's N bit (so that a NOTIFICATION at gobgpd's stop, other
    than a Hard Reset, also leaves the router's copies in place as stale)."""
    return [
        "  [neighbors.graceful-restart.config]",
        "    enabled = true",
        f"    restart-time = {bgp.restart_time}",
        "    notification-enabled = true",
        f"    deferral-time = {DEFERRAL_TIME}",
    ]


def restarts_gracefully(bgp: BgpConfig, *, learn: bool) -> bool:
    """Whether gobgpd runs with graceful restart: trafexd's (announcing) sidecar with
    ``[bgp] graceful_restart``; never the enforcer's, which announces nothing."""
    return bgp.graceful_restart and not learn


def restart_flags(bgp: BgpConfig, *, learn: bool = False) -> list[str]:
    """gobgpd's command-line flags for graceful restart: ``-r`` (restarting), whose OPEN
    sets each family's forwarding-state bit. Without it a router drops the previous
    gobgpd's paths as soon as the new session opens, instead of keeping them (stale)
    until the End-of-RIB. gobgpd then holds back its paths until its peers' End-of-RIBs
    (or :data:`DEFERRAL_TIME`), and sends them all, then its own End-of-RIB."""
    return ["-r"] if restarts_gracefully(bgp, learn=learn) else []


def _neighbor(neighbor: NeighborConfig, bgp: BgpConfig, *, learn: bool) -> list[str]:
    restarts = restarts_gracefully(bgp, learn=learn)
    lines = [
        "[[neighbors]]",
        "  [neighbors.config]",
        f"    neighbor-address = {_q(str(neighbor.address))}",
        f"    peer-as = {neighbor.peer_as}",
    ]
    if not learn:
        lines.append("    admin-down = true  # trafexd opens it once the store is announced")
    if neighbor.description:
        lines.append(f"    description = {_q(neighbor.description)}")
    if neighbor.password:
        lines.append(f"    auth-password = {_q(neighbor.password)}")
    if neighbor.local_address is not None or neighbor.passive:
        lines.append("  [neighbors.transport.config]")
        if neighbor.local_address is not None:
            lines.append(f"    local-address = {_q(str(neighbor.local_address))}")
        if neighbor.passive:
            lines.append("    passive-mode = true")
    lines += ["  [neighbors.timers.config]", f"    connect-retry = {bgp.connect_retry}"]
    if neighbor.ebgp_multihop_ttl:
        lines += [
            "  [neighbors.ebgp-multihop.config]",
            "    enabled = true",
            f"    multihop-ttl = {neighbor.ebgp_multihop_ttl}",
        ]
    if restarts:
        lines += _graceful_restart(bgp)
    for family in neighbor.families:
        lines += [
            "  [[neighbors.afi-safis]]",
            "    [neighbors.afi-safis.config]",
            f"      afi-safi-name = {_q(family)}",
        ]
        if restarts:
            lines += [
                "    [neighbors.afi-safis.mp-graceful-restart.config]",
                "      enabled = true",
            ]
    return lines


def _learn_only() -> list[str]:
    return [
        "[global.apply-policy.config]",
        '  default-import-policy = "accept-route"',
        '  default-export-policy = "reject-route"',
        "",
    ]


def _local_only() -> list[str]:
    return [
        "[global.apply-policy.config]",
        f"  import-policy-list = [{_q(LOCAL_ONLY_POLICY)}]",
        '  default-import-policy = "reject-route"',
        "",
        "[[policy-definitions]]",
        f"  name = {_q(LOCAL_ONLY_POLICY)}",
        "  [[policy-definitions.statements]]",
        '    name = "accept-local"',
        "    [policy-definitions.statements.conditions.bgp-conditions]",
        '      route-type = "local"',
        "    [policy-definitions.statements.actions]",
        '      route-disposition = "accept-route"',
        "",
    ]


def render(bgp: BgpConfig, *, learn: bool = False) -> str:
    """The gobgpd config file for ``bgp``: announce only what is injected, or (``learn``)
    accept what peers send and announce nothing."""
    addresses = ", ".join(_q(a) for a in bgp.listen_addresses)
    lines = [
        "# Written by trafexd: edit trafexd's config instead, this file is rewritten at start.",
        "[global.config]",
        f"  as = {bgp.asn}",
        f"  router-id = {_q(str(bgp.router_id))}",
        f"  port = {bgp.listen_port}",
        f"  local-address-list = [{addresses}]",
        *(_learn_only() if learn else _local_only()),
    ]
    for neighbor in bgp.neighbors:
        lines += _neighbor(neighbor, bgp, learn=learn)
        lines.append("")
    return "\n".join(lines)
