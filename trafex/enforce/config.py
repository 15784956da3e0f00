"""``trafex enforce``'s configuration: a TOML file, strictly checked, frozen.

```toml
[bgp]                         # the enforcer's own BGP speaker (a gobgpd it manages)
asn = 65000
router_id = "1.1.1.1"
listen_port = -1              # -1: connect out only (a router's bgpd may own port 179)
[[bgp.neighbor]]              # where FlowSpec comes from: a router or trafexd's sidecar
address = "3001:2:e10a::10"
peer_as = 65010
families = ["ipv6-flowspec", "ipv4-flowspec"]

[gobgp]
api = "127.0.0.1:50052"       # the enforcer's gobgpd API (not trafexd's)

[state]
dir = "/var/lib/trafex/enforce"

[enforce]
table = "trafex"              # nftables table (family inet) the enforcer owns
interfaces = ["eth1"]         # ingress interfaces acted on; default: every interface
priority = -150               # prerouting hook priority (before the routing decision)
max_branches = 64             # nftables rules one FlowSpec rule may expand to
rule_priority = 1000          # ip rule priority of the first redirect target

[[enforce.redirect]]          # redirect to this route-target: policy routing
target = "6:302"
table = 302                   # routing table (default: the target's local part)
mark = 302                    # fwmark (default: the table)
routes = ["::/0 via 3001:12::2", "0.0.0.0/0 via 192.0.2.1 dev eth2"]
```

Unknown keys and wrong types are errors naming the key, as for trafexd: the file is
read by :meth:`trafex.config.Table.read` from the dataclasses below, which state every
default.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from trafex.bgp.config import BgpConfig, GobgpConfig, read_bgp
from trafex.config import ConfigError, Parse, Range, StateConfig, Table, read_toml
from trafex.model.flowspec import RouteTarget

DEFAULT_GOBGP_API = "127.0.0.1:50052"  # beside trafexd's sidecar (50051) on one host
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
U32 = 0xFFFFFFFF
RULE_PRIORITY_MAX = 32000  # ip rule priorities stay below main's (32766)


@dataclass(frozen=True)
class StaticRoute:
    """One route of a redirect table: ``DESTINATION [via GATEWAY] [dev IFNAME]``."""

    destination: IPNetwork
    gateway: IPAddress | None = None
    device: str | None = None

    @classmethod
    def parse(cls, text: str) -> StaticRoute:
        words = text.split()
        if not words:
            raise ValueError("empty route")
        destination = ipaddress.ip_network(words[0])
        options: dict[str, str] = {}
        rest = words[1:]
        if len(rest) % 2:
            raise ValueError(f"{text!r}: expected PREFIX [via ADDRESS] [dev IFNAME]")
        for key, value in zip(rest[::2], rest[1::2], strict=True):
            if key not in ("via", "dev") or key in options:
                raise ValueError(f"{text!r}: expected PREFIX [via ADDRESS] [dev IFNAME]")
            options[key] = value
        gateway = ipaddress.ip_address(options["via"]) if "via" in options else None
        if gateway is not None and gateway.version != destination.version:
            raise ValueError(f"{text!r}: the gateway is not of the prefix's family")
        if gateway is None and "dev" not in options:
            raise ValueError(f"{text!r}: give a gateway (via) or a device (dev)")
        return cls(destination, gateway, options.get("dev"))

    def __str__(self) -> str:
        via = f" via {self.gateway}" if self.gateway else ""
        dev = f" dev {self.device}" if self.device else ""
        return f"{self.destination}{via}{dev}"


def _routes(value: Any) -> tuple[StaticRoute, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise TypeError('expected a list of strings like "::/0 via 3001:12::2"')
    return tuple(StaticRoute.parse(v) for v in value)


def _route_target(value: Any) -> RouteTarget:
    if not isinstance(value, str) or not value:
        raise TypeError('give the route-target, e.g. "6:302"')
    return RouteTarget.parse(value)


def _routing_table(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected an integer, got {type(value).__name__}")
    if not 1 <= value <= U32 or value in (253, 254, 255):
        raise ValueError(f"{value} is not a free routing table (1..2^32-1, not 253-255)")
    return value


def _nft_name(value: Any) -> str:
    if not isinstance(value, str) or not value.isidentifier():
        raise ValueError("use letters, digits and _ only")
    return value


def _interfaces(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(
        isinstance(i, str) and 0 < len(i) < 16 for i in value
    ):
        raise ValueError("expected interface names")
    return tuple(value)


@dataclass(frozen=True)
class RedirectConfig:
    """One ``[[enforce.redirect]]``: ``table`` defaults to the target's local part,
    ``mark`` to the table."""

    target: Annotated[RouteTarget, Parse(_route_target)]
    table: Annotated[int, Parse(_routing_table)] = 0
    mark: Annotated[int, Range(1, U32, note="a firewall mark")] = 0
    routes: Annotated[tuple[StaticRoute, ...], Parse(_routes)] = ()

    def __post_init__(self) -> None:
        if not self.table:
            object.__setattr__(self, "table", _routing_table(self.target.local_admin))
        if not self.mark:
            object.__setattr__(self, "mark", self.table)


@dataclass(frozen=True)
class EnforceSettings:
    table: Annotated[str, Parse(_nft_name)] = "trafex"
    interfaces: Annotated[tuple[str, ...], Parse(_interfaces)] = ()
    priority: int = -150
    max_branches: Annotated[int, Range(1, 4096)] = 64
    rule_priority: Annotated[int, Range(1, RULE_PRIORITY_MAX, note="below main's 32766")] = 1000
    redirects: tuple[RedirectConfig, ...] = ()


@dataclass(frozen=True)
class EnforceConfig:
    bgp: BgpConfig = field(default_factory=lambda: BgpConfig(listen_port=-1))
    gobgp: GobgpConfig = field(default_factory=lambda: GobgpConfig(api=DEFAULT_GOBGP_API))
    state: StateConfig = field(default_factory=lambda: StateConfig.under("enforce"))
    enforce: EnforceSettings = field(default_factory=EnforceSettings)


def _redirect(table: Table) -> RedirectConfig:
    try:
        return table.read(RedirectConfig)
    except ValueError as error:  # the default table, the target's local part, is reserved
        raise table.error("table", f"{error}; give table = N") from None


def _settings(table: Table) -> EnforceSettings:
    redirects = tuple(_redirect(item) for item in table.tables("redirect"))
    for what in ("target", "table", "mark"):
        values = [getattr(r, what) for r in redirects]
        if len(set(values)) != len(values):
            raise table.error("redirect", f"the same {what} is given twice")
    settings = table.read(EnforceSettings, redirects=redirects)
    if settings.rule_priority + len(redirects) > RULE_PRIORITY_MAX:
        raise table.error("rule_priority", f"use 1..{RULE_PRIORITY_MAX - len(redirects)}")
    return settings


def parse_enforce_config(data: Any) -> EnforceConfig:
    root = Table(data, "")
    defaults = EnforceConfig()
    config = root.read(
        EnforceConfig,
        bgp=read_bgp(root.table("bgp"), defaults.bgp),
        enforce=_settings(root.table("enforce")),
    )
    if not config.bgp.neighbors:
        raise ConfigError("the enforcer needs a peer that sends it FlowSpec", "bgp.neighbor")
    return config


def load_enforce_config(path: Path) -> EnforceConfig:
    return parse_enforce_config(read_toml(path))
