"""Unit tests for trafex.control.config: strict TOML config, errors that name the key."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import pytest

from tests.certs import make_pki
from trafex.bgp.config import NeighborConfig
from trafex.cli import trafexd
from trafex.config import (
    ConfigError,
    Parse,
    Range,
    Table,
    default_state_dir,
    duration,
    host_port,
    split_host_port,
)
from trafex.control.config import Config, load_config, parse_config


def refused(data: dict[str, Any]) -> str:
    """The message of the ConfigError that parse_config(data) raises."""
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    return str(info.value)


def with_neighbor(**fields: Any) -> dict[str, Any]:
    """A config with one neighbor: 192.0.2.2 in AS 65001 plus ``fields``."""
    return {"bgp": {"neighbor": [{"address": "192.0.2.2", "peer_as": 65001, **fields}]}}


# ---------------------------------------------------------------------------------------
# Defaults


def test_embedded_defaults() -> None:
    """Without a file: AS 65010, router-id 127.0.0.1, listening on loopback:179, no
    neighbors, API on 127.0.0.1:50061, a managed gobgpd on 127.0.0.1:50051."""
    config = load_config(None)
    expected = {
        "asn": 65010,
        "router_id": ipaddress.IPv4Address("127.0.0.1"),
        "listen": (("127.0.0.1",), 179),
        "neighbors": (),
        "api": "127.0.0.1:50061",
        "gobgp": ("gobgpd", "127.0.0.1:50051", True, "info"),
        "controller": (30.0, 1.0, 1000, 5),
    }
    actual = {
        "asn": config.bgp.asn,
        "router_id": config.bgp.router_id,
        "listen": (config.bgp.listen_addresses, config.bgp.listen_port),
        "neighbors": config.bgp.neighbors,
        "api": config.api.listen,
        "gobgp": (
            config.gobgp.binary,
            config.gobgp.api,
            config.gobgp.manage,
            config.gobgp.log_level,
        ),
        "controller": (
            config.controller.reconcile_interval,
            config.controller.expiry_interval,
            config.controller.batch_size,
            config.controller.max_terms_per_component,
        ),
    }
    assert expected == actual


def test_empty_file_is_the_default() -> None:
    """An empty TOML document gives the same config as no file."""
    assert Config() == parse_config({})


def test_state_dir_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """$TRAFEX_STATE_DIR is the default state directory when set."""
    monkeypatch.setenv("TRAFEX_STATE_DIR", str(tmp_path))
    assert tmp_path == default_state_dir()
    assert tmp_path == parse_config({}).state.dir


def test_config_is_frozen() -> None:
    """The config cannot be changed after loading."""
    config = parse_config({})
    with pytest.raises(AttributeError):
        config.bgp.asn = 1  # type: ignore[misc]


# ---------------------------------------------------------------------------------------
# A full config


FULL = """
[bgp]
asn = 65100
router_id = "192.0.2.1"
listen_addresses = ["192.0.2.1", "2001:db8::1"]
listen_port = 1179

[[bgp.neighbor]]
address = "192.0.2.2"
peer_as = 65001
description = "edge"
password = "pw"
local_address = "192.0.2.1"
passive = true
ebgp_multihop_ttl = 2

[[bgp.neighbor]]
address = "2001:db8::2"
peer_as = 4200000000
families = ["ipv6-flowspec"]

[api]
listen = "[::1]:50061"

[gobgp]
binary = "/usr/sbin/gobgpd"
api = "127.0.0.1:50052"
manage = false
log_level = "debug"

[state]
dir = "/tmp/trafex-state"

[controller]
reconcile_interval = 5
expiry_interval = 0.5
batch_size = 10
max_terms_per_component = 0
"""


def test_full_config(tmp_path: Path) -> None:
    """Every key of every section is read from a file."""
    path = tmp_path / "trafexd.toml"
    path.write_text(FULL)
    config = load_config(path)
    expected_neighbors = (
        NeighborConfig(
            address=ipaddress.ip_address("192.0.2.2"),
            peer_as=65001,
            families=("ipv4-unicast", "ipv4-flowspec"),
            description="edge",
            local_address=ipaddress.ip_address("192.0.2.1"),
            password="pw",
            passive=True,
            ebgp_multihop_ttl=2,
        ),
        NeighborConfig(
            address=ipaddress.ip_address("2001:db8::2"),
            peer_as=4200000000,
            families=("ipv6-flowspec",),
        ),
    )
    assert expected_neighbors == config.bgp.neighbors
    expected = (
        65100,
        ipaddress.IPv4Address("192.0.2.1"),
        ("192.0.2.1", "2001:db8::1"),
        1179,
        "[::1]:50061",
        ("/usr/sbin/gobgpd", "127.0.0.1:50052", False, "debug"),
        Path("/tmp/trafex-state"),
        (5.0, 0.5, 10, 0),
    )
    actual = (
        config.bgp.asn,
        config.bgp.router_id,
        config.bgp.listen_addresses,
        config.bgp.listen_port,
        config.api.listen,
        (config.gobgp.binary, config.gobgp.api, config.gobgp.manage, config.gobgp.log_level),
        config.state.dir,
        (
            config.controller.reconcile_interval,
            config.controller.expiry_interval,
            config.controller.batch_size,
            config.controller.max_terms_per_component,
        ),
    )
    assert expected == actual


def test_neighbor_default_families() -> None:
    """A neighbor's default families are unicast and FlowSpec of its address family."""
    v4 = parse_config(with_neighbor()).bgp.neighbors[0]
    v6 = parse_config({"bgp": {"neighbor": [{"address": "2001:db8::2", "peer_as": 1}]}})
    expected = [("ipv4-unicast", "ipv4-flowspec"), ("ipv6-unicast", "ipv6-flowspec")]
    assert expected == [v4.families, v6.bgp.neighbors[0].families]


def test_listen_addresses_are_normalised() -> None:
    """Listen addresses are written in their canonical form."""
    config = parse_config({"bgp": {"listen_addresses": ["2001:DB8:0::1"]}})
    expected = ("2001:db8::1",)
    assert expected == config.bgp.listen_addresses


# ---------------------------------------------------------------------------------------
# Unknown keys


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            {"bgpp": {}},
            "bgpp: unknown key (known: api, bgp, controller, gobgp, guard, http, metrics, state)",
        ),
        (
            {"bgp": {"nieghbor": []}},
            "bgp.nieghbor: unknown key "
            "(known: asn, connect_retry, graceful_restart, listen_addresses, listen_port, "
            "neighbor, restart_time, router_id)",
        ),
        (
            with_neighbor(peer_asn=65001),
            "bgp.neighbor[0].peer_asn: unknown key (known: address, description, "
            "ebgp_multihop_ttl, families, local_address, passive, password, peer_as)",
        ),
        (
            {"api": {"lisen": "127.0.0.1:1"}},
            "api.lisen: unknown key (known: listen, max_concurrent_streams, "
            "max_message_bytes, tls_cert, tls_client_ca, tls_key, token_file)",
        ),
        (
            {"gobgp": {"managed": True}},
            "gobgp.managed: unknown key (known: api, binary, log_level, manage, memory_limit)",
        ),
        ({"state": {"directory": "/tmp"}}, "state.directory: unknown key (known: dir)"),
        (
            {"controller": {"interval": 1}},
            "controller.interval: unknown key (known: batch_size, expiry_interval, "
            "max_terms_per_component, on_shutdown, reconcile_interval)",
        ),
    ],
)
def test_unknown_key_is_named(data: dict[str, Any], expected: str) -> None:
    """An unknown key at any level is an error that names it with its path, and the
    keys its table knows."""
    assert expected == refused(data)


def test_misspelt_peer_as_is_named() -> None:
    """``peer_asn`` instead of ``peer_as``: the error names the unknown key the user
    wrote, not only the missing one."""
    data = {"bgp": {"neighbor": [{"address": "192.0.2.2", "peer_asn": 65001}]}}
    assert "bgp.neighbor[0].peer_asn" in refused(data)


def test_missing_neighbor_keys() -> None:
    """A neighbor without address or peer_as is refused, naming the missing key."""
    expected = ["bgp.neighbor[0].peer_as: missing", "bgp.neighbor[0].address: missing"]
    actual = [
        refused({"bgp": {"neighbor": [{"address": "192.0.2.2"}]}}),
        refused({"bgp": {"neighbor": [{"peer_as": 1}]}}),
    ]
    assert expected == actual


# ---------------------------------------------------------------------------------------
# Wrong types and values


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"bgp": 5}, "bgp: expected a table, got int"),
        ({"bgp": {"asn": "65000"}}, "bgp.asn: expected an integer, got str"),
        ({"bgp": {"asn": True}}, "bgp.asn: expected an integer, got a boolean"),
        ({"bgp": {"listen_port": 1.5}}, "bgp.listen_port: expected an integer, got float"),
        ({"bgp": {"neighbor": {"address": "x"}}}, "bgp.neighbor: expected a list, got dict"),
        ({"bgp": {"neighbor": [5]}}, "bgp.neighbor[0]: expected a table, got int"),
        (
            {"bgp": {"listen_addresses": "127.0.0.1"}},
            "bgp.listen_addresses: expected a list of strings",
        ),
        ({"bgp": {"listen_addresses": [1]}}, "bgp.listen_addresses: expected a list of strings"),
        (with_neighbor(peer_as="65001"), "bgp.neighbor[0].peer_as: expected an integer, got str"),
        (with_neighbor(passive="yes"), "bgp.neighbor[0].passive: expected a boolean, got str"),
        (
            with_neighbor(families="ipv4-unicast"),
            "bgp.neighbor[0].families: expected a list, got str",
        ),
        (with_neighbor(description=1), "bgp.neighbor[0].description: expected a string, got int"),
        (
            with_neighbor(ebgp_multihop_ttl=True),
            "bgp.neighbor[0].ebgp_multihop_ttl: expected an integer, got a boolean",
        ),
        ({"gobgp": {"manage": "true"}}, "gobgp.manage: expected a boolean, got str"),
        ({"gobgp": {"binary": ["gobgpd"]}}, "gobgp.binary: expected a string, got list"),
        ({"state": {"dir": 5}}, "state.dir: expected a string, got int"),
        (
            {"controller": {"reconcile_interval": "5s"}},
            "controller.reconcile_interval: expected a number, got str",
        ),
        (
            {"controller": {"batch_size": 1.0}},
            "controller.batch_size: expected an integer, got float",
        ),
        (
            {"controller": {"max_terms_per_component": "5"}},
            "controller.max_terms_per_component: expected an integer, got str",
        ),
        ({"api": {"listen": 50061}}, "api.listen: expected HOST:PORT, got 50061"),
    ],
)
def test_wrong_type_names_the_key(data: dict[str, Any], expected: str) -> None:
    """A value of the wrong type is an error naming the key and the expected type."""
    assert expected == refused(data)


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"bgp": {"asn": 0}}, "bgp.asn"),
        ({"bgp": {"asn": 4294967296}}, "bgp.asn"),
        (with_neighbor(peer_as=0), "bgp.neighbor[0].peer_as"),
        ({"bgp": {"router_id": "2001:db8::1"}}, "bgp.router_id"),
        ({"bgp": {"router_id": "nonsense"}}, "bgp.router_id"),
        (with_neighbor(address="192.0.2.300"), "bgp.neighbor[0].address"),
        (with_neighbor(address=5), "bgp.neighbor[0].address"),
        (with_neighbor(local_address="x"), "bgp.neighbor[0].local_address"),
        ({"api": {"listen": "127.0.0.1"}}, "api.listen"),
        ({"api": {"listen": ":50061"}}, "api.listen"),
        ({"api": {"listen": "127.0.0.1:0"}}, "api.listen"),
        ({"api": {"listen": "127.0.0.1:65536"}}, "api.listen"),
        ({"gobgp": {"api": "localhost:http"}}, "gobgp.api"),
        ({"gobgp": {"memory_limit": "1GB"}}, "gobgp.memory_limit"),
        ({"gobgp": {"memory_limit": "0MiB"}}, "gobgp.memory_limit"),
        ({"gobgp": {"memory_limit": 1024}}, "gobgp.memory_limit"),
        ({"controller": {"batch_size": 0}}, "controller.batch_size"),
        ({"controller": {"batch_size": 100001}}, "controller.batch_size"),
        ({"controller": {"reconcile_interval": 0}}, "controller.reconcile_interval"),
        ({"controller": {"expiry_interval": -1}}, "controller.expiry_interval"),
        ({"controller": {"reconcile_interval": float("nan")}}, "controller.reconcile_interval"),
        ({"controller": {"expiry_interval": float("inf")}}, "controller.expiry_interval"),
        ({"controller": {"max_terms_per_component": -1}}, "controller.max_terms_per_component"),
    ],
)
def test_bad_value_names_the_key(data: dict[str, Any], key: str) -> None:
    """A value out of range or unparsable is an error that starts with the key."""
    assert refused(data).startswith(key + ":")


@pytest.mark.parametrize(
    "families", [["ipv4-unicast", "l2vpn-evpn"], ["IPv4-Unicast"], ["ipv4"], [5]]
)
def test_bad_family_names(families: list[Any]) -> None:
    """An unknown family is refused, naming the neighbor's families and the valid ones."""
    message = refused(with_neighbor(families=families))
    assert message.startswith("bgp.neighbor[0].families: unknown family")
    assert "ipv4-unicast, ipv6-unicast, ipv4-flowspec, ipv6-flowspec" in message


def test_no_family() -> None:
    """An empty family list is refused."""
    expected = "bgp.neighbor[0].families: give at least one family"
    assert expected == refused(with_neighbor(families=[]))


def test_duplicate_neighbor_addresses() -> None:
    """The same neighbor address twice (in any spelling) is refused."""
    data = {
        "bgp": {
            "neighbor": [
                {"address": "2001:db8::2", "peer_as": 1},
                {"address": "2001:DB8:0::2", "peer_as": 2},
            ]
        }
    }
    expected = "bgp.neighbor: the same address is given twice"
    assert expected == refused(data)


@pytest.mark.parametrize("port", [0, 65536, -2, 100000])
def test_listen_port_range(port: int) -> None:
    """listen_port is 1..65535, or -1 not to listen."""
    expected = "bgp.listen_port: use a port 1..65535, or -1 not to listen"
    assert expected == refused({"bgp": {"listen_port": port}})


@pytest.mark.parametrize("port", [1, 179, 65535, -1])
def test_listen_port_accepted(port: int) -> None:
    """The edges of the range and -1 are accepted."""
    assert port == parse_config({"bgp": {"listen_port": port}}).bgp.listen_port


def test_bad_listen_address_is_a_config_error() -> None:
    """An unparsable listen address is a ConfigError naming bgp.listen_addresses, not a
    bare ValueError from ipaddress."""
    assert refused({"bgp": {"listen_addresses": ["nonsense"]}}).startswith("bgp.listen_addresses:")


def test_integer_router_id_is_a_config_error() -> None:
    """router_id = 5 is the wrong type (TOML integer, not a string) and must be refused;
    IPv4Address(5) would silently make it 0.0.0.5."""
    assert refused({"bgp": {"router_id": 5}}).startswith("bgp.router_id:")


@pytest.mark.parametrize("ttl", [-1, 256])
def test_multihop_ttl_range(ttl: int) -> None:
    """ebgp_multihop_ttl is an IP TTL (1..255, 0 = off); other values are refused
    instead of being written into gobgpd's config."""
    assert refused(with_neighbor(ebgp_multihop_ttl=ttl)).startswith(
        "bgp.neighbor[0].ebgp_multihop_ttl:"
    )


@pytest.mark.parametrize("ttl", [0, 1, 255])
def test_multihop_ttl_accepted(ttl: int) -> None:
    """0 (no multihop) and the edges of the TTL range are accepted."""
    (neighbor,) = parse_config(with_neighbor(ebgp_multihop_ttl=ttl)).bgp.neighbors
    assert ttl == neighbor.ebgp_multihop_ttl


# ---------------------------------------------------------------------------------------
# Files


def test_missing_file(tmp_path: Path) -> None:
    """A missing file is a ConfigError with the path and the system's reason."""
    path = tmp_path / "missing.toml"
    with pytest.raises(ConfigError) as info:
        load_config(path)
    expected = f"{path}: No such file or directory"
    assert expected == str(info.value)


def test_invalid_toml(tmp_path: Path) -> None:
    """A file that is not TOML is a ConfigError saying so, with the parser's position."""
    path = tmp_path / "bad.toml"
    path.write_text("[bgp\nasn = 1\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value).startswith(f"{path}: not valid TOML: ")
    assert "line 1" in str(info.value)


def test_file_errors_are_checked_too(tmp_path: Path) -> None:
    """A file's unknown keys are refused like parse_config's."""
    path = tmp_path / "typo.toml"
    path.write_text("[api]\nlisen = '127.0.0.1:1'\n")
    with pytest.raises(ConfigError, match=r"^api\.lisen: unknown key"):
        load_config(path)


def test_binary_file_is_a_config_error(tmp_path: Path) -> None:
    """A file that is not UTF-8 text is a ConfigError with a readable message, not a
    UnicodeDecodeError."""
    path = tmp_path / "binary.toml"
    path.write_bytes(b"\xff\xfe[bgp]\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    expected = f"{path}: not UTF-8 text (byte 0xff at offset 0)"
    assert expected == str(info.value)


# ---------------------------------------------------------------------------------------
# The reader every config uses (trafex.config): dataclasses drive it


@dataclass(frozen=True)
class Inner:
    level: Literal["low", "high"] = "low"
    ports: tuple[int, ...] = (53,)


@dataclass(frozen=True)
class Sample:
    name: str
    count: Annotated[int, Range(1, 10)] = 1
    ratio: Annotated[float, Range(above=0)] = 0.5
    enabled: bool = True
    path: Path = Path("/tmp/x")
    tags: frozenset[str] = frozenset()
    weights: tuple[float, ...] = ()
    target: Annotated[str, Parse(host_port)] = "127.0.0.1:1"
    ttl: Annotated[float | None, Parse(duration)] = None
    inner: Inner = field(default_factory=lambda: Inner(level="high"))


def read_sample(data: dict[str, Any], **given: Any) -> Sample:
    sample: Sample = Table(data, "s").read(Sample, **given)
    return sample


def sample_refused(data: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as info:
        read_sample(data)
    return str(info.value)


def test_reader_defaults_come_from_the_dataclass() -> None:
    """Absent keys take the dataclass's defaults, a nested table its field's default."""
    expected = Sample(name="n", inner=Inner(level="high"))
    assert expected == read_sample({"name": "n"})


def test_reader_reads_every_type() -> None:
    """Each field is read by its type: an integer is a float too, lists become tuples
    or frozensets, a string becomes a Path, Parse and Range apply, nested tables read
    their dataclass (their absent keys from the field's default)."""
    data = {
        "name": "n",
        "count": 10,
        "ratio": 2,
        "enabled": False,
        "path": "/srv",
        "tags": ["a", "b", "a"],
        "weights": [1, 2.5],
        "target": "[::1]:50061",
        "ttl": "10m",
        "inner": {"ports": [1, 2]},
    }
    expected = Sample("n", 10, 2.0, False, Path("/srv"), frozenset({"a", "b"}), (1.0, 2.5),
                      "[::1]:50061", 600.0, Inner("high", (1, 2)))  # fmt: skip
    actual = read_sample(data)
    assert expected == actual
    assert isinstance(actual.ratio, float)


def test_reader_given_fields_are_not_read() -> None:
    """A field the caller gives is taken as given; its key would be an unknown key."""
    expected = Sample(name="given")
    assert expected == read_sample({}, name="given")
    assert sample_refused({"name": "n", "extra": 1}).startswith("s.extra: unknown key (known:")


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({}, "s.name: missing"),
        ({"nmae": "n"}, "s.nmae: unknown key (known: count, enabled, inner, name, path, "
         "ratio, tags, target, ttl, weights)"),
        ({"name": 5}, "s.name: expected a string, got int"),
        ({"name": "n", "count": 0}, "s.count: 0 is out of range 1..10"),
        ({"name": "n", "count": True}, "s.count: expected an integer, got a boolean"),
        ({"name": "n", "ratio": 0}, "s.ratio: must be > 0, got 0"),
        ({"name": "n", "ratio": float("inf")}, "s.ratio: inf is not a finite number"),
        ({"name": "n", "ratio": "1"}, "s.ratio: expected a number, got str"),
        ({"name": "n", "tags": ["a", 1]}, "s.tags: expected a list of strings"),
        ({"name": "n", "weights": [True]}, "s.weights: expected a list of numbers"),
        ({"name": "n", "target": "::1:50061"},
         "s.target: write an IPv6 address as [ADDRESS]:PORT, got '::1:50061'"),
        ({"name": "n", "ttl": "soon"},
         "s.ttl: 'soon' is not a duration (90, '90s', '10m', '2h', '1d')"),
        ({"name": "n", "inner": {"level": "mid"}},
         "s.inner.level: use one of low, high, not 'mid'"),
        ({"name": "n", "inner": {"ports": [1.5]}}, "s.inner.ports: expected a list of integers"),
        ({"name": "n", "inner": 5}, "s.inner: expected a table, got int"),
    ],
)  # fmt: skip
def test_reader_errors_name_the_key(data: dict[str, Any], expected: str) -> None:
    """Wrong types, values out of range and unknown keys are errors naming the key; a
    misspelt required key is named as unknown before the missing one."""
    assert expected == sample_refused(data)


def test_config_error_carries_the_key() -> None:
    """A ConfigError has the key and the message apart, and prints them as one line."""
    with pytest.raises(ConfigError) as info:
        read_sample({"name": "n", "count": 11})
    expected = ("s.count", "11 is out of range 1..10", "s.count: 11 is out of range 1..10")
    assert expected == (info.value.key, info.value.message, str(info.value))


def test_a_field_without_a_reader_must_be_given() -> None:
    """A field whose type has no reader is a TypeError (a mistake in the dataclass)
    unless the caller gives it."""

    @dataclass(frozen=True)
    class Odd:
        items: tuple[Inner, ...] = ()

    expected = Odd()
    assert expected == Table({}, "t").read(Odd, items=())
    with pytest.raises(TypeError, match="items: no reader for"):
        Table({}, "t").read(Odd)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("127.0.0.1:50061", ("127.0.0.1", 50061)), ("[::1]:1", ("::1", 1)),
     ("localhost:65535", ("localhost", 65535))],
)  # fmt: skip
def test_split_host_port(text: str, expected: tuple[str, int]) -> None:
    """HOST:PORT, an IPv6 address in brackets."""
    assert expected == split_host_port(text)


@pytest.mark.parametrize("text", ["::1:50061", "host", ":1", "h:0", "h:65536", "h:x", 5])
def test_split_host_port_errors(text: object) -> None:
    """A missing host or port, a port out of range, an IPv6 address without brackets."""
    with pytest.raises(ValueError, match=r"HOST:PORT|ADDRESS"):
        split_host_port(text)


# ---------------------------------------------------------------------------------------
# [api] off loopback: TLS and a token, or mTLS (checked at load, so --check-config too)

_OPEN = "is not loopback: set tls_cert, tls_key and token_file (or tls_client_ca for mTLS)"
_MTLS = "mTLS needs the server's tls_cert and tls_key"
_TLS = {"tls_cert": "/etc/trafex/api.crt", "tls_key": "/etc/trafex/api.key"}


@pytest.mark.parametrize(
    ("api", "expected"),
    [
        ({"listen": "[::]:50061"}, f"api.listen: [::]:50061 {_OPEN}"),
        ({"listen": "0.0.0.0:50061"}, f"api.listen: 0.0.0.0:50061 {_OPEN}"),
        ({"listen": "192.0.2.1:50061"}, f"api.listen: 192.0.2.1:50061 {_OPEN}"),
        ({"listen": "trafex.example:50061"}, f"api.listen: trafex.example:50061 {_OPEN}"),
        ({"listen": "[::]:50061", **_TLS}, f"api.listen: [::]:50061 {_OPEN}"),
        ({"listen": "[::]:50061", "token_file": "/t"}, f"api.listen: [::]:50061 {_OPEN}"),
        ({"tls_cert": "/c"}, "api.tls_cert: tls_cert and tls_key go together"),
        ({"tls_key": "/k", "token_file": "/t"}, "api.tls_cert: tls_cert and tls_key go together"),
        ({"tls_client_ca": "/ca"}, f"api.tls_client_ca: {_MTLS}"),
    ],
)  # fmt: skip
def test_api_exposure_refused(api: dict[str, Any], expected: str) -> None:
    """An API off loopback (any address, a host name) without TLS and a token (TLS
    alone, a token alone) is refused naming api.listen; half a TLS setup, or a client
    CA without the server's certificate, is refused anywhere."""
    assert expected == refused({"api": api})


@pytest.mark.parametrize(
    "api",
    [
        {"listen": "127.0.0.1:50061"},
        {"listen": "127.0.0.2:50061"},
        {"listen": "[::1]:50061"},
        {"listen": "localhost:50061"},
        {"listen": "127.0.0.1:50061", "token_file": "/t"},  # a token over loopback
        {"listen": "127.0.0.1:50061", **_TLS},
        {"listen": "[::]:50061", **_TLS, "token_file": "/t"},
        {"listen": "192.0.2.1:50061", **_TLS, "tls_client_ca": "/ca"},  # mTLS
        {"listen": "[::]:50061", **_TLS, "tls_client_ca": "/ca", "token_file": "/t"},
    ],
)
def test_api_exposure_accepted(api: dict[str, Any]) -> None:
    """Loopback (127/8, ::1, localhost) needs nothing; off loopback, TLS with a token or
    with a client CA (mTLS) is accepted; the paths are kept as given."""
    config = parse_config({"api": api})
    assert config.api.listen == api["listen"]
    assert config.api.token_file == (Path(api["token_file"]) if "token_file" in api else None)


def test_check_config_refuses_an_open_api(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """trafexd --check-config on an API off loopback without TLS exits 2 with one line
    naming api.listen."""
    path = tmp_path / "trafex.toml"
    path.write_text('[api]\nlisten = "[::]:50061"\n')
    assert trafexd.main(["--check-config", str(path)]) == 2
    assert capsys.readouterr().err == f"trafexd: api.listen: [::]:50061 {_OPEN}\n"


@pytest.mark.parametrize(("section", "listen"), [("api", "[::]:50061"), ("http", "[::]:5000")])
def test_check_config_reads_the_tls_and_token_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], section: str, listen: str
) -> None:
    """The gRPC API's and the HTTP endpoint's token and certificate are read by
    --check-config (not only when trafexd starts serving): a missing token file or a
    key that is not PEM is one line naming it, exit 2; with the files in place, ok."""
    pki = make_pki().write(tmp_path)
    token = tmp_path / "token"
    path = tmp_path / "trafex.toml"
    path.write_text(
        f'[{section}]\nlisten = "{listen}"\ntls_cert = "{pki.server_cert}"\n'
        f'tls_key = "{pki.server_key}"\ntoken_file = "{token}"\n'
    )
    assert trafexd.main(["--check-config", str(path)]) == 2
    expected = f"trafexd: {section}.token_file {token}: cannot read: No such file or directory\n"
    assert capsys.readouterr().err == expected
    token.write_text("s3cret\n")
    token.chmod(0o600)
    assert trafexd.main(["--check-config", str(path)]) == 0
    assert "ok (AS 65010" in capsys.readouterr().out
    broken = tmp_path / "broken.pem"
    broken.write_text("not a key\n")
    path.write_text(path.read_text().replace(str(pki.server_key), str(broken)))
    assert trafexd.main(["--check-config", str(path)]) == 2
    expected = f"trafexd: {section}.tls_key {broken}: no PEM private key in it\n"
    assert capsys.readouterr().err == expected


def test_api_files_are_relative_to_the_config_file(tmp_path: Path) -> None:
    """``[api]`` and ``[http]`` files given relative are read from the config file's
    folder (the lab's trafexd.toml names pki/…); absolute ones stay as they are."""
    folder = tmp_path / "etc"
    folder.mkdir()
    path = folder / "trafex.toml"
    path.write_text(
        '[api]\nlisten = "[::]:50061"\ntls_cert = "pki/cert.pem"\ntls_key = "/k.pem"\n'
        'token_file = "pki/token"\n[http]\nlisten = "127.0.0.1:5000"\ntoken_file = "t"\n'
    )
    config = load_config(path)
    assert config.api.tls_cert == folder / "pki" / "cert.pem"
    assert config.api.tls_key == Path("/k.pem")
    assert config.api.token_file == folder / "pki" / "token"
    assert config.http.token_file == folder / "t"
