"""Unit tests for trafex.model.nlri: FlowSpec NLRI bytes back into a FlowMatch."""

from __future__ import annotations

import contextlib
import dataclasses
import ipaddress

import pytest
from hypothesis import example, given, reject, settings
from hypothesis import strategies as st

from trafex.model.components import COMPONENTS, TERM_COMPONENTS, Family
from trafex.model.errors import ValidationError
from trafex.model.flowspec import BitmaskTerm, FlowMatch, FlowPrefix, NumericTerm
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
    ],
)
def test_decode_known_bytes(family: Family, data: str, expected: FlowMatch) -> None:
    """Hand-written RFC 8955/8956 NLRI bytes decode to the match they describe."""
    assert expected == decode_nlri(family, bytes.fromhex(data))


@pytest.mark.parametrize(
    ("family", "data", "expected"),
    [
        # a non-minimal value length (2 bytes for 6)
        (V4, "03 91 0006", FlowMatch(V4, protocol=(NumericTerm.of("=", 6),))),
        # reserved operator bits: numeric 0x08, bitmask 0x0c (RFC 8955 §4.2.1)
        (V4, "03 89 06", FlowMatch(V4, protocol=(NumericTerm.of("=", 6),))),
        (V4, "09 8d 02", FlowMatch(V4, tcp_flags=(BitmaskTerm(0x02, match=True),))),
        # padding bits after an IPv6 pattern (RFC 8956 §3.1)
        (V6, "01 03 00 ff", FlowMatch(V6, destination=prefix("e000::/3"))),
    ],
)
def test_decode_ignores_what_the_rfcs_ignore_but_keeps_the_bytes(
    family: Family, data: str, expected: FlowMatch
) -> None:
    """Value lengths, reserved bits and padding do not change what a match matches: the
    components are those of the canonical match. But it is another NLRI (another key),
    and the decoded match keeps its exact bytes so that it can be withdrawn by them."""
    decoded = decode_nlri(family, bytes.fromhex(data))
    assert expected.components() == decoded.components()
    assert bytes.fromhex(data) == decoded.encode()
    assert expected != decoded
    assert expected.key != decoded.key


# ---------------------------------------------------------------------------------------
# != as received: kept, so that decode → encode is the identity


NOT_EQUAL_80 = "05 86 50"  # destination-port, end | lt | gt: != 80, as gobgpd may hold it


def test_decoded_not_equal_is_kept() -> None:
    """A numeric != (lt|gt) read from an NLRI stays one != term and re-encodes to the
    same bytes; a rule typed by a user gets != written as < OR > (FRR 8.4 resets the
    session on lt|gt), which is another NLRI, so another rule."""
    data = bytes.fromhex(NOT_EQUAL_80)
    decoded = decode_nlri(V4, data)
    typed = FlowMatch(V4, destination_port=(NumericTerm.of("!=", 80),))
    expected = {
        "decoded": ((NumericTerm.of("!=", 80),), data, "ipv4:058650"),
        "typed": (
            (NumericTerm.of("<", 80), NumericTerm.of(">", 80)),
            bytes.fromhex("05 04 50 82 50"),
            "ipv4:0504508250",
        ),
    }
    actual = {
        name: (match.destination_port, match.encode(), match.key)
        for name, match in (("decoded", decoded), ("typed", typed))
    }
    assert expected == actual
    assert decoded != typed


@pytest.mark.parametrize(
    ("family", "data"),
    [
        (V4, NOT_EQUAL_80),
        (V4, "05 03 01 46 50 81 bb"),  # >=1&!=80 =187
        (V6, "05 06 50 96 1f90"),  # !=80 !=8080
        (V6, "0d a6 00012345"),  # flow-label !=0x12345
        (V4, "01 18 0a0000 03 86 06 0a 16 0040 d6 0100"),  # 10/24, !=6, !=64&!=256
    ],
)
def test_decode_encode_identity_with_not_equal(family: Family, data: str) -> None:
    """decode → encode gives back the input bytes, != terms included, and so does a
    second round (decode_key of the key)."""
    raw = bytes.fromhex(data)
    decoded = decode_nlri(family, raw)
    assert raw == decoded.encode()
    assert decoded == decode_key(decoded.key)
    assert decoded.wire() == bytes([len(raw)]) + raw


def test_replace_on_a_decoded_match_is_canonical() -> None:
    """dataclasses.replace on a decoded match builds a new match the way users' matches
    are built: != written as < OR >, the canonical encoding."""
    decoded = decode_nlri(V4, bytes.fromhex(NOT_EQUAL_80))
    changed = dataclasses.replace(decoded, protocol=(NumericTerm.of("=", 6),))
    expected = FlowMatch(
        V4,
        protocol=(NumericTerm.of("=", 6),),
        destination_port=(NumericTerm.of("!=", 80),),
    )
    assert expected == changed
    assert expected.encode() == changed.encode()


# Largest value of each numeric or bitmask component type (the model's table).
_MAXIMUM = {int(c.type): c.maximum for c in TERM_COMPONENTS}


def _value_code(value: int) -> int:
    """The smallest length code (value of 1 << code bytes) that holds ``value``."""
    return next(code for code in range(4) if value < 1 << (8 << code))


@st.composite
def nlri_bytes(draw: st.DrawFn) -> tuple[Family, bytes]:
    """Well-formed NLRI component bytes as any speaker may send them: any operator
    (!= and true/false included), any value length that holds the value, reserved bits
    and IPv6 padding bits set or not."""
    family = draw(st.sampled_from(Family))
    types = [int(c.type) for c in COMPONENTS if family in c.families]
    out = bytearray()
    for ctype in sorted(draw(st.sets(st.sampled_from(types), min_size=1, max_size=5))):
        out.append(ctype)
        if ctype <= 2 and family is V4:
            plen = draw(st.integers(0, 32))
            bits = draw(st.integers(0, (1 << 32) - 1)) & ~((1 << (32 - plen)) - 1)
            out += bytes([plen]) + bits.to_bytes(4, "big")[: (plen + 7) // 8]
        elif ctype <= 2:
            plen = draw(st.integers(0, 128))
            offset = draw(st.integers(0, plen - 1)) if plen > 1 else 0
            nbytes = (plen - offset + 7) // 8
            out += bytes([plen, offset]) + draw(st.binary(min_size=nbytes, max_size=nbytes))
        else:
            count = draw(st.integers(1, 4))
            for index in range(count):
                value = draw(st.integers(0, _MAXIMUM[ctype]))
                if ctype == 12 and family is V6:
                    value &= ~0x01  # no dont-fragment in IPv6
                code = draw(st.integers(_value_code(value), 3))
                and_ = index > 0 and draw(st.booleans())
                end = index == count - 1
                op = 0x80 * end | 0x40 * and_ | code << 4 | draw(st.integers(0, 0x0F))
                out += bytes([op]) + value.to_bytes(1 << code, "big")
    return family, bytes(out)


@settings(max_examples=500)
@given(nlri_bytes())
@example((V4, bytes.fromhex(NOT_EQUAL_80)))
def test_decode_encode_is_the_identity(case: tuple[Family, bytes]) -> None:
    """For any NLRI that decodes, encode() gives back the exact bytes, the key is
    family:hex of them, and decoding the key again gives an equal match."""
    family, data = case
    try:
        decoded = decode_nlri(family, data)
    except ValidationError:
        reject()  # icmp-type or tcp-flags against a single =protocol of another value
    assert data == decoded.encode()
    assert f"{family.value}:{data.hex()}" == decoded.key
    assert decoded == decode_key(decoded.key)


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
