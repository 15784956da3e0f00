"""Unit tests for trafex.enforce.config: the enforcer's TOML, read strictly."""

from __future__ import annotations

import ipaddress
import tomllib
from pathlib import Path
from typing import Any

import pytest

from trafex.config import ConfigError, default_state_dir
from trafex.enforce import config as enforce_config
from trafex.enforce.config import (
    EnforceConfig,
    RedirectConfig,
    StaticRoute,
    load_enforce_config,
    parse_enforce_config,
)
from trafex.model.flowspec import RouteTarget

NEIGHBOR = {"neighbor": [{"address": "3001:2:e10a::10", "peer_as": 65010}]}


def config(**tables: Any) -> dict[str, Any]:
    """A config with one neighbor and ``tables``."""
    return {"bgp": dict(NEIGHBOR), **tables}


def refused(data: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as info:
        parse_enforce_config(data)
    return str(info.value)


def test_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Beside the neighbor, everything has a default: no listening, its own gobgpd API
    (50052, beside trafexd's), a state folder of its own, table inet trafex."""
    monkeypatch.setenv("TRAFEX_STATE_DIR", str(tmp_path))
    loaded = parse_enforce_config(config())
    expected = (-1, "127.0.0.1:50052", default_state_dir() / "enforce", "trafex", (), 64, 1000)
    settings = loaded.enforce
    actual = (
        loaded.bgp.listen_port,
        loaded.gobgp.api,
        loaded.state.dir,
        settings.table,
        settings.interfaces,
        settings.max_branches,
        settings.rule_priority,
    )
    assert expected == actual
    assert EnforceConfig().gobgp == loaded.gobgp


def test_the_documented_example() -> None:
    """The example in the module's docstring loads as it says."""
    example = (enforce_config.__doc__ or "").split("```toml\n")[1].split("```")[0]
    loaded = parse_enforce_config(tomllib.loads(example))
    expected = RedirectConfig(
        RouteTarget.parse("6:302"),
        302,
        302,
        (
            StaticRoute(ipaddress.ip_network("::/0"), ipaddress.ip_address("3001:12::2")),
            StaticRoute(
                ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_address("192.0.2.1"), "eth2"
            ),
        ),
    )
    assert (expected,) == loaded.enforce.redirects
    assert loaded.enforce.interfaces == ("eth1",)


def test_redirect_defaults() -> None:
    """A redirect's table is its target's local part, its mark the table."""
    data = config(enforce={"redirect": [{"target": "6:302"}, {"target": "6:7", "table": 70}]})
    expected = [(302, 302), (70, 70)]
    actual = [(r.table, r.mark) for r in parse_enforce_config(data).enforce.redirects]
    assert expected == actual


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({}, "bgp.neighbor: the enforcer needs a peer that sends it FlowSpec"),
        (config(enforce={"tabel": "x"}), "enforce.tabel: unknown key (known: interfaces, "
         "max_branches, priority, redirect, rule_priority, table)"),
        (config(enforce={"table": "in-et"}), "enforce.table: use letters, digits and _ only"),
        (config(enforce={"interfaces": ["eth1", "a" * 16]}),
         "enforce.interfaces: expected interface names"),
        (config(enforce={"max_branches": 0}), "enforce.max_branches: 0 is out of range 1..4096"),
        (config(enforce={"redirect": [{}]}), "enforce.redirect[0].target: missing"),
        (config(enforce={"redirect": [{"target": "x"}]}),
         "enforce.redirect[0].target: 'x' is not ASN:NN or IPv4:NN"),
        (config(enforce={"redirect": [{"target": "6:254"}]}),
         "enforce.redirect[0].table: 254 is not a free routing table (1..2^32-1, not "
         "253-255); give table = N"),
        (config(enforce={"redirect": [{"target": "6:1", "mark": 0}]}),
         "enforce.redirect[0].mark: 0 is out of range 1..4294967295 (a firewall mark)"),
        (config(enforce={"redirect": [{"target": "6:1", "routes": ["::/0 via 1.2.3.4"]}]}),
         "enforce.redirect[0].routes: '::/0 via 1.2.3.4': the gateway is not of the "
         "prefix's family"),
        (config(enforce={"redirect": [{"target": "6:1"}, {"target": "7:1"}]}),
         "enforce.redirect: the same table is given twice"),
        (config(enforce={"rule_priority": 32000, "redirect": [{"target": "6:1"}]}),
         "enforce.rule_priority: use 1..31999"),
        (config(gobgp={"api": "::1:50052"}),
         "gobgp.api: write an IPv6 address as [ADDRESS]:PORT, got '::1:50052'"),
    ],
)  # fmt: skip
def test_errors_name_the_key(data: dict[str, Any], expected: str) -> None:
    """Wrong types and values, unknown keys and conflicting redirects name the key."""
    assert expected == refused(data)


def test_load_file_errors(tmp_path: Path) -> None:
    """A missing file or one that is not TOML is one ConfigError naming the file."""
    missing = tmp_path / "missing.toml"
    broken = tmp_path / "broken.toml"
    broken.write_text("[bgp\n")
    messages = []
    for path in (missing, broken):
        with pytest.raises(ConfigError) as info:
            load_enforce_config(path)
        messages.append(str(info.value))
    assert f"{missing}: No such file or directory" == messages[0]
    assert messages[1].startswith(f"{broken}: not valid TOML: ")
