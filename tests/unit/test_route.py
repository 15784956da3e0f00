"""Unit tests for trafex.model.route: communities, prefixes and UnicastRoute."""

from __future__ import annotations

import ipaddress
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.helpers import refused
from trafex.model.errors import ValidationError
from trafex.model.route import (
    WELL_KNOWN_COMMUNITIES,
    UnicastRoute,
    format_community,
    format_large_community,
    parse_community,
    parse_large_community,
    parse_prefix,
    parse_route,
    route_dict,
    route_from_dict,
    route_text,
)

# ---------------------------------------------------------------------------------------
# Communities


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("65000:666", 65000 << 16 | 666),
        ("0:0", 0),
        ("65535:65535", 0xFFFFFFFF),
        (" 65000:666 ", 65000 << 16 | 666),
        ("no-export", 0xFFFFFF01),
        ("NO-EXPORT", 0xFFFFFF01),
        ("no-advertise", 0xFFFFFF02),
        ("no-export-subconfed", 0xFFFFFF03),
        ("no-peer", 0xFFFFFF04),
        ("blackhole", 0xFFFF029A),
        ("graceful-shutdown", 0xFFFF0000),
        ("accept-own", 0xFFFF0001),
    ],
)
def test_parse_community(text: str, expected: int) -> None:
    """ASN:NN and the RFC 1997/7999/8326 well-known names give the 32-bit value."""
    assert expected == parse_community(text)


@pytest.mark.parametrize(
    "text", ["65536:1", "1:65536", "-1:5", "65000", "65000:", ":5", "a:b", "1:2:3", "", "bogus"]
)
def test_parse_community_errors(text: str) -> None:
    """Parts outside 16 bits, a missing part and junk are refused, naming community."""
    error = refused("community", parse_community, text)
    assert repr(text) in error.message


def test_format_community() -> None:
    """Well-known values are written by name, the others as ASN:NN; formatting inverts
    parsing."""
    expected = ["blackhole", "65000:666"]
    assert expected == [format_community(0xFFFF029A), format_community(65000 << 16 | 666)]
    for name, value in WELL_KNOWN_COMMUNITIES.items():
        assert name == format_community(parse_community(name))
        assert value == parse_community(format_community(value))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("65000:1:2", (65000, 1, 2)),
        ("4294967295:4294967295:4294967295", (0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF)),
        (" 0:0:0 ", (0, 0, 0)),
    ],
)
def test_parse_large_community(text: str, expected: tuple[int, int, int]) -> None:
    """RFC 8092 large communities: three 32-bit parts, written back the same way."""
    assert expected == parse_large_community(text)
    assert text.strip() == format_large_community(expected)


@pytest.mark.parametrize(
    "text", ["65000:1", "1:2:3:4", "4294967296:0:0", "1:-1:2", "a:b:c", "", "1::2"]
)
def test_parse_large_community_errors(text: str) -> None:
    """Not three parts, a part outside 32 bits or junk are refused, naming
    large-community."""
    refused("large-community", parse_large_community, text)


# ---------------------------------------------------------------------------------------
# Prefixes


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("192.0.2.0/24", "192.0.2.0/24"),
        ("192.0.2.1", "192.0.2.1/32"),
        ("3001:10:66::5", "3001:10:66::5/128"),
        ("3001:10:66::/48", "3001:10:66::/48"),
        (" 10.0.0.0/8 ", "10.0.0.0/8"),
    ],
)
def test_parse_prefix(text: str, expected: str) -> None:
    """A prefix as given; a bare address is its host route (/32 or /128)."""
    assert ipaddress.ip_network(expected) == parse_prefix(text)


def test_parse_prefix_host_bits() -> None:
    """Host bits set is an error that proposes the network."""
    error = refused("prefix", parse_prefix, "192.0.2.1/24")
    assert "did you mean 192.0.2.0/24" in error.message


@pytest.mark.parametrize("text", ["192.0.2.0/33", "nonsense", "", "2001:db8::/129"])
def test_parse_prefix_junk(text: str) -> None:
    """Text that is no prefix is refused, naming prefix."""
    error = refused("prefix", parse_prefix, text)
    assert "not a prefix" in error.message


# ---------------------------------------------------------------------------------------
# UnicastRoute


def net(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ipaddress.ip_network(text)


def test_next_hop_family_mismatch() -> None:
    """An IPv6 next-hop for an IPv4 prefix (and the reverse) is refused, naming next-hop."""
    refused("next-hop", UnicastRoute, net("192.0.2.1/32"), ipaddress.ip_address("2001:db8::1"))
    refused("next-hop", UnicastRoute, net("2001:db8::1/128"), ipaddress.ip_address("192.0.2.1"))


@pytest.mark.parametrize(("prefix", "next_hop"), [("192.0.2.1/32", "0.0.0.0"), ("::1/128", "::")])
def test_unspecified_next_hop_becomes_none(prefix: str, next_hop: str) -> None:
    """0.0.0.0 and :: mean next-hop-self: stored as None, equal to a route without one."""
    route = UnicastRoute(net(prefix), ipaddress.ip_address(next_hop))
    assert route.next_hop is None
    assert UnicastRoute(net(prefix)) == route


def test_next_hop_is_kept() -> None:
    """A specified next-hop of the right family is kept."""
    hop = ipaddress.ip_address("198.51.100.1")
    assert hop == UnicastRoute(net("192.0.2.1/32"), hop).next_hop


def test_communities_sorted_and_unique() -> None:
    """Communities and large communities are sorted and deduplicated, so equal routes
    compare equal whatever order they were given in."""
    route = UnicastRoute(
        net("192.0.2.1/32"),
        communities=(5, 3, 5, 1),
        large_communities=((2, 0, 0), (1, 2, 3), (2, 0, 0)),
    )
    expected_communities = (1, 3, 5)
    expected_large = ((1, 2, 3), (2, 0, 0))
    assert expected_communities == route.communities
    assert expected_large == route.large_communities
    assert (
        UnicastRoute(net("192.0.2.1/32"), communities=(1, 3, 5), large_communities=expected_large)
        == route
    )


@pytest.mark.parametrize(
    ("field", "kwargs"),
    [
        ("community", {"communities": (1 << 32,)}),
        ("community", {"communities": (-1,)}),
        ("local-preference", {"local_preference": 1 << 32}),
        ("local-preference", {"local_preference": -1}),
        ("med", {"med": 1 << 32}),
    ],
)
def test_out_of_range_attributes(field: str, kwargs: dict[str, object]) -> None:
    """Communities, local-preference and MED are 32-bit: others are refused, named."""
    with pytest.raises(ValidationError) as info:
        UnicastRoute(net("192.0.2.1/32"), **kwargs)  # type: ignore[arg-type]
    assert field == info.value.field


def test_key_and_family() -> None:
    """A route's identity is its family and prefix; attributes are not part of it."""
    v4 = UnicastRoute(net("192.0.2.1/32"), communities=(1,))
    v6 = UnicastRoute(net("3001:10:66::5/128"), med=10)
    expected = [("ipv4", "ipv4:192.0.2.1/32"), ("ipv6", "ipv6:3001:10:66::5/128")]
    assert expected == [(v4.family, v4.key), (v6.family, v6.key)]
    assert v4.key == UnicastRoute(net("192.0.2.1/32"), med=5).key


# ---------------------------------------------------------------------------------------
# The written forms: parts as text, one line, JSON

FULL_ROUTE = UnicastRoute(
    prefix=ipaddress.ip_network("3001:10:66::5/128"),
    next_hop=ipaddress.ip_address("3001:10::1"),
    communities=(65000 << 16 | 666, 0xFFFFFF01),
    large_communities=((65000, 1, 2),),
    local_preference=200,
    med=5,
)


def test_parse_route_from_text_parts() -> None:
    """A bare address is a host route; an empty next-hop, or "self", is next-hop-self;
    communities by name or ASN:NN."""
    expected = UnicastRoute(ipaddress.ip_network("192.0.2.1/32"), None, (0xFFFFFF01,), med=5)
    actual = [
        parse_route("192.0.2.1", "", ["no-export"], (), None, 5),
        parse_route("192.0.2.1/32", "self", ["no-export"], med=5),
    ]
    assert [expected, expected] == actual


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (("",), "prefix"),
        (("192.0.2.1", "gateway"), "next-hop"),
        (("192.0.2.1", "", ["x"]), "community"),
    ],
)
def test_parse_route_errors(args: tuple[Any, ...], field: str) -> None:
    """A missing prefix, a next-hop that is no address, a bad community: refused, named."""
    refused(field, parse_route, *args)


def test_route_text() -> None:
    """One line in ExaBGP's words, communities by name where they have one."""
    expected = (
        "3001:10:66::5/128 next-hop 3001:10::1 community [65000:666 no-export] "
        "large-community [65000:1:2] local-preference 200 med 5"
    )
    assert expected == route_text(FULL_ROUTE)
    expected_bare = "192.0.2.1/32 next-hop self"
    assert expected_bare == route_text(UnicastRoute(ipaddress.ip_network("192.0.2.1/32")))


def test_route_dict_shape() -> None:
    """The stable JSON shape: every key present, communities as text, null for
    next-hop-self and absent attributes."""
    expected = {
        "family": "ipv6",
        "prefix": "3001:10:66::5/128",
        "next_hop": "3001:10::1",
        "communities": ["65000:666", "no-export"],
        "large_communities": ["65000:1:2"],
        "local_preference": 200,
        "med": 5,
    }
    assert expected == route_dict(FULL_ROUTE)
    bare = route_dict(UnicastRoute(ipaddress.ip_network("192.0.2.1/32")))
    expected_bare: tuple[None, list[str], None] = (None, [], None)
    assert expected_bare == (bare["next_hop"], bare["communities"], bare["med"])


@settings(max_examples=200)
@given(st.from_type(UnicastRoute))
def test_route_dict_round_trip(route: UnicastRoute) -> None:
    """route_from_dict(route_dict(r)) == r, through JSON text too."""
    assert route == route_from_dict(json.loads(json.dumps(route_dict(route))))


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"prefix": 5}, "prefix"),
        ({"communities": [65000]}, "communities"),
        ({"med": "5"}, "med"),
        ({"colour": "red"}, "colour"),
        ({"family": "ipv4"}, "family"),
        ({"next_hop": "gateway"}, "next-hop"),
    ],
)
def test_route_from_dict_errors(change: dict[str, Any], field: str) -> None:
    """A field of the wrong type or value, or an unknown one, is refused, named."""
    refused(field, route_from_dict, route_dict(FULL_ROUTE) | change)


def test_route_from_dict_missing_field() -> None:
    """Every field but family is required; not a JSON object is refused."""
    data = route_dict(FULL_ROUTE)
    del data["med"]
    refused("med", route_from_dict, data)
    with pytest.raises(ValidationError, match="a route is a JSON object, not list"):
        route_from_dict([])
