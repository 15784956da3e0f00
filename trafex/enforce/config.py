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

Unknown keys and wrong types are errors naming the key, as for trafexd.
"""

from __future__ import annotations

import ipaddress
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trafex.control.config import (
    BgpConfig,
    ConfigError,
    GobgpConfig,
    StateConfig,
    Table,
    parse_bgp,
    parse_gobgp,
    parse_state,
)
from trafex.model.errors import ValidationError
from trafex.model.flowspec import RouteTarget

DEFAULT_GOBGP_API = "127.0.0.1:50052"  # beside trafexd's sidecar (50051) on one host
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


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


@dataclass(frozen=True)
class RedirectConfig:
    target: RouteTarget
    table: int
    mark: int
    routes: tuple[StaticRoute, ...]


@dataclass(frozen=True)
class EnforceSettings:
    table: str = "trafex"
    interfaces: tuple[str, ...] = ()
    priority: int = -150
    max_branches: int = 64
    rule_priority: int = 1000
    redirects: tuple[RedirectConfig, ...] = ()


@dataclass(frozen=True)
class EnforceConfig:
    bgp: BgpConfig = field(default_factory=lambda: BgpConfig(listen_port=-1))
    gobgp: GobgpConfig = field(default_factory=lambda: GobgpConfig(api=DEFAULT_GOBGP_API))
    state: StateConfig = field(default_factory=StateConfig)
    enforce: EnforceSettings = field(default_factory=EnforceSettings)


def _redirect(data: Any, path: str) -> RedirectConfig:
    table = Table(data, path)
    text = table.take("target", str, "")
    if not text:
        raise ConfigError(f'{path}.target: give the route-target, e.g. "6:302"')
    try:
        target = RouteTarget.parse(text)
    except ValidationError as error:
        raise ConfigError(f"{path}.target: {error.message}") from None
    number = table.take("table", int, target.local_admin)
    if not 1 <= number <= 0xFFFFFFFF or number in (253, 254, 255):
        raise ConfigError(
            f"{path}.table: {number} is not a free routing table (1..2^32-1, not 253-255)"
        )
    mark = table.take("mark", int, number)
    if not 1 <= mark <= 0xFFFFFFFF:
        raise ConfigError(f"{path}.mark: {mark} is not a firewall mark (1..2^32-1)")
    no_routes: tuple[StaticRoute, ...] = ()
    routes = table.convert("routes", _routes, no_routes)
    table.done()
    return RedirectConfig(target, number, mark, routes)


def _routes(value: Any) -> tuple[StaticRoute, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise TypeError('expected a list of strings like "::/0 via 3001:12::2"')
    return tuple(StaticRoute.parse(v) for v in value)


def _settings(root: Table) -> EnforceSettings:
    defaults = EnforceSettings()
    table = root.table("enforce")
    interfaces = table.take("interfaces", list, [])
    if not all(isinstance(i, str) and 0 < len(i) < 16 for i in interfaces):
        raise ConfigError("enforce.interfaces: expected interface names")
    redirects = tuple(
        _redirect(item, f"enforce.redirect[{i}]")
        for i, item in enumerate(table.take("redirect", list, []))
    )
    for what in ("target", "table", "mark"):
        values = [getattr(r, what) for r in redirects]
        if len(set(values)) != len(values):
            raise ConfigError(f"enforce.redirect: the same {what} is given twice")
    settings = EnforceSettings(
        table=table.take("table", str, defaults.table),
        interfaces=tuple(interfaces),
        priority=table.take("priority", int, defaults.priority),
        max_branches=table.take("max_branches", int, defaults.max_branches),
        rule_priority=table.take("rule_priority", int, defaults.rule_priority),
        redirects=redirects,
    )
    table.done()
    if not settings.table.isidentifier():
        raise ConfigError("enforce.table: use letters, digits and _ only")
    if not 1 <= settings.max_branches <= 4096:
        raise ConfigError("enforce.max_branches: use 1..4096")
    if not 1 <= settings.rule_priority <= 32000 - len(redirects):
        raise ConfigError("enforce.rule_priority: use 1..32000 (below main's 32766)")
    return settings


def parse_enforce_config(data: Any) -> EnforceConfig:
    root = Table(data, "")
    config = EnforceConfig(
        bgp=parse_bgp(root, default_listen_port=-1),
        gobgp=parse_gobgp(root, default_api=DEFAULT_GOBGP_API),
        state=parse_state(root, subdir="enforce"),
        enforce=_settings(root),
    )
    root.done()
    if not config.bgp.neighbors:
        raise ConfigError("bgp.neighbor: the enforcer needs a peer that sends it FlowSpec")
    return config


def load_enforce_config(path: Path) -> EnforceConfig:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError(f"{path}: {error.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: not valid TOML: {error}") from None
    return parse_enforce_config(data)
