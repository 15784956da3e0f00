"""Unit tests for trafex.trigger.config: the [trigger] table, its defaults and its errors."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from trafex.config import ConfigError
from trafex.model.flowspec import FlowActions, RouteTarget
from trafex.model.route import parse_community
from trafex.trigger.config import (
    default_config,
    load_trigger_config,
    parse_trigger,
)


def _error(doc: dict[str, object]) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse_trigger(doc)
    return info.value


def test_defaults_are_the_talks_demos() -> None:
    """No [trigger] table: dns → a route with next-hop self for 1 h; retransmit → redirect
    6:302 both directions with protocol tcp for 10 min; volumetric → discard; 50/s."""
    config = default_config()
    assert (config.max_intents_per_second, config.bucket) == (50.0, 50)
    dns = config.detectors["dns"]
    assert (dns.action, dns.ttl, dns.hold_down) == ("route", 3600.0, 3600.0)
    assert dns.route is not None and dns.route.next_hops == () and dns.route.communities == ()
    retransmit = config.detectors["retransmit"]
    assert retransmit.action == "flowspec" and retransmit.both_directions
    assert retransmit.flow is not None
    assert retransmit.flow.actions == FlowActions(redirect=RouteTarget.parse("6:302"))
    assert retransmit.flow.match == frozenset({"protocol"})
    assert (retransmit.ttl, retransmit.refresh_before) == (600.0, 200.0)
    volumetric = config.detectors["volumetric"]
    assert volumetric.flow is not None and volumetric.flow.actions.discard


def test_full_table() -> None:
    """Every documented key is read with its value."""
    config = parse_trigger(
        {
            "trigger": {
                "max_intents_per_second": 10,
                "burst": 3,
                "hold_down": "5m",
                "send_timeout": 0.2,
                "queue_size": 7,
                "dns": {
                    "action": "route",
                    "community": ["65000:666", "no-export"],
                    "large_community": ["65010:1:2"],
                    "next_hop": ["192.0.2.1", "3001:2:e10a::10"],
                    "local_preference": 200,
                    "med": 5,
                    "ttl": "2h",
                },
                "retransmit": {
                    "action": "flowspec",
                    "rate_limit": 125000,
                    "mark": 10,
                    "both_directions": False,
                    "match": ["protocol", "source-port", "destination-port"],
                    "ttl": 90,
                    "hold_down": 30,
                    "refresh_before": 10,
                },
                "volumetric": {"action": "none"},
            }
        }
    )
    assert (config.max_intents_per_second, config.bucket, config.queue_size) == (10.0, 3, 7)
    assert config.send_timeout == 0.2
    dns = config.detectors["dns"]
    assert dns.route is not None
    assert dns.route.communities == (parse_community("65000:666"), parse_community("no-export"))
    assert dns.route.large_communities == ((65010, 1, 2),)
    assert dns.route.next_hop_for(4) == ipaddress.ip_address("192.0.2.1")
    assert dns.route.next_hop_for(6) == ipaddress.ip_address("3001:2:e10a::10")
    assert (dns.route.local_preference, dns.route.med) == (200, 5)
    assert (dns.ttl, dns.hold_down) == (7200.0, 300.0)  # the global hold_down
    retransmit = config.detectors["retransmit"]
    assert retransmit.flow is not None
    assert retransmit.flow.actions == FlowActions(rate=125000.0, mark=10)
    assert not retransmit.both_directions
    assert (retransmit.ttl, retransmit.hold_down, retransmit.refresh_before) == (90.0, 30.0, 10.0)
    assert config.detectors["volumetric"].action == "none"


def test_ttl_zero_never_expires() -> None:
    """ttl = 0 means no expiry; the hold-down then defaults to an hour."""
    dns = parse_trigger({"trigger": {"dns": {"ttl": 0}}}).detectors["dns"]
    assert (dns.ttl, dns.hold_down, dns.refresh_before) == (None, 3600.0, 0.0)


@pytest.mark.parametrize(
    ("doc", "key"),
    [
        ({"trigger": {"rate": 5}}, "trigger.rate"),
        ({"trigger": {"dns": {"comunity": ["1:1"]}}}, "trigger.dns.comunity"),
        ({"trigger": {"dns": {"redirect": "6:302"}}}, "trigger.dns.redirect"),
        ({"trigger": {"dns": {"both_directions": True}}}, "trigger.dns.both_directions"),
        ({"trigger": {"retransmit": {"community": ["1:1"]}}}, "trigger.retransmit.community"),
        ({"trigger": {"volumetric": {"both_directions": True}}}, "trigger.volumetric"),
        ({"trigger": {"dns": {"action": "blackhole"}}}, "trigger.dns.action"),
        ({"trigger": {"dns": {"ttl": "soon"}}}, "trigger.dns.ttl"),
        ({"trigger": {"dns": {"ttl": 0.5}}}, "trigger.dns.ttl"),
        ({"trigger": {"dns": {"ttl": "11000d"}}}, "trigger.dns.ttl"),
        ({"trigger": {"hold_down": -1}}, "trigger.hold_down"),
        ({"trigger": {"dns": {"community": ["65000:99999"]}}}, "trigger.dns.community"),
        ({"trigger": {"dns": {"large_community": ["1:2"]}}}, "trigger.dns.large_community"),
        ({"trigger": {"dns": {"next_hop": "gateway"}}}, "trigger.dns.next_hop"),
        ({"trigger": {"dns": {"next_hop": ["10.0.0.1", "10.0.0.2"]}}}, "trigger.dns.next_hop"),
        ({"trigger": {"dns": {"med": -1}}}, "trigger.dns.med"),
        (
            {"trigger": {"retransmit": {"discard": True, "redirect": "6:302"}}},
            "trigger.retransmit.discard",
        ),
        (
            {"trigger": {"retransmit": {"discard": True, "rate_limit": 5}}},
            "trigger.retransmit.rate_limit",
        ),
        ({"trigger": {"retransmit": {"rate_limit": 0}}}, "trigger.retransmit.rate_limit"),
        ({"trigger": {"retransmit": {"redirect": "nowhere"}}}, "trigger.retransmit.redirect"),
        ({"trigger": {"retransmit": {"mark": 64}}}, "trigger.retransmit.mark"),
        ({"trigger": {"retransmit": {"match": ["source"]}}}, "trigger.retransmit.match"),
        ({"trigger": {"dns": {"action": "flowspec", "match": []}}}, "trigger.dns.match"),
        ({"trigger": {"retransmit": {"refresh_before": 900}}}, "trigger.retransmit"),
        ({"trigger": {"send_timeout": 0}}, "trigger.send_timeout"),
        ({"trigger": {"burst": 0}}, "trigger.burst"),
        ({"trigger": {"dns": "route"}}, "trigger.dns"),
        ({"trigger": []}, "trigger"),
    ],
)
def test_errors_name_the_key(doc: dict[str, object], key: str) -> None:
    """Unknown keys, keys of another action, wrong types and bad values name the key."""
    error = _error(doc)
    assert error.key.startswith(key), (error.key, str(error))
    assert str(error).startswith(f"{error.key}: ")


def test_key_of_another_action_says_so() -> None:
    """A FlowSpec key under action = "route" is refused as not applying, not as unknown."""
    error = _error({"trigger": {"dns": {"rate_limit": 1000}}})
    assert "does not apply to dns with action = 'route'" in error.message


def test_load_reads_only_the_trigger_table(tmp_path: Path) -> None:
    """The file's other tables ([detect], [bgp]) are not looked at."""
    path = tmp_path / "trafex.toml"
    path.write_text(
        '[detect]\nmystery = 1\n[bgp]\nasn = 1\n[trigger]\nhold_down = "1m"\n'
        '[trigger.retransmit]\nredirect = "65000:7"\n'
    )
    config = load_trigger_config(path)
    retransmit = config.detectors["retransmit"]
    assert retransmit.hold_down == 60.0
    assert retransmit.flow is not None
    assert str(retransmit.flow.actions.redirect) == "65000:7"


def test_load_errors_are_config_errors(tmp_path: Path) -> None:
    """A missing file and bad TOML are one-line ConfigErrors naming the file."""
    with pytest.raises(ConfigError, match=r"missing\.toml: No such file"):
        load_trigger_config(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[trigger\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_trigger_config(bad)
