"""The DNS message parser: compression, chains, truncation, and no crash on any input."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from trafex.detect.detectors.dnsmsg import TYPE_A, TYPE_CNAME, parse_response

from .dnsscenarios import compressed_chain, response


def test_parses_question_and_answers() -> None:
    """The question name/type and A/AAAA/CNAME answers come out with lower-case owners."""
    msg = bytes(
        response(
            "WWW.Bad.Test",
            [("www.bad.test", "CNAME", "edge.net"), ("edge.net", "AAAA", "2001:db8::1")],
            "AAAA",
        )
    )
    resp = parse_response(msg)
    assert resp is not None
    assert resp.qname == "WWW.Bad.Test"
    assert resp.qtype == 28
    assert [(a.owner, a.rtype) for a in resp.answers] == [
        ("www.bad.test", TYPE_CNAME),
        ("edge.net", 28),
    ]
    assert resp.chain_addresses() == ["2001:db8::1"]
    assert resp.complete


def test_compression_pointers_are_followed() -> None:
    """Owner and CNAME target names built from pointers resolve to full names."""
    resp = parse_response(compressed_chain())
    assert resp is not None
    assert [(a.owner, a.value) for a in resp.answers] == [
        ("a.bad.test", "b.bad.test"),
        ("b.bad.test", "203.0.113.9"),
    ]
    assert resp.chain_addresses() == ["203.0.113.9"]


def test_queries_are_not_responses() -> None:
    """A query (QR=0) gives None."""
    msg = bytearray(bytes(response("bad.test", [("bad.test", "A", "192.0.2.1")])))
    msg[2] &= 0x7F
    assert parse_response(bytes(msg)) is None


def test_truncated_answer_section_keeps_earlier_records() -> None:
    """A message cut inside the second answer keeps the first and says it is incomplete."""
    msg = bytes(
        response("bad.test", [("bad.test", "A", "192.0.2.1"), ("bad.test", "A", "192.0.2.2")])
    )
    resp = parse_response(msg[:-3])
    assert resp is not None
    assert resp.chain_addresses() == ["192.0.2.1"]
    assert not resp.complete


def test_pointer_loop_ends() -> None:
    """A compression pointer pointing at itself ends the parse instead of looping."""
    msg = bytearray(bytes(response("bad.test", [("bad.test", "A", "192.0.2.1")])))
    owner = msg.index(b"\x03bad\x04test\x00", 20)
    msg[owner : owner + 2] = bytes([0xC0, owner])
    resp = parse_response(bytes(msg))
    assert resp is not None
    assert resp.answers == ()


def test_cname_loop_does_not_hang() -> None:
    """CNAMEs pointing at each other end the chain walk."""
    resp = parse_response(
        bytes(
            response(
                "a.test",
                [
                    ("a.test", "CNAME", "b.test"),
                    ("b.test", "CNAME", "a.test"),
                    ("b.test", "A", "192.0.2.4"),
                ],
            )
        )
    )
    assert resp is not None
    assert resp.chain_addresses() == ["192.0.2.4"]
    assert TYPE_A == 1


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_never_raise(data: bytes) -> None:
    """Any byte string parses to a response or None, never an exception."""
    parse_response(b"\x00\x01\x81\x80" + data)


@settings(max_examples=300, deadline=None)
@given(
    st.integers(min_value=0, max_value=200),
    st.binary(min_size=1, max_size=4),
    st.integers(min_value=12, max_value=80),
)
def test_mutated_responses_never_raise(cut: int, junk: bytes, at: int) -> None:
    """Real responses with bytes overwritten and cut anywhere never raise."""
    msg = bytearray(compressed_chain())
    msg[at : at + len(junk)] = junk
    parse_response(bytes(msg[: max(cut, 0)]))
