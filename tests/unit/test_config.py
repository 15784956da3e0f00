"""Unit tests for trafex.control.config: strict TOML config, errors that name the key."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

import pytest

from trafex.control.config import (
    Config,
    ConfigError,
    NeighborConfig,
    default_state_dir,
    load_config,
    parse_config,
)


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
    ("data", "key"),
    [
        ({"bgpp": {}}, "'bgpp'"),
        ({"bgp": {"nieghbor": []}}, "'bgp.nieghbor'"),
        (with_neighbor(peer_asn=65001), "'bgp.neighbor[0].peer_asn'"),
        ({"api": {"lisen": "127.0.0.1:1"}}, "'api.lisen'"),
        ({"gobgp": {"managed": True}}, "'gobgp.managed'"),
        ({"state": {"directory": "/tmp"}}, "'state.directory'"),
        ({"controller": {"interval": 1}}, "'controller.interval'"),
    ],
)
def test_unknown_key_is_named(data: dict[str, Any], key: str) -> None:
    """An unknown key at any level is an error that names it with its path."""
    expected = f"unknown key {key}"
    assert expected == refused(data)


def test_misspelt_peer_as_is_named() -> None:
    """``peer_asn`` instead of ``peer_as``: the error names the unknown key the user
    wrote, not only the missing one."""
    data = {"bgp": {"neighbor": [{"address": "192.0.2.2", "peer_asn": 65001}]}}
    assert "bgp.neighbor[0].peer_asn" in refused(data)


def test_missing_neighbor_keys() -> None:
    """A neighbor without address or peer_as is refused, naming the neighbor."""
    expected = "bgp.neighbor[0]: a neighbor needs 'address' and 'peer_as'"
    assert expected == refused({"bgp": {"neighbor": [{"address": "192.0.2.2"}]}})
    assert expected == refused({"bgp": {"neighbor": [{"peer_as": 1}]}})


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
            "controller.reconcile_interval: expected an integer or a number, got str",
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
    with pytest.raises(ConfigError, match=r"unknown key 'api\.lisen'"):
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
