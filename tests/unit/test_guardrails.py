"""The guards on intents (protected prefixes, breadth), their config, and their
refusals through the real servicer and trafex-ctl."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.unit.fakeapi import Api, FakeController, serve
from trafex.api.client import PreconditionError, TrafexClient
from trafex.cli.ctl import main
from trafex.control.changes import IntentOptions, decide_add
from trafex.control.config import guards_of, parse_config
from trafex.control.guardrails import GuardError, Guards, check_intent
from trafex.model.flowspec import FlowRule
from trafex.model.grammar import parse_rule
from trafex.model.route import UnicastRoute

DEFAULT = Guards()
PROTECTED = Guards(protected=(ipaddress.ip_network("192.0.2.53/32"),))


def refusal(text: str, guards: Guards = DEFAULT, *, force: bool = False) -> str | None:
    try:
        check_intent(parse_rule(text), guards, force=force)
    except GuardError as error:
        return str(error)
    return None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "destination 0.0.0.0/0 discard",
            "guard breadth: discard towards 0.0.0.0/0 is broader than /24 (use --force)",
        ),
        (
            "protocol =udp discard",
            "guard breadth: discard with no destination matches every address (use --force)",
        ),
        (
            "destination ::/0 rate-limit 0",
            "guard breadth: discard towards ::/0 is broader than /48 (use --force)",
        ),
        (
            "destination 10.0.0.0/23 rate-limit 1000",
            "guard breadth: rate-limit 1000 towards 10.0.0.0/23 is broader than /24 (use --force)",
        ),
        ("destination 10.0.0.0/24 discard", None),
        ("destination 3001:db8::/48 discard", None),
        ("destination 192.0.2.1/32 rate-limit 125000", None),
        ("destination 0.0.0.0/0 redirect 6:302", None),  # not a drop
        ("destination 0.0.0.0/0 mark 10", None),
    ],
)
def test_breadth(text: str, expected: str | None) -> None:
    """A discard or rate-limit broader than /24 (IPv4) or /48 (IPv6), or with no
    destination, is refused, naming the guard and the rule."""
    assert refusal(text) == expected


def test_breadth_forced_and_configured() -> None:
    assert refusal("destination 0.0.0.0/0 discard", force=True) is None
    assert refusal("protocol =udp discard", force=True) is None
    assert refusal("destination 10.0.0.0/16 discard", Guards(max_breadth_v4=16)) is None
    assert refusal("destination 3001::/32 discard", Guards(max_breadth_v6=64)) is not None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "destination 192.0.2.0/24 discard",
            "guard protected: discard towards 192.0.2.0/24 overlaps protected prefix 192.0.2.53/32",
        ),
        (
            "destination 192.0.2.53/32 redirect 6:302",
            "guard protected: redirect towards 192.0.2.53/32 overlaps protected prefix "
            "192.0.2.53/32",
        ),
        (
            "protocol =udp discard",
            "guard protected: discard with no destination overlaps protected prefix 192.0.2.53/32",
        ),
        ("destination 192.0.2.54/32 discard", None),
        ("destination 3001::1/128 discard", None),  # the other family
    ],
)
def test_protected(text: str, expected: str | None) -> None:
    """No discard, rate-limit or redirect overlapping a protected prefix, even forced."""
    assert refusal(text, PROTECTED, force=True) == expected


def test_protected_route() -> None:
    for prefix in ("192.0.2.53/32", "192.0.2.0/24"):
        with pytest.raises(GuardError, match="guard protected: route"):
            check_intent(UnicastRoute(ipaddress.ip_network(prefix)), PROTECTED)
    check_intent(UnicastRoute(ipaddress.ip_network("192.0.2.54/32")), PROTECTED)


def test_decide_add_refuses_all_or_none() -> None:
    """One refused item refuses the whole batch; nothing is decided."""
    good = (parse_rule("destination 10.0.0.1/32 discard"), IntentOptions())
    bad = (parse_rule("destination 0.0.0.0/0 discard"), IntentOptions())
    with pytest.raises(GuardError, match="breadth"):
        decide_add({}, [good, bad], now=1.0)
    forced = (bad[0], IntentOptions(force=True))
    assert len(decide_add({}, [good, forced], now=1.0).announce) == 2


# -- config -----------------------------------------------------------------------------


def test_guard_config_defaults_and_neighbors() -> None:
    config = parse_config({"bgp": {"neighbor": [{"address": "192.0.2.2", "peer_as": 65001}]}})
    guards = guards_of(config)
    assert (guards.max_breadth_v4, guards.max_breadth_v6) == (24, 48)
    assert guards.protected == (ipaddress.ip_network("192.0.2.2/32"),)


def test_guard_config_read() -> None:
    config = parse_config(
        {"guard": {"protected": ["192.0.2.53/32", "3001:db8::/32"], "max_breadth_v4": 16}}
    )
    assert config.guard.protected == (
        ipaddress.ip_network("192.0.2.53/32"),
        ipaddress.ip_network("3001:db8::/32"),
    )
    assert guards_of(config).max_breadth_v4 == 16


@pytest.mark.parametrize(
    ("guard", "fragment"),
    [
        ({"protectd": []}, "protectd: unknown key"),
        ({"protected": ["192.0.2.1/24"]}, "guard.protected"),
        ({"max_breadth_v4": 33}, "guard.max_breadth_v4"),
    ],
)
def test_guard_config_refused(guard: dict[str, Any], fragment: str) -> None:
    from trafex.config import ConfigError

    with pytest.raises(ConfigError) as info:
        parse_config({"guard": guard})
    assert fragment in str(info.value)


# -- through the servicer and trafex-ctl -------------------------------------------------


class GuardedController(FakeController):
    """The fake controller with trafexd's default guards in front."""

    def add(self, items: Sequence[Any]) -> Any:
        for item, options in items:
            check_intent(item, DEFAULT, force=options.force)
        return super().add(items)


@pytest.fixture
def api() -> Iterator[Api[GuardedController]]:
    with serve(GuardedController()) as running:
        yield running


def test_refusal_is_failed_precondition(api: Api[GuardedController]) -> None:
    client = TrafexClient(api.target)
    with pytest.raises(PreconditionError) as info:
        client.add_flow(parse_rule("destination ::/0 rate-limit 0"))
    assert "guard breadth: discard towards ::/0 is broader than /48" in str(info.value)
    assert (info.value.code, info.value.guard) == ("FAILED_PRECONDITION", "breadth")
    added = client.add_flow(parse_rule("destination ::/0 rate-limit 0"), IntentOptions(force=True))
    assert added


@pytest.mark.parametrize(
    ("argv", "guard_text"),
    [
        (
            ("--destination", "0.0.0.0/0", "--discard"),
            "discard towards 0.0.0.0/0 is broader than /24",
        ),
        (
            ("--protocol", "udp", "--discard"),
            "discard with no destination matches every address",
        ),
        (
            ("--destination", "::/0", "--rate-limit", "0"),
            "discard towards ::/0 is broader than /48",
        ),
    ],
)
def test_ctl_refuses_the_three_cases(
    api: Api[GuardedController],
    capsys: pytest.CaptureFixture[str],
    argv: tuple[str, ...],
    guard_text: str,
) -> None:
    code = main(["--target", api.target, "add-flow", *argv])
    out, err = capsys.readouterr()
    assert (code, out) == (2, "")
    assert err == f"trafex-ctl: guard breadth: {guard_text} (use --force) [FAILED_PRECONDITION]\n"
    assert api.controller.flows() == []
    code = main(["--target", api.target, "add-flow", *argv, "--force"])
    out, _ = capsys.readouterr()
    assert code == 0 and out.startswith("added ")


# -- the real controller ----------------------------------------------------------------


def test_controller_refuses_before_storing_and_logs_forced(tmp_path: Path) -> None:
    """A refused batch stores and sends nothing; a forced one is logged with its origin."""
    from structlog.testing import capture_logs

    from tests.unit.fakerib import rig

    broad = parse_rule("destination 0.0.0.0/0 discard")
    with rig(tmp_path / "state", guards=DEFAULT) as made:
        with pytest.raises(GuardError, match="guard breadth"):
            made.controller.add([(broad, IntentOptions())])
        made.controller.flush()
        assert made.controller.flows() == [] and made.store.load()[0] == []
        with capture_logs() as logs:
            made.controller.add([(broad, IntentOptions(force=True, origin="sensor"))])
        forced = [entry for entry in logs if entry["event"] == "guard.forced"]
        assert [entry["origin"] for entry in forced] == ["sensor"]
        assert len(made.controller.flows()) == 1


# -- origin ownership -------------------------------------------------------------------

OWNED = Guards(
    origins={
        "tenant": (ipaddress.ip_network("192.0.2.0/24"), ipaddress.ip_network("3001:db8::/32")),
        "nobody": (),
    }
)


@pytest.mark.parametrize(
    ("item", "origin", "refused"),
    [
        (parse_rule("destination 192.0.2.7/32 discard"), "tenant", None),
        (parse_rule("destination 3001:db8:1::/48 discard"), "tenant", None),
        (parse_rule("destination 192.0.2.0/24 discard"), "tenant", None),
        (
            parse_rule("destination 192.0.3.7/32 discard"),
            "tenant",
            "refused: destination 192.0.3.7/32 discard",
        ),
        (
            parse_rule("destination 192.0.0.0/16 mark 10"),  # broader than its prefix
            "tenant",
            "refused: destination 192.0.0.0/16 mark 10",
        ),
        (
            parse_rule("source 192.0.2.7/32 protocol =udp mark 10"),  # no destination
            "tenant",
            "refused: source 192.0.2.7/32 protocol =udp mark 10",
        ),
        (UnicastRoute(ipaddress.ip_network("192.0.2.9/32")), "tenant", None),
        (UnicastRoute(ipaddress.ip_network("198.51.100.9/32")), "tenant", "route 198.51.100.9"),
        (parse_rule("destination 198.51.100.9/32 discard"), "cli", None),  # no table
    ],
)
def test_origin_acts_only_inside_its_prefixes(
    item: FlowRule | UnicastRoute, origin: str, refused: str | None
) -> None:
    """An origin with a [guard.origins.NAME] table may act only on destinations
    (rules) and prefixes (routes) inside its prefixes; a rule with no destination is
    outside; an origin without a table is unrestricted."""
    try:
        check_intent(item, OWNED, origin=origin)
    except GuardError as error:
        assert refused is not None, str(error)
        assert str(error).startswith(
            "guard origin: origin 'tenant' may act only inside 192.0.2.0/24, 3001:db8::/32 "
            "([guard.origins.tenant] prefixes); "
        )
        assert refused in str(error)
    else:
        assert refused is None


def test_origin_with_no_prefixes_acts_on_nothing() -> None:
    """An empty prefixes list allows nothing, and says so."""
    with pytest.raises(GuardError, match="origin 'nobody' may act on no prefix"):
        check_intent(parse_rule("destination 192.0.2.7/32 discard"), OWNED, origin="nobody")


def test_decide_add_checks_the_origin_declared() -> None:
    """decide_add checks each item against the origin its options declare ("api" when
    none), all or none."""
    inside = (parse_rule("destination 192.0.2.7/32 discard"), IntentOptions(origin="tenant"))
    outside = (parse_rule("destination 10.0.0.1/32 discard"), IntentOptions(origin="tenant"))
    with pytest.raises(GuardError, match="guard origin"):
        decide_add({}, [inside, outside], now=1.0, guards=OWNED)
    assert decide_add({}, [inside, (outside[0], IntentOptions())], now=1.0, guards=OWNED).writes


# -- dry run ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("guards", "options"),
    [(Guards(dry_run=True), IntentOptions()), (DEFAULT, IntentOptions(dry_run=True))],
)
def test_dry_run_decides_nothing(guards: Guards, options: IntentOptions) -> None:
    """A dry run (config or request) answers the would-be intents, and writes,
    announces and publishes nothing."""
    rule = parse_rule("destination 10.0.0.1/32 discard")
    changes = decide_add({}, [(rule, options)], now=1.0, guards=guards, events=True)
    ((intent, new),) = changes.answer
    assert (intent.key, intent.meta.id[:3], new) == (rule.key, "fs-", True)
    assert changes.dry_run and not changes.stores
    assert (changes.announce, changes.events) == ((), ())


def test_dry_run_applies_every_guard() -> None:
    """A dry run is refused as the real request would be."""
    broad = (parse_rule("destination 0.0.0.0/0 discard"), IntentOptions(dry_run=True))
    with pytest.raises(GuardError, match="guard breadth"):
        decide_add({}, [broad], now=1.0)


def test_a_batch_with_one_dry_run_item_is_a_dry_run() -> None:
    """A batch is one request: one item asking for a dry run makes it all one."""
    items = [
        (parse_rule("destination 10.0.0.1/32 discard"), IntentOptions()),
        (parse_rule("destination 10.0.0.2/32 discard"), IntentOptions(dry_run=True)),
    ]
    changes = decide_add({}, items, now=1.0)
    assert changes.dry_run and len(changes.answer) == 2 and not changes.writes


# -- config: every [guard] key reaches the guards -----------------------------------------


def test_guards_of_reads_every_key() -> None:
    """Caps, rate, dry run and origin tables go from [guard] into Guards."""
    config = parse_config(
        {
            "guard": {
                "max_rules": 5,
                "max_routes": 6,
                "max_rules_per_origin": 2,
                "max_routes_per_origin": 3,
                "rate_per_origin": 1.5,
                "burst_per_origin": 7,
                "dry_run": True,
                "origins": {"tenant": {"prefixes": ["192.0.2.0/24"]}, "none": {}},
            }
        }
    )
    expected = Guards(
        max_rules=5,
        max_routes=6,
        max_rules_per_origin=2,
        max_routes_per_origin=3,
        rate_per_origin=1.5,
        burst_per_origin=7,
        dry_run=True,
        origins={"tenant": (ipaddress.ip_network("192.0.2.0/24"),), "none": ()},
    )
    assert expected == guards_of(config)


def test_guard_defaults_from_config() -> None:
    """Without [guard]: 10,000 rules and 10,000 routes in total, no per-origin caps,
    no rate, no dry run, no origin tables."""
    guards = guards_of(parse_config({}))
    assert (guards.max_rules, guards.max_routes) == (10_000, 10_000)
    assert (guards.max_rules_per_origin, guards.rate_per_origin, guards.dry_run) == (0, 0.0, False)
    assert guards.origins == {}
