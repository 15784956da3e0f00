"""gobgpd's TOML configuration, rendered from trafexd's (pure: text in, text out).

trafexd's sidecar only ever announces what trafexd injects: a global import policy
accepts locally originated paths and rejects everything learned from peers, so gobgpd
never re-advertises one router's routes to another (trafex is no transit).

``trafex enforce``'s sidecar is the opposite (``learn=True``): it accepts what its peers
send and announces nothing.
"""

from __future__ import annotations

from trafex.bgp.config import BgpConfig, NeighborConfig

LOCAL_ONLY_POLICY = "trafex-local-only"


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


def _neighbor(neighbor: NeighborConfig) -> list[str]:
    lines = [
        "[[neighbors]]",
        "  [neighbors.config]",
        f"    neighbor-address = {_q(str(neighbor.address))}",
        f"    peer-as = {neighbor.peer_as}",
    ]
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
    if neighbor.ebgp_multihop_ttl:
        lines += [
            "  [neighbors.ebgp-multihop.config]",
            "    enabled = true",
            f"    multihop-ttl = {neighbor.ebgp_multihop_ttl}",
        ]
    for family in neighbor.families:
        lines += [
            "  [[neighbors.afi-safis]]",
            "    [neighbors.afi-safis.config]",
            f"      afi-safi-name = {_q(family)}",
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
        lines += _neighbor(neighbor)
        lines.append("")
    return "\n".join(lines)
