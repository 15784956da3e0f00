"""Unit tests for trafex.bgp.gobgpd_config: gobgpd's TOML rendered from trafexd's config."""

from __future__ import annotations

import ipaddress
import tomllib
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from trafex.bgp.config import BgpConfig, NeighborConfig
from trafex.bgp.gobgpd_config import DEFERRAL_TIME, LOCAL_ONLY_POLICY, render, restart_flags
from trafex.control.config import ConfigError, parse_config


def neighbor(address: str = "192.0.2.2", **kwargs: Any) -> NeighborConfig:
    ip = ipaddress.ip_address(address)
    families = ("ipv4-unicast", "ipv4-flowspec") if ip.version == 4 else ("ipv6-flowspec",)
    return NeighborConfig(
        address=ip, peer_as=kwargs.pop("peer_as", 65001), families=families, **kwargs
    )


def load(bgp: BgpConfig) -> dict[str, Any]:
    return tomllib.loads(render(bgp))


def test_default_global_section() -> None:
    """The default BgpConfig renders AS 65010, router-id 127.0.0.1, port 179 on
    loopback, and no neighbors."""
    data = load(BgpConfig())
    expected = {
        "as": 65010,
        "router-id": "127.0.0.1",
        "port": 179,
        "local-address-list": ["127.0.0.1"],
    }
    assert expected == data["global"]["config"]
    assert "neighbors" not in data


def test_local_only_import_policy() -> None:
    """A global import policy accepts locally originated paths and rejects the rest, so
    gobgpd never re-advertises one peer's routes to another."""
    data = load(BgpConfig())
    expected_apply = {
        "import-policy-list": [LOCAL_ONLY_POLICY],
        "default-import-policy": "reject-route",
    }
    assert expected_apply == data["global"]["apply-policy"]["config"]
    expected_policy = [
        {
            "name": LOCAL_ONLY_POLICY,
            "statements": [
                {
                    "name": "accept-local",
                    "conditions": {"bgp-conditions": {"route-type": "local"}},
                    "actions": {"route-disposition": "accept-route"},
                }
            ],
        }
    ]
    assert expected_policy == data["policy-definitions"]


def test_global_section_from_config() -> None:
    """AS, router-id, port and listen addresses come from the config."""
    bgp = BgpConfig(
        asn=4200000000,
        router_id=ipaddress.IPv4Address("192.0.2.1"),
        listen_addresses=("192.0.2.1", "2001:db8::1"),
        listen_port=-1,
    )
    expected = {
        "as": 4200000000,
        "router-id": "192.0.2.1",
        "port": -1,
        "local-address-list": ["192.0.2.1", "2001:db8::1"],
    }
    assert expected == load(bgp)["global"]["config"]


def test_minimal_neighbor() -> None:
    """A neighbor has its address, peer AS, admin-down (trafexd opens it), the connect
    retry timer and one afi-safi per family; no transport, password or multihop section
    unless configured."""
    bgp = BgpConfig(neighbors=(neighbor(),), graceful_restart=False)
    (rendered,) = load(bgp)["neighbors"]
    expected = {
        "config": {"neighbor-address": "192.0.2.2", "peer-as": 65001, "admin-down": True},
        "timers": {"config": {"connect-retry": 10}},
        "afi-safis": [
            {"config": {"afi-safi-name": "ipv4-unicast"}},
            {"config": {"afi-safi-name": "ipv4-flowspec"}},
        ],
    }
    assert expected == rendered


def test_full_neighbor() -> None:
    """description, password (auth-password), local-address, passive-mode and eBGP
    multihop are rendered where gobgpd expects them."""
    full = neighbor(
        "2001:db8::2",
        description="edge router",
        password="s3cret",
        local_address=ipaddress.ip_address("2001:db8::1"),
        passive=True,
        ebgp_multihop_ttl=4,
    )
    (rendered,) = load(BgpConfig(neighbors=(full,), graceful_restart=False))["neighbors"]
    expected = {
        "config": {
            "neighbor-address": "2001:db8::2",
            "peer-as": 65001,
            "admin-down": True,
            "description": "edge router",
            "auth-password": "s3cret",
        },
        "transport": {"config": {"local-address": "2001:db8::1", "passive-mode": True}},
        "timers": {"config": {"connect-retry": 10}},
        "ebgp-multihop": {"config": {"enabled": True, "multihop-ttl": 4}},
        "afi-safis": [{"config": {"afi-safi-name": "ipv6-flowspec"}}],
    }
    assert expected == rendered


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"passive": True}, {"passive-mode": True}),
        ({"local_address": ipaddress.ip_address("192.0.2.1")}, {"local-address": "192.0.2.1"}),
    ],
)
def test_transport_section_alone(kwargs: dict[str, Any], expected: dict[str, Any]) -> None:
    """passive and local-address each open the transport section on their own."""
    (rendered,) = load(BgpConfig(neighbors=(neighbor(**kwargs),)))["neighbors"]
    assert expected == rendered["transport"]["config"]


def test_several_neighbors_in_order() -> None:
    """Every neighbor is rendered, in the config's order."""
    bgp = BgpConfig(neighbors=(neighbor("192.0.2.2"), neighbor("192.0.2.3", peer_as=65002)))
    expected = [("192.0.2.2", 65001), ("192.0.2.3", 65002)]
    actual = [
        (n["config"]["neighbor-address"], n["config"]["peer-as"]) for n in load(bgp)["neighbors"]
    ]
    assert expected == actual


GRACEFUL = {
    "enabled": True,
    "restart-time": 120,
    "notification-enabled": True,
    "deferral-time": DEFERRAL_TIME,
}


def test_graceful_restart_on_every_neighbor_and_family() -> None:
    """By default every neighbor has graceful restart (restart time 120 s, RFC 8538's
    N bit, a short deferral) and every family it carries has mp-graceful-restart."""
    bgp = BgpConfig(neighbors=(neighbor("192.0.2.2"), neighbor("2001:db8::2")))
    rendered = load(bgp)["neighbors"]
    assert [n["graceful-restart"]["config"] for n in rendered] == [GRACEFUL, GRACEFUL]
    families = [
        (f["config"]["afi-safi-name"], f["mp-graceful-restart"]["config"])
        for n in rendered
        for f in n["afi-safis"]
    ]
    expected = [
        ("ipv4-unicast", {"enabled": True}),
        ("ipv4-flowspec", {"enabled": True}),
        ("ipv6-flowspec", {"enabled": True}),
    ]
    assert expected == families
    assert restart_flags(bgp) == ["-r"]


def test_restart_time_from_config() -> None:
    """[bgp] restart_time is the restart time gobgpd advertises."""
    bgp = BgpConfig(neighbors=(neighbor(),), restart_time=300)
    (rendered,) = load(bgp)["neighbors"]
    assert rendered["graceful-restart"]["config"]["restart-time"] == 300


def test_connect_retry_from_config() -> None:
    """[bgp] connect_retry is every neighbor's connect-retry (Go's default is 120 s,
    which can outlast the routers' restart time)."""
    bgp = BgpConfig(neighbors=(neighbor(), neighbor("2001:db8::2")), connect_retry=30)
    rendered = load(bgp)["neighbors"]
    assert [n["timers"]["config"]["connect-retry"] for n in rendered] == [30, 30]
    assert parse_config({"bgp": {"connect_retry": 30}}).bgp.connect_retry == 30
    with pytest.raises(ConfigError, match=r"^bgp\.connect_retry"):
        parse_config({"bgp": {"connect_retry": 4}})


def test_no_graceful_restart_when_off() -> None:
    """graceful_restart = false: no graceful-restart section, none per family, no -r."""
    bgp = BgpConfig(neighbors=(neighbor(),), graceful_restart=False)
    (rendered,) = load(bgp)["neighbors"]
    assert "graceful-restart" not in rendered
    assert all("mp-graceful-restart" not in f for f in rendered["afi-safis"])
    assert restart_flags(bgp) == []


def test_learning_gobgpd_opens_at_once_without_graceful_restart() -> None:
    """The enforcer's gobgpd (learn) announces nothing: its neighbors are not admin-down
    (nobody would open them) and it has no graceful restart or -r."""
    bgp = BgpConfig(neighbors=(neighbor(),))
    (rendered,) = tomllib.loads(render(bgp, learn=True))["neighbors"]
    expected = {
        "config": {"neighbor-address": "192.0.2.2", "peer-as": 65001},
        "timers": {"config": {"connect-retry": 10}},
        "afi-safis": [
            {"config": {"afi-safi-name": "ipv4-unicast"}},
            {"config": {"afi-safi-name": "ipv4-flowspec"}},
        ],
    }
    assert expected == rendered
    assert restart_flags(bgp, learn=True) == []


# Text that TOML basic strings can carry: any Unicode scalar value (no lone surrogate),
# control characters included.
TEXT = st.text(st.characters(codec="utf-8"), max_size=30)


@settings(max_examples=300)
@given(description=TEXT, password=TEXT)
@example(description="\x00\x1f\x7f\b\t\n\f\r\"\\'", password="\u00e9\uffff\U0010ffff")
def test_strings_are_escaped(description: str, password: str) -> None:
    """Quotes, backslashes, control characters and non-ASCII text (outside the BMP too)
    in description and password still give valid TOML, all ASCII (the file is written in
    the locale's encoding), that reads back the same strings."""
    text = render(BgpConfig(neighbors=(neighbor(description=description, password=password),)))
    assert text.isascii()
    (rendered,) = tomllib.loads(text)["neighbors"]
    expected = {"description": description, "auth-password": password}
    actual = {key: rendered["config"].get(key, "") for key in expected}
    assert expected == actual


def test_non_bmp_description_is_valid_toml() -> None:
    """A description with a character outside the BMP (an emoji) still renders valid
    TOML: as \\U0001f680, not as JSON's surrogate pair \\ud83d\\ude80, which TOML
    refuses (it is not a Unicode scalar value)."""
    description = "edge \U0001f680"
    (rendered,) = load(BgpConfig(neighbors=(neighbor(description=description),)))["neighbors"]
    assert description == rendered["config"]["description"]


def test_bgp_table_keys_reach_gobgpd() -> None:
    """[bgp] graceful_restart and restart_time, read from trafexd's TOML, are what
    gobgpd's file says; a restart time outside 1..4095 (12 bits on the wire) is refused
    naming the key."""
    neighbor_table = {"address": "192.0.2.2", "peer_as": 65001}
    config = parse_config({"bgp": {"restart_time": 300, "neighbor": [neighbor_table]}})
    (rendered,) = load(config.bgp)["neighbors"]
    assert rendered["graceful-restart"]["config"]["restart-time"] == 300
    off = parse_config({"bgp": {"graceful_restart": False, "neighbor": [neighbor_table]}})
    assert "graceful-restart" not in load(off.bgp)["neighbors"][0]
    with pytest.raises(ConfigError, match=r"^bgp\.restart_time"):
        parse_config({"bgp": {"restart_time": 4096}})
