"""The BGP speaker's configuration: the ``[bgp]`` and ``[gobgp]`` tables.

trafexd's config and ``trafex enforce``'s both hold these two tables (each runs its own
gobgpd). They are read strictly by :meth:`trafex.config.Table.read` from these
dataclasses (``[bgp]`` through :func:`read_bgp`, for its neighbor list), and
:mod:`trafex.bgp.gobgpd_config` renders gobgpd's own file from the result.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Annotated, Any

from trafex.config import (
    Parse,
    Range,
    Table,
    addresses,
    host_port,
    ip_address,
    ipv4_address,
)

FAMILY_NAMES = ("ipv4-unicast", "ipv6-unicast", "ipv4-flowspec", "ipv6-flowspec")
DEFAULT_GOBGP_API = "127.0.0.1:50051"
DEFAULT_ASN = 65010
LOOPBACK_ROUTER_ID = ipaddress.IPv4Address("127.0.0.1")
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
ASN = Range(1, 0xFFFFFFFF)


def families(value: Any) -> tuple[str, ...]:
    """A neighbor's address families: a non-empty list of :data:`FAMILY_NAMES`."""
    if not isinstance(value, list):
        raise TypeError(f"expected a list, got {type(value).__name__}")
    for family in value:
        if family not in FAMILY_NAMES:
            raise ValueError(f"unknown family {family!r} (use {', '.join(FAMILY_NAMES)})")
    if not value:
        raise ValueError("give at least one family")
    return tuple(value)


def listen_port(value: Any) -> int:
    """A TCP port to listen on, or -1 not to listen."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected an integer, got {type(value).__name__}")
    if not (value == -1 or 0 < value < 65536):
        raise ValueError("use a port 1..65535, or -1 not to listen")
    return value


@dataclass(frozen=True)
class NeighborConfig:
    """One ``[[bgp.neighbor]]``. Without ``families``: unicast and FlowSpec of the
    address's family."""

    address: Annotated[IPAddress, Parse(ip_address)]
    peer_as: Annotated[int, ASN]
    families: Annotated[tuple[str, ...], Parse(families)] = ()
    description: str = ""
    local_address: Annotated[IPAddress | None, Parse(ip_address)] = None
    password: str = ""
    passive: bool = False
    ebgp_multihop_ttl: Annotated[int, Range(0, 255, note="0: no multihop")] = 0

    def __post_init__(self) -> None:
        if not self.families:
            kinds = ("unicast", "flowspec")
            default = tuple(f"ipv{self.address.version}-{kind}" for kind in kinds)
            object.__setattr__(self, "families", default)


@dataclass(frozen=True)
class BgpConfig:
    asn: Annotated[int, ASN] = DEFAULT_ASN
    router_id: Annotated[ipaddress.IPv4Address, Parse(ipv4_address)] = LOOPBACK_ROUTER_ID
    listen_addresses: Annotated[tuple[str, ...], Parse(addresses)] = ("127.0.0.1",)
    listen_port: Annotated[int, Parse(listen_port)] = 179
    neighbors: tuple[NeighborConfig, ...] = ()
    # RFC 4724 on every neighbor, for every family sent: a restart of trafexd or of its
    # gobgpd leaves the routers' copies in place (stale) until trafexd has announced again.
    graceful_restart: bool = True
    restart_time: Annotated[int, Range(1, 4095)] = 120  # seconds the routers keep stale paths
    # Seconds between gobgpd's connection attempts to a neighbor that is not up (it
    # waits a random time from this to twice this). Go's default is 120 s: a session
    # the router reset would then often come back only after restart_time.
    connect_retry: Annotated[int, Range(5, 3600)] = 10


_GO_UNITS = ("B", "KiB", "MiB", "GiB", "TiB")


def go_memory_limit(value: Any) -> str:
    """A size as Go's GOMEMLIMIT reads it (digits, then B, KiB, MiB, GiB or TiB), or ""."""
    if value == "":
        return ""
    text = value if isinstance(value, str) else ""
    digits = text.rstrip("BKMGTi")
    if not digits.isdigit() or int(digits) == 0 or text[len(digits) :] not in _GO_UNITS:
        raise ValueError(f'not a size like "1GiB" (units {", ".join(_GO_UNITS)}): {value!r}')
    return text


@dataclass(frozen=True)
class GobgpConfig:
    binary: str = "gobgpd"
    api: Annotated[str, Parse(host_port)] = DEFAULT_GOBGP_API
    manage: bool = True
    log_level: str = "info"
    # A managed gobgpd's soft memory limit (Go's GOMEMLIMIT, "1GiB"); "": Go's default.
    memory_limit: Annotated[str, Parse(go_memory_limit)] = ""


def read_bgp(table: Table, defaults: BgpConfig) -> BgpConfig:
    """The ``[bgp]`` table (with its ``[[bgp.neighbor]]`` list); ``defaults``: the
    reading config's (the enforcer does not listen by default)."""
    neighbors = tuple(item.read(NeighborConfig) for item in table.tables("neighbor"))
    addresses = [n.address for n in neighbors]
    if len(set(addresses)) != len(addresses):
        raise table.error("neighbor", "the same address is given twice")
    return table.read(BgpConfig, defaults=defaults, neighbors=neighbors)
