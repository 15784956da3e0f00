"""Unit tests for trafex.bgp.encode: the model ⇄ GoBGP API ``Path`` messages."""

from __future__ import annotations

import ipaddress
import struct
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trafex.bgp.attributes import split
from trafex.bgp.encode import (
    FAMILY_IPV4_FLOWSPEC,
    FAMILY_IPV4_UNICAST,
    FAMILY_IPV6_FLOWSPEC,
    FAMILY_IPV6_UNICAST,
    DecodeError,
    decode_path,
    flow_path,
    route_path,
)
from trafex.bgp.stubs import attribute_pb2, gobgp_pb2
from trafex.model.flowspec import (
    Family,
    FlowActions,
    FlowMatch,
    FlowPrefix,
    FlowRule,
    NumericTerm,
)
from trafex.model.grammar import parse_rule
from trafex.model.route import UnicastRoute


def unpack(packed: Any, cls: Any) -> Any:
    """The message of type ``cls`` inside an ``Any``."""
    assert packed.Is(cls.DESCRIPTOR), packed.type_url
    message = cls()
    packed.Unpack(message)
    return message


def attributes(path: Any) -> dict[str, Any]:
    """A path's attributes, unpacked, by message name."""
    out: dict[str, Any] = {}
    for packed in path.pattrs:
        name = packed.type_url.rpartition(".")[2]
        out[name] = unpack(packed, getattr(attribute_pb2, name))
    return out


# ---------------------------------------------------------------------------------------
# FlowSpec


@settings(max_examples=200)
@given(st.from_type(FlowRule))
def test_flow_round_trip(rule: FlowRule) -> None:
    """decode_path(flow_path(r)) == r for random rules of both families."""
    assert rule == decode_path(flow_path(rule))


@settings(max_examples=100)
@given(st.from_type(FlowMatch))
def test_withdraw_path_carries_the_match_and_no_actions(match: FlowMatch) -> None:
    """A withdraw needs only the match: the path is marked withdrawn, has the same NLRI
    as the announcement and carries no attributes at all."""
    path = flow_path(match, withdraw=True)
    assert path.is_withdraw
    assert not path.pattrs_binary
    announce = flow_path(FlowRule(match, FlowActions(rate=0.0)))
    assert announce.nlri_binary == path.nlri_binary
    assert not announce.is_withdraw


def test_withdraw_with_a_rule_also_drops_the_actions() -> None:
    """Withdrawing with a whole rule gives the same path as with its match."""
    rule = parse_rule("destination 10.0.0.1/32 redirect 6:302")
    assert flow_path(rule.match, withdraw=True) == flow_path(rule, withdraw=True)


def test_announcing_needs_the_actions() -> None:
    """Announcing a bare match (no actions) is a programming error."""
    match = FlowMatch(Family.IPV4, protocol=(NumericTerm.of("=", 6),))
    with pytest.raises(AssertionError):
        flow_path(match)


@pytest.mark.parametrize(
    ("family", "expected_family", "afi", "next_hop"),
    [
        (Family.IPV4, FAMILY_IPV4_FLOWSPEC, 1, bytes(4)),
        (Family.IPV6, FAMILY_IPV6_FLOWSPEC, 2, bytes(16)),
    ],
)
def test_flow_path_family_and_attributes(
    family: Family, expected_family: Any, afi: int, next_hop: bytes
) -> None:
    """A FlowSpec path has the family's AFI/SAFI 133, the canonical NLRI in binary, and
    three binary attributes: origin IGP, an MP_REACH with the unspecified next-hop and
    the same NLRI, and the actions as extended communities."""
    rule = FlowRule(FlowMatch(family, protocol=(NumericTerm.of("=", 6),)), FlowActions(rate=0.0))
    path = flow_path(rule)
    assert expected_family == path.family
    assert rule.match.wire() == path.nlri_binary
    assert not path.pattrs  # nothing structured: GoBGP reads the bytes
    origin, reach, communities = (split(a) for a in path.pattrs_binary)
    assert origin == (0x40, 1, b"\x00")
    expected_reach = (
        0x80,
        14,
        struct.pack("!HBB", afi, 133, len(next_hop)) + next_hop + b"\x00" + path.nlri_binary,
    )
    assert expected_reach == reach
    expected_discard = (0xC0, 16, bytes.fromhex("8006000000000000"))
    assert expected_discard == communities


def test_flow_path_of_a_long_nlri_uses_the_two_byte_length() -> None:
    """An NLRI of 240 bytes or more has a 2-byte length prefix (0xFnnn), and the
    MP_REACH attribute that carries it then needs the extended-length flag."""
    ports = tuple(NumericTerm.of("=", 1000 + i, and_=False) for i in range(120))
    rule = FlowRule(FlowMatch(Family.IPV4, destination_port=ports), FlowActions(rate=0.0))
    path = flow_path(rule)
    assert path.nlri_binary[0] >= 0xF0
    flags, code, value = split(path.pattrs_binary[1])
    assert (flags & 0x10, code) == (0x10, 14)
    assert value.endswith(path.nlri_binary)
    assert rule == decode_path(path)


def test_decode_flow_with_an_unknown_component() -> None:
    """A FlowSpec NLRI holding a component trafex does not model is a DecodeError."""
    path = flow_path(parse_rule("protocol =6 discard"))
    path.nlri_binary = bytes([3, 14, 0x81, 6])  # component type 14 is not defined
    with pytest.raises(DecodeError, match="cannot model"):
        decode_path(path)


def test_decode_flow_without_binary_nlri() -> None:
    """A FlowSpec path must come in binary (ListPath with enable_only_binary)."""
    path = gobgp_pb2.Path(family=FAMILY_IPV4_FLOWSPEC)
    with pytest.raises(DecodeError, match="binary NLRI"):
        decode_path(path)


# ---------------------------------------------------------------------------------------
# Unicast routes


@settings(max_examples=200)
@given(st.from_type(UnicastRoute))
def test_route_round_trip(route: UnicastRoute) -> None:
    """decode_path(route_path(r)) == r for random routes of both families."""
    assert route == decode_path(route_path(route))


@pytest.mark.parametrize(
    ("prefix", "expected_family", "default"),
    [
        ("192.0.2.1/32", FAMILY_IPV4_UNICAST, "0.0.0.0"),
        ("3001:10:66::5/128", FAMILY_IPV6_UNICAST, "::"),
    ],
)
def test_route_next_hop_defaults_to_unspecified(
    prefix: str, expected_family: Any, default: str
) -> None:
    """Without a next-hop the path carries 0.0.0.0 (IPv4, NEXT_HOP) or :: (IPv6,
    MP_REACH), for GoBGP to put its own address; it decodes back to None."""
    route = UnicastRoute(ipaddress.ip_network(prefix))
    path = route_path(route)
    attrs = attributes(path)
    assert expected_family == path.family
    if expected_family == FAMILY_IPV4_UNICAST:
        assert default == attrs["NextHopAttribute"].next_hop
    else:
        assert [default] == list(attrs["MpReachNLRIAttribute"].next_hops)
    assert route == decode_path(path)


def test_route_attributes() -> None:
    """Communities, large communities, local-preference and MED become their attributes;
    unset ones are absent."""
    route = UnicastRoute(
        ipaddress.ip_network("192.0.2.1/32"),
        ipaddress.ip_address("198.51.100.1"),
        communities=(65000 << 16 | 666,),
        large_communities=((65000, 1, 2),),
        local_preference=200,
        med=5,
    )
    attrs = attributes(route_path(route))
    expected = {
        "communities": [65000 << 16 | 666],
        "large": [(65000, 1, 2)],
        "local_pref": 200,
        "med": 5,
        "next_hop": "198.51.100.1",
    }
    actual = {
        "communities": list(attrs["CommunitiesAttribute"].communities),
        "large": [
            (c.global_admin, c.local_data1, c.local_data2)
            for c in attrs["LargeCommunitiesAttribute"].communities
        ],
        "local_pref": attrs["LocalPrefAttribute"].local_pref,
        "med": attrs["MultiExitDiscAttribute"].med,
        "next_hop": attrs["NextHopAttribute"].next_hop,
    }
    assert expected == actual
    bare = attributes(route_path(UnicastRoute(ipaddress.ip_network("192.0.2.1/32"))))
    assert {"OriginAttribute", "NextHopAttribute"} == set(bare)


def test_route_withdraw() -> None:
    """A withdrawn route path is marked so and has the same NLRI."""
    route = UnicastRoute(ipaddress.ip_network("192.0.2.1/32"))
    withdraw = route_path(route, withdraw=True)
    assert withdraw.is_withdraw
    assert route_path(route).nlri == withdraw.nlri


# ---------------------------------------------------------------------------------------
# Unsupported paths


def test_decode_unsupported_family() -> None:
    """A path of a family trafex does not model (here L2VPN EVPN) is a DecodeError."""
    family = gobgp_pb2.Family(afi=gobgp_pb2.Family.AFI_L2VPN, safi=gobgp_pb2.Family.SAFI_EVPN)
    with pytest.raises(DecodeError, match="unsupported family"):
        decode_path(gobgp_pb2.Path(family=family))


def test_decode_unicast_path_with_another_nlri() -> None:
    """A unicast path whose NLRI is not an IPAddressPrefix is a DecodeError."""
    path = route_path(UnicastRoute(ipaddress.ip_network("192.0.2.1/32")))
    path.nlri.Pack(attribute_pb2.OriginAttribute(origin=0))
    with pytest.raises(DecodeError, match="unsupported unicast NLRI"):
        decode_path(path)


def test_flowspec_prefix_decodes_with_offset() -> None:
    """An IPv6 FlowSpec prefix with an offset survives the trip through GoBGP's message."""
    prefix = FlowPrefix(ipaddress.ip_network("::1:1234:5678:9800:0/104"), 60)
    rule = FlowRule(FlowMatch(Family.IPV6, source=prefix), FlowActions(rate=0.0))
    assert rule == decode_path(flow_path(rule))
