"""Unit tests for trafex.model.exabgp: ExaBGP API commands → typed commands."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.unit.helpers import refused
from trafex.model.errors import ValidationError
from trafex.model.exabgp import Announce, Withdraw, parse_command
from trafex.model.flowspec import FlowRule
from trafex.model.grammar import parse_match, parse_rule, render_match, render_rule
from trafex.model.route import UnicastRoute, parse_route, route_text

TALK_FLOW = "source 3001:1:a::10/128 destination 3001:4:b::10/128 redirect 6:302"


def test_the_talks_flowspec_command() -> None:
    """The talk's curl line is the rule the grammar reads from its text."""
    command = parse_command(f"announce flow route {TALK_FLOW}")
    assert Announce(parse_rule(TALK_FLOW)) == command
    assert command.verb == "announce"


def test_the_talks_route_command() -> None:
    """The talk's sensor sends ``announce route X/128 next-hop self``: next-hop-self is
    a route without a next-hop (the sidecar's own address, as trafex-ctl add-route
    without --next-hop)."""
    command = parse_command("announce route 3001:10:66::5/128 next-hop self")
    assert Announce(UnicastRoute(ipaddress.ip_network("3001:10:66::5/128"))) == command


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("announce route 192.0.2.1/32", parse_route("192.0.2.1/32")),
        ("announce route 192.0.2.1 next-hop SELF", parse_route("192.0.2.1/32")),
        (
            "announce route 192.0.2.0/24 next-hop 198.51.100.1",
            parse_route("192.0.2.0/24", "198.51.100.1"),
        ),
        (
            "announce route 192.0.2.0/24 next-hop self community 65000:666",
            parse_route("192.0.2.0/24", communities=["65000:666"]),
        ),
        (
            "announce route 192.0.2.0/24 community [65000:666 no-export] next-hop self",
            parse_route("192.0.2.0/24", communities=["65000:666", "no-export"]),
        ),
        (
            "announce route 3001::/64 next-hop 3001::1 community [ 65000:1 ] "
            "large-community [65010:1:2 65010:3:4] local-preference 200 med 5",
            parse_route("3001::/64", "3001::1", ["65000:1"], ["65010:1:2", "65010:3:4"], 200, 5),
        ),
        ("ANNOUNCE ROUTE 192.0.2.1/32 MED 0", parse_route("192.0.2.1/32", med=0)),
        ("  announce\troute  192.0.2.1/32  \n", parse_route("192.0.2.1/32")),
    ],
)
def test_every_route_form(text: str, expected: UnicastRoute) -> None:
    """Each attribute trafex's routes carry, one value or a [ ] list, in any order."""
    assert Announce(expected) == parse_command(text)


@pytest.mark.parametrize(
    "text",
    [
        "announce flow route destination 10.0.0.1/32 protocol [ =tcp =udp ] "
        "destination-port >=1024&<=2048 rate-limit 9600",
        "announce flow route { match { destination 10.0.0.1/32; tcp-flags [ syn ]; } "
        "then { discard; } }",
        "announce flow route{ match { destination 10.0.0.1/32; } then { discard; } }",
        "announce flow route match destination 2001:db8::/64 8 protocol tcp "
        "then action sample-terminal",
    ],
)
def test_every_flow_form_is_the_grammars(text: str) -> None:
    """After ``flow route`` comes the FlowSpec grammar's text: one line, or the
    ``{ match … then … }`` block."""
    body = text.split("route", 1)[1]
    assert Announce(parse_rule(body)) == parse_command(text)


def test_withdraws_name_what_to_remove() -> None:
    """A withdraw carries the flow's match (its actions ignored, or absent) or the
    route's prefix (its attributes checked, then ignored as keys)."""
    match = parse_match(TALK_FLOW)
    assert Withdraw(match) == parse_command(f"withdraw flow route {TALK_FLOW}")
    assert Withdraw(match) == parse_command(
        "withdraw flow route source 3001:1:a::10/128 destination 3001:4:b::10/128"
    )
    command = parse_command("withdraw route 3001:10:66::5/128 next-hop self")
    assert isinstance(command, Withdraw)
    assert UnicastRoute(ipaddress.ip_network("3001:10:66::5/128")).key == command.key
    assert command.verb == "withdraw"


@pytest.mark.parametrize(
    ("text", "field", "words"),
    [
        ("", "command", "empty"),
        ("shutdown", "command", "'shutdown'"),
        ("announce", "command", "got nothing"),
        ("announce ipv4 unicast 192.0.2.0/24", "command", "'ipv4'"),
        ("announce flow", "command", "after 'flow'"),
        ("announce flow rule destination 10.0.0.1/32 discard", "command", "'rule'"),
        ("neighbor 192.0.2.1 announce route 192.0.2.1/32", "command", "neighbor"),
        ("announce route 192.0.2.1/32\nannounce route 192.0.2.2/32", "command", "one command"),
        ("announce route { 192.0.2.1/32 next-hop self; }", "command", "block"),
        ("announce route", "prefix", "needs a prefix"),
        ("announce route 192.0.2.1/24", "prefix", "host bits"),
        ("announce route 192.0.2.0/24 as-path [ 65000 ]", "as-path", "not supported"),
        ("announce route 192.0.2.0/24 origin igp", "origin", "not supported"),
        ("announce route 192.0.2.0/24 extended-community target:1:1", "extended-community", ""),
        ("announce route 192.0.2.0/24 next-hop", "next-hop", "needs a value"),
        ("announce route 192.0.2.0/24 next-hop gw", "next-hop", "'gw'"),
        ("announce route 192.0.2.0/24 next-hop 3001::1", "next-hop", "IPv4"),
        ("announce route 192.0.2.0/24 next-hop [ 1.1.1.1 2.2.2.2 ]", "next-hop", "one value"),
        ("announce route 192.0.2.0/24 med 1 med 2", "med", "given twice"),
        ("announce route 192.0.2.0/24 med -1", "med", "'-1'"),
        ("announce route 192.0.2.0/24 med 4294967296", "med", "out of range"),
        ("announce route 192.0.2.0/24 local-preference ²", "local-preference", "'²'"),
        ("announce route 192.0.2.0/24 community [65000:1", "community", "unclosed"),
        ("announce route 192.0.2.0/24 community [ ]", "community", "inside"),
        ("announce route 192.0.2.0/24 community ]", "community", "without"),
        ("announce route 192.0.2.0/24 community 70000:1", "community", "16-bit"),
        ("announce route 192.0.2.0/24 large-community 1:2", "large-community", "ASN:NN:NN"),
        ("announce flow route destination 10.0.0.1/32", None, "needs an action"),
        ("announce flow route destination 10.0.0.1/32 accept", None, "accept"),
        ("announce flow route destination 10.0.0.1/32 dscp =99 discard", "dscp", ""),
        (
            "announce flow route source 3001:1:a::10/129 destination x redirect 6:302",
            "source",
            "'x'",
        ),
        ("announce flow route destination 10.0.0.1/32 redirect 6 ", "redirect", ""),
        ("withdraw flow route", None, "match component"),
        ("x" * 20000, "command", "longer than"),
    ],
)
def test_bad_commands_name_the_bad_part(text: str, field: str | None, words: str) -> None:
    """Each refusal is a ValidationError naming the bad part (the command's own words,
    the attribute, or the FlowSpec component) with the bad value in its message."""
    error = refused(field, parse_command, text)
    assert words in str(error)


ROUTES = st.from_type(UnicastRoute)
RULES = st.from_type(FlowRule)


@given(ROUTES)
def test_every_route_reads_back_from_its_exabgp_line(route: UnicastRoute) -> None:
    """route_text writes ExaBGP's words: ``announce route`` + it reads the same route."""
    assert Announce(route) == parse_command(f"announce route {route_text(route)}")


@given(RULES)
def test_every_rule_reads_back_from_its_exabgp_line(rule: FlowRule) -> None:
    """A rule's canonical text after ``announce flow route`` reads the same rule; after
    ``withdraw flow route``, its match."""
    assert Announce(rule) == parse_command(f"announce flow route {render_rule(rule)}")
    assert Withdraw(rule.match) == parse_command(f"withdraw flow route {render_match(rule.match)}")


@given(st.text(max_size=300))
def test_any_text_is_a_command_or_a_validation_error(text: str) -> None:
    """Whatever the text, the parser answers a command or a ValidationError, nothing else."""
    try:
        command = parse_command(text)
    except ValidationError:
        return
    assert isinstance(command, Announce | Withdraw)


WORDS = st.sampled_from(
    [
        "announce", "withdraw", "route", "flow", "next-hop", "self", "community", "med",
        "local-preference", "large-community", "[", "]", "{", "}", ";", "192.0.2.1/32",
        "3001::/64", "10.0.0.1", "65000:666", "1:2:3", "5", "destination", "source",
        "discard", "redirect", "6:302", "rate-limit", "match", "then", "protocol", "=tcp",
    ]
)  # fmt: skip


@given(st.lists(WORDS, max_size=14))
def test_word_soup_is_a_command_or_a_validation_error(words: list[str]) -> None:
    """Sequences of the grammar's own words (which random text rarely hits) never
    raise anything but a ValidationError."""
    try:
        command = parse_command(" ".join(words))
    except ValidationError:
        return
    assert isinstance(command, Announce | Withdraw)
