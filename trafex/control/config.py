"""trafexd's configuration: a TOML file, strictly checked, frozen after loading.

Unknown keys and wrong types are errors that name the key (``bgp.neighbor[0].peer_as``);
``trafexd --check-config FILE`` prints them and exits non-zero. Without a file, the
embedded default runs a sidecar on loopback with no neighbors, AS 65010.
"""

from __future__ import annotations

import ipaddress
import math
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar

from trafex.model.errors import TrafexError

FAMILY_NAMES = ("ipv4-unicast", "ipv6-unicast", "ipv4-flowspec", "ipv6-flowspec")
DEFAULT_API = "127.0.0.1:50061"
DEFAULT_GOBGP_API = "127.0.0.1:50051"
DEFAULT_ASN = 65010
LOOPBACK_ROUTER_ID = ipaddress.IPv4Address("127.0.0.1")


class ConfigError(TrafexError):
    """A configuration that trafexd refuses; the message names the key."""


def default_state_dir() -> Path:
    """``$TRAFEX_STATE_DIR``, else /var/lib/trafex for root, else ~/.local/state/trafex."""
    env = os.environ.get("TRAFEX_STATE_DIR")
    if env:
        return Path(env)
    if os.geteuid() == 0:
        return Path("/var/lib/trafex")
    return Path.home() / ".local" / "state" / "trafex"


@dataclass(frozen=True)
class NeighborConfig:
    address: ipaddress.IPv4Address | ipaddress.IPv6Address
    peer_as: int
    families: tuple[str, ...]
    description: str = ""
    local_address: ipaddress.IPv4Address | ipaddress.IPv6Address | None = None
    password: str = ""
    passive: bool = False
    ebgp_multihop_ttl: int = 0


@dataclass(frozen=True)
class BgpConfig:
    asn: int = DEFAULT_ASN
    router_id: ipaddress.IPv4Address = LOOPBACK_ROUTER_ID
    listen_addresses: tuple[str, ...] = ("127.0.0.1",)
    listen_port: int = 179
    neighbors: tuple[NeighborConfig, ...] = ()


@dataclass(frozen=True)
class ApiConfig:
    listen: str = DEFAULT_API


@dataclass(frozen=True)
class GobgpConfig:
    binary: str = "gobgpd"
    api: str = DEFAULT_GOBGP_API
    manage: bool = True
    log_level: str = "info"


@dataclass(frozen=True)
class StateConfig:
    dir: Path = field(default_factory=default_state_dir)


@dataclass(frozen=True)
class ControllerConfig:
    reconcile_interval: float = 30.0
    expiry_interval: float = 1.0
    batch_size: int = 1000
    max_terms_per_component: int = 5


@dataclass(frozen=True)
class Config:
    bgp: BgpConfig = field(default_factory=BgpConfig)
    api: ApiConfig = field(default_factory=ApiConfig)
    gobgp: GobgpConfig = field(default_factory=GobgpConfig)
    state: StateConfig = field(default_factory=StateConfig)
    controller: ControllerConfig = field(default_factory=ControllerConfig)


T = TypeVar("T")


class Table:
    """A TOML table read key by key; whatever is left unread is an unknown key."""

    def __init__(self, data: Any, path: str) -> None:
        if not isinstance(data, Mapping):
            raise ConfigError(f"{path}: expected a table, got {type(data).__name__}")
        self.data = dict(data)
        self.path = path

    def _name(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def take(self, key: str, kind: type[T] | tuple[type, ...], default: T) -> T:
        if key not in self.data:
            return default
        value = self.data.pop(key)
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if isinstance(value, bool) and bool not in kinds:
            raise ConfigError(f"{self._name(key)}: expected {_kind_name(kinds)}, got a boolean")
        if not isinstance(value, kinds):
            raise ConfigError(
                f"{self._name(key)}: expected {_kind_name(kinds)}, got {type(value).__name__}"
            )
        return value  # type: ignore[return-value]

    def convert(self, key: str, parse: Callable[[Any], T], default: T) -> T:
        if key not in self.data:
            return default
        value = self.data.pop(key)
        try:
            return parse(value)
        except (ValueError, TypeError) as error:
            raise ConfigError(f"{self._name(key)}: {error}") from None

    def table(self, key: str) -> Table:
        return Table(self.data.pop(key, {}), self._name(key))

    def done(self) -> None:
        if self.data:
            unknown = sorted(self.data)
            raise ConfigError(f"unknown key {self._name(unknown[0])!r}")


def _kind_name(kinds: tuple[type, ...]) -> str:
    names = {
        int: "an integer",
        str: "a string",
        bool: "a boolean",
        float: "a number",
        list: "a list",
    }
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def _ip(value: Any) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    if not isinstance(value, str):
        raise TypeError(f"expected an IP address string, got {type(value).__name__}")
    return ipaddress.ip_address(value)


def _ipv4(value: Any) -> ipaddress.IPv4Address:
    # A TOML integer is refused: IPv4Address(5) would silently be 0.0.0.5.
    if not isinstance(value, str):
        raise TypeError(f"expected an IPv4 address string, got {type(value).__name__}")
    return ipaddress.IPv4Address(value)


def _addresses(value: Any) -> tuple[str, ...]:
    return tuple(str(ipaddress.ip_address(a)) for a in _str_list(value))


def _host_port(value: Any) -> str:
    if not isinstance(value, str) or ":" not in value:
        raise ValueError(f"expected HOST:PORT, got {value!r}")
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected HOST:PORT, got {value!r}")
    return value


def _asn(table: Table, key: str, default: int) -> int:
    value = table.take(key, int, default)
    if not 1 <= value <= 0xFFFFFFFF:
        raise ConfigError(f"{table._name(key)}: AS {value} is out of range 1..4294967295")
    return value


_NEIGHBOR_KEYS = frozenset(f.name for f in fields(NeighborConfig))


def _neighbor(data: Any, path: str) -> NeighborConfig:
    table = Table(data, path)
    if "address" not in table.data or "peer_as" not in table.data:
        unknown = sorted(set(table.data) - _NEIGHBOR_KEYS)
        if unknown:  # most likely the missing key, misspelt: name it
            raise ConfigError(
                f"unknown key {table._name(unknown[0])!r} "
                "(a neighbor needs 'address' and 'peer_as')"
            )
        raise ConfigError(f"{path}: a neighbor needs 'address' and 'peer_as'")
    address = table.convert("address", _ip, None)
    assert address is not None  # checked above
    peer_as = _asn(table, "peer_as", 0)
    default_families = (
        ("ipv4-unicast", "ipv4-flowspec")
        if address.version == 4
        else ("ipv6-unicast", "ipv6-flowspec")
    )
    families = tuple(table.take("families", list, list(default_families)))
    for family in families:
        if family not in FAMILY_NAMES:
            raise ConfigError(
                f"{path}.families: unknown family {family!r} (use {', '.join(FAMILY_NAMES)})"
            )
    if not families:
        raise ConfigError(f"{path}.families: give at least one family")
    neighbor = NeighborConfig(
        address=address,
        peer_as=peer_as,
        families=families,
        description=table.take("description", str, ""),
        local_address=table.convert("local_address", _ip, None),
        password=table.take("password", str, ""),
        passive=table.take("passive", bool, False),
        ebgp_multihop_ttl=table.take("ebgp_multihop_ttl", int, 0),
    )
    if not 0 <= neighbor.ebgp_multihop_ttl <= 255:
        raise ConfigError(
            f"{path}.ebgp_multihop_ttl: {neighbor.ebgp_multihop_ttl} is not a TTL "
            "(use 1..255, or 0 for no multihop)"
        )
    table.done()
    return neighbor


def parse_bgp(root: Table, default_listen_port: int = 179) -> BgpConfig:
    """The ``[bgp]`` table (with its ``[[bgp.neighbor]]`` list) of ``root``."""
    defaults = BgpConfig(listen_port=default_listen_port)
    bgp_table = root.table("bgp")
    neighbors_data = bgp_table.take("neighbor", list, [])
    neighbors = tuple(
        _neighbor(item, f"bgp.neighbor[{index}]") for index, item in enumerate(neighbors_data)
    )
    addresses = [n.address for n in neighbors]
    if len(set(addresses)) != len(addresses):
        raise ConfigError("bgp.neighbor: the same address is given twice")
    listen_addresses = bgp_table.convert("listen_addresses", _addresses, defaults.listen_addresses)
    listen_port = bgp_table.take("listen_port", int, defaults.listen_port)
    if not (listen_port == -1 or 0 < listen_port < 65536):
        raise ConfigError("bgp.listen_port: use a port 1..65535, or -1 not to listen")
    bgp = BgpConfig(
        asn=_asn(bgp_table, "asn", defaults.asn),
        router_id=bgp_table.convert("router_id", _ipv4, defaults.router_id),
        listen_addresses=listen_addresses,
        listen_port=listen_port,
        neighbors=neighbors,
    )
    bgp_table.done()
    return bgp


def parse_gobgp(root: Table, default_api: str = DEFAULT_GOBGP_API) -> GobgpConfig:
    """The ``[gobgp]`` table of ``root``."""
    defaults = GobgpConfig()
    gobgp_table = root.table("gobgp")
    gobgp = GobgpConfig(
        binary=gobgp_table.take("binary", str, defaults.binary),
        api=gobgp_table.convert("api", _host_port, default_api),
        manage=gobgp_table.take("manage", bool, defaults.manage),
        log_level=gobgp_table.take("log_level", str, defaults.log_level),
    )
    gobgp_table.done()
    return gobgp


def parse_state(root: Table, subdir: str = "") -> StateConfig:
    """The ``[state]`` table of ``root``; by default :func:`default_state_dir`, or a
    ``subdir`` of it (another trafex daemon on the same host)."""
    state_table = root.table("state")
    default = default_state_dir() / subdir if subdir else default_state_dir()
    state = StateConfig(dir=Path(state_table.take("dir", str, str(default))))
    state_table.done()
    return state


def parse_config(data: Mapping[str, Any]) -> Config:
    """Build a :class:`Config` from parsed TOML; raise :class:`ConfigError` naming the key."""
    root = Table(data, "")
    defaults = Config()

    bgp = parse_bgp(root)

    api_table = root.table("api")
    api = ApiConfig(listen=api_table.convert("listen", _host_port, defaults.api.listen))
    api_table.done()

    gobgp = parse_gobgp(root)
    state = parse_state(root)

    ctl_table = root.table("controller")
    controller = ControllerConfig(
        reconcile_interval=float(
            ctl_table.take(
                "reconcile_interval", (int, float), defaults.controller.reconcile_interval
            )
        ),
        expiry_interval=float(
            ctl_table.take("expiry_interval", (int, float), defaults.controller.expiry_interval)
        ),
        batch_size=ctl_table.take("batch_size", int, defaults.controller.batch_size),
        max_terms_per_component=ctl_table.take(
            "max_terms_per_component", int, defaults.controller.max_terms_per_component
        ),
    )
    if controller.max_terms_per_component < 0:
        raise ConfigError("controller.max_terms_per_component: use 0 (no limit) or more")
    for name in ("reconcile_interval", "expiry_interval"):
        seconds = getattr(controller, name)
        if not 0 < seconds < math.inf:  # also refuses TOML's nan and inf
            raise ConfigError(f"controller.{name}: {seconds} is not a positive number of seconds")
    if not 1 <= controller.batch_size <= 100_000:
        raise ConfigError("controller.batch_size: use 1..100000")
    ctl_table.done()

    root.done()
    return Config(bgp=bgp, api=api, gobgp=gobgp, state=state, controller=controller)


def _str_list(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise TypeError("expected a list of strings")
    return value


def load_config(path: Path | None) -> Config:
    """Read and check a config file; ``None`` is the embedded default."""
    if path is None:
        return Config()
    try:
        text = path.read_text(encoding="utf-8")  # TOML is UTF-8 whatever the locale
    except OSError as error:
        raise ConfigError(f"{path}: {error.strerror}") from None
    except UnicodeDecodeError as error:
        raise ConfigError(
            f"{path}: not UTF-8 text (byte {error.object[error.start]:#04x} "
            f"at offset {error.start})"
        ) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML: {error}") from None
    return parse_config(data)
