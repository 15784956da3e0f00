"""Unit tests for trafex.cli.ctl: durations, rule text from options, the JSON shape,
and what trafex-ctl prints and exits with against a real in-process API."""

from __future__ import annotations

import argparse
import ipaddress
import json
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.unit.fakeapi import Api, FakeController, serve
from trafex.bgp.client import SidecarError
from trafex.cli.ctl import UsageError, build_parser, main, parse_ttl, rule_text
from trafex.cli.output import intent_dict
from trafex.model.components import COMPONENTS
from trafex.model.errors import ValidationError
from trafex.model.grammar import parse_rule, rule_dict
from trafex.model.intent import FlowIntent, IntentMeta, RouteIntent
from trafex.model.route import UnicastRoute, route_dict


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
def test_parse_ttl(text: str, expected: float) -> None:
    """Seconds, or a number with s/m/h/d/w, in seconds."""
    assert expected == parse_ttl(text)


@pytest.mark.parametrize("text", ["", "junk", "10x", "0", "0s", "-5m", "m", "1h30m", "1e3"])
def test_parse_ttl_junk(text: str) -> None:
    """Anything else (and zero) is a UsageError naming --ttl and the text."""
    with pytest.raises(UsageError) as info:
        parse_ttl(text)
    assert str(info.value).startswith(f"--ttl: {text!r} is not a duration")


@pytest.mark.parametrize("text", ["3651d", "522w"])
def test_parse_ttl_above_ten_years(text: str) -> None:
    """A TTL above MAX_TTL (10 years) is a UsageError before anything is sent."""
    with pytest.raises(UsageError) as info:
        parse_ttl(text)
    assert f"--ttl: {text!r} is longer than 10 years" == str(info.value)


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


def test_intent_dict_shape() -> None:
    """intent_dict gives the stable JSON shape of a stored rule: its id, the rule's
    JSON (rule_dict) and its meta (ISO times in UTC, none for no expiry)."""
    rule = parse_rule("destination 192.0.2.1/32 protocol tcp rate-limit 125000")
    meta = IntentMeta("fs-0123456789ab", "scan", "cli", 1700000000.0, 1700000060.0, None)
    data = intent_dict(FlowIntent(meta, rule))
    expected = {
        "id": "fs-0123456789ab",
        **rule_dict(rule),
        "reason": "scan",
        "origin": "cli",
        "created_at": "2023-11-14T22:13:20Z",
        "updated_at": "2023-11-14T22:14:20Z",
        "expires_at": None,
    }
    assert expected == data
    assert list(expected) == list(data)  # the keys' order, as --json prints them


def test_intent_dict_of_a_route() -> None:
    """A stored route: its id, the route's JSON (route_dict) and its meta."""
    route = UnicastRoute(ipaddress.ip_network("3001:10:66::5/128"), communities=(1,))
    meta = IntentMeta("rt-0123456789ab", "dns", "dns", 0.0, 0.0, 1700000000.0)
    expected = {
        "id": "rt-0123456789ab",
        **route_dict(route),
        "reason": "dns",
        "origin": "dns",
        "created_at": None,
        "updated_at": None,
        "expires_at": "2023-11-14T22:13:20Z",
    }
    assert expected == intent_dict(RouteIntent(meta, route))


@pytest.mark.parametrize("command", ["add-flow", "del-flow"])
def test_every_component_is_an_option(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    """add-flow and del-flow take one option per component of the model's table, and
    --help shows the table's line for it."""
    with pytest.raises(SystemExit):
        build_parser().parse_args([command, "--help"])
    out = capsys.readouterr().out
    unwrapped = "".join(out.split())  # argparse wraps lines, at blanks and hyphens
    for component in COMPONENTS:
        assert f"--{component.keyword} " in out
        assert "".join(component.help.split()) in unwrapped


def test_intent_dict_discard_and_expiry() -> None:
    """A discard rule has no rate_limit; an expiry is an ISO time."""
    rule = parse_rule("ipv6 flow-label =5 discard")
    meta = IntentMeta("fs-0123456789ac", "", "api", 0.0, 0.0, 1700000000.0)
    data = intent_dict(FlowIntent(meta, rule))
    expected = (True, None, "2023-11-14T22:13:20Z", None, "ipv6")
    actual = (
        data["actions"]["discard"],
        data["actions"]["rate_limit"],
        data["expires_at"],
        data["created_at"],
        data["family"],
    )
    assert expected == actual


# ---------------------------------------------------------------------------------------
# trafex-ctl against trafexd's API (the real servicer over a fake controller)

REDIRECT = "source 3001:1:a::10/128 destination 3001:4:b::10/128 redirect 6:302"


@pytest.fixture
def api() -> Iterator[Api[FakeController]]:
    with serve(FakeController()) as running:
        yield running


def ctl(
    api: Api[FakeController], capsys: pytest.CaptureFixture[str], *argv: str
) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of ``trafex-ctl --target API ARGV``."""
    code = main(["--target", api.target, *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_add_list_and_delete_a_flow(
    api: Api[FakeController], capsys: pytest.CaptureFixture[str]
) -> None:
    """add-flow prints 'added ID: RULE' (the same match again: 'updated'), list-flows
    --json the array of rules, del-flow by match 'withdrew ID: RULE'; exit 0 each."""
    code, out, _ = ctl(api, capsys, "add-flow", REDIRECT, "--ttl", "10m", "--reason", "demo")
    (intent,) = api.controller.flows()
    text = intent.text
    assert (code, out) == (0, f"added {intent.meta.id}: {text}\n")
    assert ctl(api, capsys, "add-flow", REDIRECT)[:2] == (0, f"updated {intent.meta.id}: {text}\n")
    code, out, _ = ctl(api, capsys, "list-flows", "--json")
    (listed,) = json.loads(out)
    assert (code, listed["id"], listed["origin"]) == (0, intent.meta.id, "cli")
    match = "source 3001:1:a::10/128 destination 3001:4:b::10/128"
    assert ctl(api, capsys, "del-flow", match)[:2] == (0, f"withdrew {intent.meta.id}: {text}\n")


def test_routes_and_status(api: Api[FakeController], capsys: pytest.CaptureFixture[str]) -> None:
    """add-route checks the route locally and prints 'added ID: PREFIX'; del-route by
    prefix withdraws it; status prints the sidecar, counts and peers."""
    code, out, _ = ctl(api, capsys, "add-route", "3001:10:66::5", "--community", "65000:666")
    (route,) = api.controller.routes()
    assert (code, out) == (0, f"added {route.meta.id}: 3001:10:66::5/128\n")
    assert route.route == UnicastRoute(
        ipaddress.ip_network("3001:10:66::5/128"), communities=(65000 << 16 | 666,)
    )
    code, out, _ = ctl(api, capsys, "del-route", "3001:10:66::5/128")
    assert (code, out) == (0, f"withdrew {route.meta.id}: 3001:10:66::5/128\n")
    code, out, _ = ctl(api, capsys, "status")
    lines = out.splitlines()
    assert code == 0
    assert lines[0] == "trafexd 0.1.0, AS 65010, router-id 192.0.2.10"
    assert lines[1] == (
        "sidecar: gobgpd 3.25.0 at 127.0.0.1:50051, healthy, pid 4242, restarts 1, queued paths 7"
    )
    assert lines[2] == "sends failed: 3 (last: gobgpd said no)"
    assert lines[5].split() == ["PEER", "AS", "STATE", "FAMILIES", "ADVERTISED", "RECEIVED"]


def test_stored_not_announced_is_said_and_exits_1(
    api: Api[FakeController], capsys: pytest.CaptureFixture[str]
) -> None:
    """While the sidecar is down a change is stored and the answer says so, as the
    README shows: 'trafex-ctl: stored, not yet announced: gobgpd is down [UNAVAILABLE]',
    exit 1."""
    api.controller.fail = lambda items: SidecarError("gobgpd is down", unavailable=True)
    code, out, err = ctl(api, capsys, "add-flow", REDIRECT)
    expected = (1, "", "trafex-ctl: stored, not yet announced: gobgpd is down [UNAVAILABLE]\n")
    assert expected == (code, out, err)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (
            ("add-flow", "--destination", "10.0.0.1/33", "--discard"),
            (2, "trafex-ctl: destination: "),
        ),
        (("add-route", "192.0.2.1/24"), (2, "trafex-ctl: prefix: ")),
        (
            ("add-flow", "--ttl", "soon", "--discard", "--destination", "10.0.0.1/32"),
            (2, "trafex-ctl: --ttl: "),
        ),
        (
            ("del-flow", "fs-000000000000"),
            (1, "trafex-ctl: no flow rule with id fs-000000000000 [NOT_FOUND]\n"),
        ),
        (
            ("del-flow", "fs-nonexist"),
            (1, "trafex-ctl: no flow rule with id fs-nonexist [NOT_FOUND]\n"),
        ),
        (
            ("del-route", "rt-nonexist"),
            (1, "trafex-ctl: no route with id rt-nonexist [NOT_FOUND]\n"),
        ),
    ],
)
def test_mistakes_are_one_line_and_an_exit_code(
    api: Api[FakeController],
    capsys: pytest.CaptureFixture[str],
    argv: tuple[str, ...],
    expected: tuple[int, str],
) -> None:
    """A malformed rule, route or duration is one line and exit 2, before anything is
    sent; an unknown id is trafexd's answer and exit 1."""
    code, _, err = ctl(api, capsys, *argv)
    assert expected == (code, err[: len(expected[1])])
    assert err.count("\n") == 1


def test_guardrail_refusal_is_exit_2(
    api: Api[FakeController], capsys: pytest.CaptureFixture[str]
) -> None:
    """A rule trafexd refuses (INVALID_ARGUMENT) is its reason and exit 2."""
    api.controller.fail = lambda items: ValidationError("6 terms, above the limit", "port")
    code, _, err = ctl(api, capsys, "add-flow", "destination 10.0.0.1/32 discard")
    assert (code, err) == (2, "trafex-ctl: port: 6 terms, above the limit [INVALID_ARGUMENT]\n")


def test_unreachable_trafexd(capsys: pytest.CaptureFixture[str]) -> None:
    """Nothing listening at --target: one line saying so, exit 1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        target = f"127.0.0.1:{sock.getsockname()[1]}"
    code = main(["--target", target, "--timeout", "2", "list-routes"])
    expected = f"trafex-ctl: cannot reach trafexd at {target}: is it running? (make run)\n"
    assert (code, capsys.readouterr().err) == (1, expected)


def test_dry_run_prints_what_would_be_announced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """add-flow/add-route --dry-run against the real controller print 'dry run: would
    announce ID: RULE; nothing stored' and exit 0; --json says dry_run; nothing is
    stored or sent; a dry run refused by a guard is the guard's line and exit 2."""
    from structlog.testing import capture_logs

    from tests.unit.fakerib import rig

    with capture_logs(), rig(tmp_path) as parts, serve(parts.controller) as running:
        target = ["--target", running.target]
        code = main([*target, "add-flow", "--destination", "10.0.0.1/32", "--discard", "--dry-run"])
        out, err = capsys.readouterr()
        assert (code, err) == (0, "")
        assert re.fullmatch(
            r"dry run: would announce fs-[0-9a-f]{12}: destination 10\.0\.0\.1/32 discard; "
            r"nothing stored\n",
            out,
        )
        code = main([*target, "add-route", "192.0.2.1", "--dry-run", "--json"])
        data = json.loads(capsys.readouterr().out)
        assert (code, data["dry_run"], data["created"], data["prefix"]) == (
            0,
            True,
            True,
            "192.0.2.1/32",
        )
        code = main([*target, "add-flow", "--destination", "0.0.0.0/0", "--discard", "--dry-run"])
        _, err = capsys.readouterr()
        assert code == 2 and err.startswith("trafex-ctl: guard breadth: ")
        parts.controller.flush()
        assert (parts.controller.counts(), parts.rib.log) == ((0, 0), [])
        code = main([*target, "add-flow", "--destination", "10.0.0.1/32", "--discard", "--json"])
        assert json.loads(capsys.readouterr().out)["dry_run"] is False
        code = main([*target, "add-flow", "--destination", "10.0.0.1/32", "--discard", "--dry-run"])
        out, _ = capsys.readouterr()
        assert out.endswith("discard (an update of the one in force); nothing stored\n")


def test_del_by_a_missing_id_is_not_found(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An argument that looks like an id (fs-..., rt-...) is an id, even malformed:
    against the real controller a missing one is NOT_FOUND naming the kind, exit 1."""
    from tests.unit.fakerib import rig

    with rig(tmp_path) as parts, serve(parts.controller) as running:
        for argv, line in (
            (["del-flow", "fs-nonexist"], "no flow rule with id fs-nonexist"),
            (["del-route", "rt-nonexist"], "no route with id rt-nonexist"),
        ):
            code = main(["--target", running.target, *argv])
            assert (code, capsys.readouterr().err) == (1, f"trafex-ctl: {line} [NOT_FOUND]\n")
