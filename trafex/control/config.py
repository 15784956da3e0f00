"""trafexd's configuration: a TOML file, strictly checked, frozen after loading.

Unknown keys and wrong types are errors that name the key (``bgp.neighbor[0].peer_as``);
``trafexd --check-config FILE`` prints them and exits non-zero. Without a file, the
embedded default runs a sidecar on loopback with no neighbors, AS 65010. The file is
read by :meth:`trafex.config.Table.read` from the dataclasses below, which state every
default; the ``[bgp]`` and ``[gobgp]`` tables are :mod:`trafex.bgp.config`'s, the
``[guard]`` table is :class:`trafex.control.guardrails.Guards`.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from trafex.bgp.config import BgpConfig, GobgpConfig, read_bgp
from trafex.config import (
    NO_LIMIT,
    ConfigError,
    Parse,
    Range,
    StateConfig,
    Table,
    host_port,
    read_toml,
    split_host_port,
)
from trafex.control.guardrails import Guards, read_guards

__all__ = [
    "DEFAULT_API",
    "ApiConfig",
    "Config",
    "ConfigError",
    "ControllerConfig",
    "HttpConfig",
    "MetricsConfig",
    "guards_of",
    "load_config",
    "parse_config",
]

DEFAULT_API = "127.0.0.1:50061"
_SECONDS = Range(above=0)
_MIB = 1 << 20


@dataclass(frozen=True)
class ApiConfig:
    """``[api]``: trafex's gRPC API. Off loopback it needs TLS and a token (or mTLS)."""

    listen: Annotated[str, Parse(host_port)] = DEFAULT_API
    tls_cert: Path | None = None  # PEM certificate chain of the server
    tls_key: Path | None = None  # PEM private key of the server
    tls_client_ca: Path | None = None  # PEM CA bundle: clients must present a cert (mTLS)
    token_file: Path | None = None  # a file holding the bearer token clients must send
    max_message_bytes: Annotated[int, Range(1024, 64 * _MIB)] = 4 * _MIB
    max_concurrent_streams: Annotated[int, Range(1, 10_000)] = 64


@dataclass(frozen=True)
class HttpConfig:
    """``[http]``: the ExaBGP-style ``POST /command`` endpoint; off unless ``listen``."""

    listen: Annotated[str | None, Parse(host_port)] = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    token_file: Path | None = None
    max_body_bytes: Annotated[int, Range(256, _MIB)] = 64 * 1024


@dataclass(frozen=True)
class MetricsConfig:
    """``[metrics]``: Prometheus ``/metrics``; off unless ``listen``."""

    listen: Annotated[str | None, Parse(host_port)] = None


@dataclass(frozen=True)
class ControllerConfig:
    reconcile_interval: Annotated[float, _SECONDS] = 30.0
    expiry_interval: Annotated[float, _SECONDS] = 1.0
    batch_size: Annotated[int, Range(1, 100_000)] = 1000
    max_terms_per_component: Annotated[int, NO_LIMIT] = 5
    # "keep": stop without withdrawing (with [bgp] graceful_restart the routers keep the
    # rules as stale until trafexd is back); "withdraw": withdraw everything, then stop
    # (the intents stay stored and are announced again at the next start).
    on_shutdown: Literal["keep", "withdraw"] = "keep"


def guards_of(config: Config) -> Guards:
    """The guards of this config: ``[guard]``, and the BGP neighbors always protected."""
    neighbors = tuple(ipaddress.ip_network(n.address) for n in config.bgp.neighbors)
    return dataclasses.replace(config.guard, protected=config.guard.protected + neighbors)


@dataclass(frozen=True)
class Config:
    bgp: BgpConfig = field(default_factory=BgpConfig)
    api: ApiConfig = field(default_factory=ApiConfig)
    gobgp: GobgpConfig = field(default_factory=GobgpConfig)
    state: StateConfig = field(default_factory=StateConfig)
    controller: ControllerConfig = field(default_factory=ControllerConfig)
    guard: Guards = field(default_factory=Guards)
    http: HttpConfig = field(default_factory=HttpConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)


def parse_config(data: Mapping[str, Any]) -> Config:
    """Build a :class:`Config` from parsed TOML; raise :class:`ConfigError` naming the key."""
    root = Table(data, "")
    bgp = read_bgp(root.table("bgp"), Config().bgp)
    guard = read_guards(root.table("guard"))
    config = root.read(Config, bgp=bgp, guard=guard)
    check_exposure(config)
    return config


def _loopback(listen: str) -> bool:
    host, _ = split_host_port(listen)
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: assume it is reachable from elsewhere


def check_exposure(config: Config) -> None:
    """Refuse an API or HTTP endpoint off loopback without TLS and a token (or, for
    the gRPC API, mTLS); and a TLS half-configured anywhere."""
    api, http = config.api, config.http
    for name, cert, key in (
        ("api", api.tls_cert, api.tls_key),
        ("http", http.tls_cert, http.tls_key),
    ):
        if (cert is None) != (key is None):
            raise ConfigError("tls_cert and tls_key go together", f"{name}.tls_cert")
    if api.tls_client_ca is not None and api.tls_cert is None:
        raise ConfigError("mTLS needs the server's tls_cert and tls_key", "api.tls_client_ca")
    api_open = api.tls_cert is None or (api.token_file is None and api.tls_client_ca is None)
    if api_open and not _loopback(api.listen):
        raise ConfigError(
            f"{api.listen} is not loopback: set tls_cert, tls_key and token_file "
            "(or tls_client_ca for mTLS)",
            "api.listen",
        )
    http_open = http.tls_cert is None or http.token_file is None
    if http.listen is not None and http_open and not _loopback(http.listen):
        raise ConfigError(
            f"{http.listen} is not loopback: set tls_cert, tls_key and token_file",
            "http.listen",
        )


def load_config(path: Path | None) -> Config:
    """Read and check a config file; ``None`` is the embedded default. The files that
    ``[api]`` and ``[http]`` name (certificates, keys, tokens) may be given relative to
    the config file's folder."""
    if path is None:
        return Config()
    config = parse_config(read_toml(path))
    return dataclasses.replace(
        config,
        api=_files_under(config.api, path.parent),
        http=_files_under(config.http, path.parent),
    )


_FILE_KEYS = ("tls_cert", "tls_key", "tls_client_ca", "token_file")
TableT = TypeVar("TableT", ApiConfig, HttpConfig)


def _files_under(table: TableT, folder: Path) -> TableT:
    """``table`` with its relative file paths made relative to ``folder``."""
    moved: dict[str, Any] = {
        key: folder / value
        for key in _FILE_KEYS
        if isinstance(value := getattr(table, key, None), Path) and not value.is_absolute()
    }
    return dataclasses.replace(table, **moved)
