"""Unit tests for trafex.bgp.attributes: FlowSpec path attributes as bytes."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trafex.bgp.attributes import (
    ORIGIN_IGP,
    DecodeError,
    action_communities,
    actions_from_attributes,
    attribute,
    extended_communities,
    split,
)
from trafex.model.errors import ValidationError
from trafex.model.flowspec import FlowActions, RouteTarget


def test_origin_igp() -> None:
    """ORIGIN is well-known transitive (0x40), type 1, one byte: 0 = IGP."""
    assert bytes.fromhex("40010100") == ORIGIN_IGP


@pytest.mark.parametrize(
    ("actions", "expected"),
    [
        # traffic-rate-bytes 0x8006: 2-byte AS (0), float32 bytes/s (RFC 8955 §7.3)
        (FlowActions(rate=0.0), ["8006000000000000"]),
        (FlowActions(rate=1000.0), ["80060000447a0000"]),
        # traffic-action 0x8007: S = 0x02, T = 0x01 in the last byte (§7.5)
        (FlowActions(sample=True), ["8007000000000002"]),
        (FlowActions(terminal=True), ["8007000000000001"]),
        (FlowActions(sample=True, terminal=True), ["8007000000000003"]),
        # redirect AS-2 0x8008, IPv4 0x8108, AS-4 0x8208 (§7.4, RFC 7674)
        (FlowActions(redirect=RouteTarget.parse("6:302")), ["800800060000012e"]),
        (FlowActions(redirect=RouteTarget.parse("192.0.2.1:7")), ["8108c00002010007"]),
        (FlowActions(redirect=RouteTarget.parse("4200000000:5")), ["8208fa56ea000005"]),
        # traffic-marking 0x8009: DSCP in the low 6 bits of the last byte (§7.6)
        (FlowActions(mark=46), ["800900000000002e"]),
    ],
)
def test_each_action_has_its_community(actions: FlowActions, expected: list[str]) -> None:
    assert expected == [c.hex() for c in action_communities(actions)]


def test_several_actions_in_rfc_order() -> None:
    """Rate, traffic-action, redirect, marking: one community each, in that order."""
    actions = FlowActions(rate=1000.0, redirect=RouteTarget.parse("65000L:7"), mark=10, sample=True)
    kinds = [c[:2].hex() for c in action_communities(actions)]
    assert kinds == ["8006", "8007", "8208", "8009"]


def test_extended_communities_attribute() -> None:
    """Optional transitive (0xC0), type 16, 8 bytes per community."""
    data = extended_communities(FlowActions(rate=0.0, sample=True))
    assert (data[0], data[1], data[2]) == (0xC0, 16, 16)
    assert len(data) == 3 + 16


@settings(max_examples=300)
@given(st.from_type(FlowActions))
def test_actions_round_trip(actions: FlowActions) -> None:
    """Every valid set of actions decodes back from its attribute bytes."""
    assert actions == actions_from_attributes([ORIGIN_IGP, extended_communities(actions)])


def test_other_communities_are_ignored() -> None:
    """A route-target (0x0002) next to the actions is not an action."""
    value = bytes.fromhex("0002fde800000001") + action_communities(FlowActions(rate=0.0))[0]
    data = attribute(0xC0, 16, value)
    assert FlowActions(rate=0.0) == actions_from_attributes([data])


def test_no_action_at_all_is_a_validation_error() -> None:
    """Attributes without any FlowSpec action do not make a rule."""
    with pytest.raises(ValidationError, match="needs an action"):
        actions_from_attributes([ORIGIN_IGP])


def test_extended_length() -> None:
    """A value over 255 bytes sets the extended-length flag and a 2-byte length."""
    data = attribute(0x80, 14, bytes(300))
    assert (data[0], data[1], int.from_bytes(data[2:4], "big")) == (0x90, 14, 300)
    assert (0x90, 14, bytes(300)) == split(data)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x40\x01", "too short"),
        (b"\x90\x0e\x01", "too short"),
        (b"\x40\x01\x02\x00", "says 2 bytes, has 1"),
        (attribute(0xC0, 16, bytes(7)), "not 8 each"),
    ],
)
def test_malformed_attributes(data: bytes, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        actions_from_attributes([data])
