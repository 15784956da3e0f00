"""Unit tests for trafex.model.nlri: FlowSpec NLRI bytes back into a FlowMatch."""

from __future__ import annotations

import contextlib
import ipaddress

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from trafex.model.errors import ValidationError
from trafex.model.flowspec import (
    BitmaskTerm,
    Family,
    FlowMatch,
    FlowPrefix,
    NumericTerm,
)
from trafex.model.nlri import decode_key, decode_nlri

V4 = Family.IPV4
V6 = Family.IPV6


def prefix(text: str, offset: int = 0) -> FlowPrefix:
    return FlowPrefix(ipaddress.ip_network(text), offset)


@settings(max_examples=300)
@given(st.from_type(FlowMatch))
def test_decode_inverts_encode(match: FlowMatch) -> None:
    """decode_nlri(family, m.encode()) == m for any valid match of either family."""
    assert match == decode_nlri(match.family, match.encode())


@settings(max_examples=200)
@given(st.from_type(FlowMatch))
def test_decode_key_inverts_key(match: FlowMatch) -> None:
    """decode_key(m.key) == m: a rule known only by its key can be rebuilt."""
    assert match == decode_key(match.key)


@pytest.mark.parametrize(
    ("family", "data", "expected"),
    [
        (V4, "01 20 0a000001", FlowMatch(V4, destination=prefix("10.0.0.1/32"))),
        (V4, "02 09 0a80", FlowMatch(V4, source=prefix("10.128.0.0/9"))),
        (V4, "03 81 06", FlowMatch(V4, protocol=(NumericTerm.of("=", 6),))),
        (
            V4,
            "05 13 0400 55 0800 81 50",
            FlowMatch(
                V4,
                destination_port=(
                    NumericTerm.of(">=", 1024),
                    NumericTerm.of("<=", 2048, and_=True),
                    NumericTerm.of("=", 80),
                ),
            ),
        ),
        # a non-minimal value length (2 bytes for 6) decodes to the same term
        (V4, "03 91 0006", FlowMatch(V4, protocol=(NumericTerm.of("=", 6),))),
        (
            V4,
            "09 01 02 c2 10",
            FlowMatch(
                V4,
                tcp_flags=(BitmaskTerm(0x02, match=True), BitmaskTerm(0x10, not_=True, and_=True)),
            ),
        ),
        (V6, "02 68 3c 112345678980", FlowMatch(V6, source=prefix("::1:1234:5678:9800:0/104", 60))),
        (V6, "01 20 00 20010db8", FlowMatch(V6, destination=prefix("2001:db8::/32"))),
        # padding bits after an IPv6 pattern are ignored (RFC 8956 §3.1)
        (V6, "01 03 00 ff", FlowMatch(V6, destination=prefix("e000::/3"))),
    ],
)
def test_decode_known_bytes(family: Family, data: str, expected: FlowMatch) -> None:
    """Hand-written RFC 8955/8956 NLRI bytes decode to the match they describe."""
    assert expected == decode_nlri(family, bytes.fromhex(data))


@pytest.mark.parametrize(
    ("family", "data", "message"),
    [
        (V4, "", "at least one match component"),
        (V4, "01 20 0a00", "truncated IPv4 prefix"),
        (V4, "01", "truncated prefix component"),
        (V4, "01 21 0a000001 00", "truncated IPv4 prefix"),  # length 33
        (V6, "01 40 00 2001", "truncated or inconsistent IPv6 prefix"),
        (V6, "01 08 10", "truncated or inconsistent IPv6 prefix"),  # offset above length
        (V6, "01 81 00" + "00" * 17, "truncated or inconsistent IPv6 prefix"),  # length 129
        (V6, "01 40 40", "below the prefix length"),  # offset == length
        (V4, "03 91 00", "truncated value in component PROTOCOL"),
        (V4, "03 01 06", "PROTOCOL has no end-of-list bit"),
        (V4, "00 81 06", "unknown component type 0"),
        (V4, "0e 81 06", "unknown component type 14"),
        (V4, "03 81 06 01 20 0a000001", "DESTINATION out of order"),
        (V4, "03 81 06 03 81 11", "PROTOCOL out of order or repeated"),
        (V4, "0d 81 05", "only defined for ipv6"),
        (V4, "03 c1 06", "first term cannot be ANDed"),
        (V4, "03 91 0100", "out of range"),
        (V6, "0c 81 01", "dont-fragment"),
    ],
)
def test_malformed_bytes_raise_validation_error(family: Family, data: str, message: str) -> None:
    """Truncated, unknown, out-of-order, unterminated or invalid components raise a
    ValidationError that says what is wrong."""
    with pytest.raises(ValidationError, match=message):
        decode_nlri(family, bytes.fromhex(data))


@pytest.mark.parametrize("key", ["ipv5:038106", "ipv4:zz", "ipv4", "", "ipv4:03", "ipv6:"])
def test_bad_keys(key: str) -> None:
    """decode_key refuses keys with an unknown family, bad hex or bad NLRI, quoting it."""
    with pytest.raises(ValidationError, match="not a FlowSpec key"):
        decode_key(key)


@settings(max_examples=300)
@given(st.binary(max_size=40))
@example(bytes.fromhex("01 81 00"))
@example(bytes.fromhex("0d a1 00100000"))  # flow-label 2**20
def test_random_bytes_raise_only_validation_error_ipv6(data: bytes) -> None:
    """For IPv6, arbitrary bytes either decode or raise ValidationError, never another
    exception."""
    with contextlib.suppress(ValidationError):
        decode_nlri(V6, data)


@settings(max_examples=300)
@given(st.binary(max_size=40))
@example(bytes.fromhex("01 04 ff"))  # 255.0.0.0/4: bits past the length are set
def test_random_bytes_raise_only_validation_error_ipv4(data: bytes) -> None:
    """For IPv4, arbitrary bytes either decode or raise ValidationError, never another
    exception (``01 04 ff`` is refused as ValidationError, not ValueError)."""
    with contextlib.suppress(ValidationError):
        decode_nlri(V4, data)


def test_ipv4_prefix_bits_past_the_length_are_a_validation_error() -> None:
    """``01 04 ff`` (a /4 whose byte is 0xff: bits set past the prefix length) is
    malformed input and raises ValidationError naming the component, like every other
    malformed NLRI, not ValueError from ipaddress."""
    with pytest.raises(ValidationError) as info:
        decode_nlri(V4, bytes.fromhex("01 04 ff"))
    expected = "destination: 255.0.0.0/4 has bits set past its length"
    assert expected == str(info.value)
