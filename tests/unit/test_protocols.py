"""Unit tests for trafex.model.protocols: the one table of protocol names, ICMP types
and TCP flags."""

from __future__ import annotations

import socket

import pytest

from trafex.model.protocols import (
    PROTO_ICMP,
    PROTO_ICMPV6,
    PROTO_TCP,
    PROTO_UDP,
    PROTOCOL_NAMES,
    PROTOCOLS,
    TCP_ACK,
    TCP_FLAG_LETTERS,
    TCP_FLAG_NAMES,
    TCP_SYN,
    icmp_protocol,
    protocol_name,
    protocol_number,
    tcp_flags_text,
    tcp_flags_value,
)


def test_protocol_numbers_are_the_systems() -> None:
    """The named numbers are IANA's, as the C library has them."""
    expected = [socket.IPPROTO_ICMP, socket.IPPROTO_TCP, socket.IPPROTO_UDP]
    expected.append(socket.IPPROTO_ICMPV6)
    assert expected == [PROTO_ICMP, PROTO_TCP, PROTO_UDP, PROTO_ICMPV6]
    names = {6: "tcp", 17: "udp", 58: "icmpv6"}
    assert names == {n: PROTOCOL_NAMES[n] for n in (6, 17, 58)}


@pytest.mark.parametrize(
    ("value", "expected"),
    [("tcp", 6), ("TCP", 6), (" udp ", 17), ("ipv6-icmp", 58), (6, 6), ("17", 17), (255, 255),
     (256, None), (-1, None), ("256", None), ("quic", None), (True, None), (None, None)],
)  # fmt: skip
def test_protocol_number(value: object, expected: int | None) -> None:
    """A protocol by name, number or number as text; None for anything else."""
    assert expected == protocol_number(value)


def test_protocol_name() -> None:
    """The name trafex writes (the first of several), else the number as text."""
    expected = ["tcp", "icmpv6", "253"]
    assert expected == [protocol_name(6), protocol_name(58), protocol_name(253)]
    assert all(protocol_number(protocol_name(n)) == n for n in PROTOCOLS.values())


def test_icmp_protocol() -> None:
    """ICMP for IPv4, ICMPv6 for IPv6."""
    expected = (1, 58)
    assert expected == (icmp_protocol(4), icmp_protocol(6))


def test_tcp_flags_letters_and_names() -> None:
    """One letter per bit, FIN (bit 0) to CWR (bit 7); every name is one of the bits."""
    expected = ("SA", TCP_SYN | TCP_ACK)
    assert expected == (tcp_flags_text(TCP_SYN | TCP_ACK), tcp_flags_value("SA"))
    bits = [1 << i for i in range(8)]
    assert bits == [tcp_flags_value(c) for c in TCP_FLAG_LETTERS]
    assert set(bits) == set(TCP_FLAG_NAMES.values())
    assert not any(map(tcp_flags_value, ("", "SX")))
