"""trafexd's configuration: a TOML file, strictly checked, frozen after loading.

Unknown keys and wrong types are errors that name the key (``bgp.neighbor[0].peer_as``);
``trafexd --check-config FILE`` prints them and exits non-zero. Without a file, the
embedded default runs a sidecar on loopback with no neighbors, AS 65010. The file is
read by :meth:`trafex.config.Table.read` from the dataclasses below, which state every
default; the ``[bgp]`` and ``[gobgp]`` tables are :mod:`trafex.bgp.config`'s.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from trafex.bgp.config import BgpConfig, GobgpConfig, read_bgp
from trafex.config import (
    ConfigError,
    Parse,
    Range,
    StateConfig,
    Table,
    host_port,
    read_toml,
    str_list,
)
from trafex.control.guardrails import Guards

__all__ = [
    "DEFAULT_API",
    "ApiConfig",
    "Config",
    "ConfigError",
    "ControllerConfig",
    "GuardConfig",
    "guards_of",
    "load_config",
    "parse_config",
]

DEFAULT_API = "127.0.0.1:50061"
_SECONDS = Range(above=0)


@dataclass(frozen=True)
class ApiConfig:
    listen: Annotated[str, Parse(host_port)] = DEFAULT_API


@dataclass(frozen=True)
class ControllerConfig:
    reconcile_interval: Annotated[float, _SECONDS] = 30.0
    expiry_interval: Annotated[float, _SECONDS] = 1.0
    batch_size: Annotated[int, Range(1, 100_000)] = 1000
    max_terms_per_component: Annotated[int, Range(0, note="0: no limit")] = 5


def _networks(value: Any) -> tuple[str, ...]:
    out = []
    for text in str_list(value):
        try:
            out.append(str(ipaddress.ip_network(text)))
        except ValueError as error:
            raise ValueError(f"not a prefix: {text!r}") from error
    return tuple(out)


@dataclass(frozen=True)
class GuardConfig:
    protected: Annotated[tuple[str, ...], Parse(_networks)] = ()
    max_breadth_v4: Annotated[int, Range(0, 32)] = 24
    max_breadth_v6: Annotated[int, Range(0, 128)] = 48


def guards_of(config: Config) -> Guards:
    """The guards of this config: ``[guard]``, and the BGP neighbors always protected."""
    protected = [ipaddress.ip_network(p) for p in config.guard.protected]
    protected += [ipaddress.ip_network(n.address) for n in config.bgp.neighbors]
    return Guards(
        protected=tuple(protected),
        max_breadth_v4=config.guard.max_breadth_v4,
        max_breadth_v6=config.guard.max_breadth_v6,
    )


@dataclass(frozen=True)
class Config:
    bgp: BgpConfig = field(default_factory=BgpConfig)
    api: ApiConfig = field(default_factory=ApiConfig)
    gobgp: GobgpConfig = field(default_factory=GobgpConfig)
    state: StateConfig = field(default_factory=StateConfig)
    controller: ControllerConfig = field(default_factory=ControllerConfig)
    guard: GuardConfig = field(default_factory=GuardConfig)


def parse_config(data: Mapping[str, Any]) -> Config:
    """Build a :class:`Config` from parsed TOML; raise :class:`ConfigError` naming the key."""
    root = Table(data, "")
    bgp = read_bgp(root.table("bgp"), Config().bgp)
    return root.read(Config, bgp=bgp)


def load_config(path: Path | None) -> Config:
    """Read and check a config file; ``None`` is the embedded default."""
    if path is None:
        return Config()
    return parse_config(read_toml(path))
