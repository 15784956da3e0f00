"""Unit tests for trafex.cli.ctl: durations, rule text from options, the JSON shape."""

from __future__ import annotations

import argparse

import pytest

from trafex.cli.ctl import UsageError, build_parser, flow_dict, parse_duration, rule_text
from trafex.control import wire
from trafex.model.grammar import parse_rule
from trafex.model.intent import FlowIntent, IntentMeta


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90", 90.0),
        ("90s", 90.0),
        ("10m", 600.0),
        ("2h", 7200.0),
        ("1d", 86400.0),
        ("1w", 604800.0),
        ("1.5h", 5400.0),
        (" 10M ", 600.0),
    ],
)
def test_parse_duration(text: str, expected: float) -> None:
    """Seconds, or a number with s/m/h/d/w, in seconds."""
    assert expected == parse_duration(text)


@pytest.mark.parametrize("text", ["", "junk", "10x", "0", "0s", "-5m", "m", "1h30m", "1e3"])
def test_parse_duration_junk(text: str) -> None:
    """Anything else (and zero) is a UsageError naming --ttl and the text."""
    with pytest.raises(UsageError) as info:
        parse_duration(text)
    assert str(info.value).startswith(f"--ttl: {text!r} is not a duration")


def args(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(list(argv))


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (
            (
                "add-flow",
                "--destination",
                "192.0.2.1/32",
                "--protocol",
                "tcp",
                "--destination-port",
                ">=1024&<=2048",
                "--tcp-flags",
                "S",
                "--rate-limit",
                "125000",
                "--ttl",
                "10m",
            ),
            "destination 192.0.2.1/32 protocol tcp destination-port >=1024&<=2048 tcp-flags S "
            "rate-limit 125000",
        ),
        (
            (
                "add-flow",
                "--source",
                "3001:1:a::10/128",
                "--destination",
                "3001:4:b::10/128",
                "--redirect",
                "6:302",
            ),
            "destination 3001:4:b::10/128 source 3001:1:a::10/128 redirect 6:302",
        ),
        (
            ("add-flow", "source 3001:1:a::10/128 destination 3001:4:b::10/128 redirect 6:302"),
            "source 3001:1:a::10/128 destination 3001:4:b::10/128 redirect 6:302",
        ),
        (
            ("add-flow", "destination", "10.0.0.1/32", "--discard", "--action", "sample"),
            "destination 10.0.0.1/32 discard action sample",
        ),
        (
            ("add-flow", "--family", "ipv6", "--flow-label", "5", "--mark", "0"),
            "ipv6 flow-label 5 mark 0",
        ),
        (
            ("add-flow", "--destination-port", "=80 =443", "--port", "[ =1 =2 ]", "--discard"),
            "port [ =1 =2 ] destination-port [ =80 =443 ] discard",
        ),
        (
            ("add-flow", "--fragment", " is-fragment ", "--icmp-type", "8", "--discard"),
            "icmp-type 8 fragment is-fragment discard",
        ),
    ],
)
def test_rule_text_for_add_flow(argv: tuple[str, ...], expected: str) -> None:
    """add-flow's TEXT and options become one line of the grammar (TEXT first, then the
    family, prefixes, components in type order, actions), several terms in brackets."""
    namespace = args(*argv)
    text = rule_text(namespace, need_actions=True)
    assert expected == text
    parse_rule(text)  # and it is a valid rule


def test_rule_text_for_del_flow_has_no_actions() -> None:
    """del-flow needs only the match."""
    namespace = args("del-flow", "--destination", "10.0.0.1/32", "--protocol", "udp")
    expected = "destination 10.0.0.1/32 protocol udp"
    assert expected == rule_text(namespace, need_actions=False)


@pytest.mark.parametrize("command", ["add-flow", "del-flow"])
def test_rule_text_needs_something(command: str) -> None:
    """No TEXT and no option is a UsageError pointing at --help."""
    with pytest.raises(UsageError, match="give the rule as TEXT or as options"):
        rule_text(args(command), need_actions=command == "add-flow")


def test_flow_dict_shape() -> None:
    """flow_dict gives the stable JSON shape of a stored rule: its id, family, text,
    components, actions, NLRI and meta (ISO times in UTC, none for no expiry)."""
    rule = parse_rule(
        "destination 192.0.2.1/32 protocol tcp destination-port >=1024&<=2048 "
        "rate-limit 125000 redirect 65000L:7 action sample"
    )
    meta = IntentMeta("fs-0123456789ab", "scan", "cli", 1700000000.0, 1700000060.0, None)
    data = flow_dict(wire.flow_to_proto(FlowIntent(meta, rule)))
    expected = {
        "id": "fs-0123456789ab",
        "family": "ipv4",
        "text": "destination 192.0.2.1/32 protocol =tcp destination-port >=1024&<=2048 "
        "rate-limit 125000 redirect 65000L:7 action sample",
        "match": {
            "destination": "192.0.2.1/32",
            "protocol": "=tcp",
            "destination-port": ">=1024&<=2048",
        },
        "actions": {
            "discard": False,
            "rate_limit": 125000.0,
            "redirect": "65000L:7",
            "mark": None,
            "sample": True,
            "terminal": False,
        },
        "nlri": rule.match.encode().hex(),
        "reason": "scan",
        "origin": "cli",
        "created_at": "2023-11-14T22:13:20Z",
        "updated_at": "2023-11-14T22:14:20Z",
        "expires_at": None,
    }
    assert expected == data


def test_flow_dict_discard_and_expiry() -> None:
    """A discard rule has no rate_limit; an expiry is an ISO time."""
    rule = parse_rule("ipv6 flow-label =5 discard")
    meta = IntentMeta("fs-0123456789ac", "", "api", 0.0, 0.0, 1700000000.0)
    data = flow_dict(wire.flow_to_proto(FlowIntent(meta, rule)))
    expected = (True, None, "2023-11-14T22:13:20Z", None, "ipv6")
    actual = (
        data["actions"]["discard"],
        data["actions"]["rate_limit"],
        data["expires_at"],
        data["created_at"],
        data["family"],
    )
    assert expected == actual
