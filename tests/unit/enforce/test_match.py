"""Every FlowSpec component and operator, both families, as nft match expressions."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trafex.enforce.dnf import Branch, cond, exthdr, masked, meta, payload, raw
from trafex.enforce.match import branches, components
from trafex.model.flowspec import Family, FlowMatch
from trafex.model.grammar import parse_match
from trafex.model.nlri import decode_nlri

from .nftmodel import dnf_holds, flowspec_holds
from .packets import packets

V4 = cond("==", meta("nfproto"), "ipv4")
V6 = cond("==", meta("nfproto"), "ipv6")
L4 = meta("l4proto")
TCP = cond("==", L4, 6)
TCP_UDP = cond("==", L4, {"set": [6, 17]})
FLAGS = payload("tcp", "flags")
FRAG_OFF = payload("ip", "frag-off")


def compiled(text: str) -> list[Branch]:
    return branches(parse_match(text))


def one(*exprs: dict[str, Any]) -> list[Branch]:
    return [tuple(exprs)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "destination 10.0.0.0/8",
            one(V4, cond("==", payload("ip", "daddr"), {"prefix": {"addr": "10.0.0.0", "len": 8}})),
        ),
        ("source 192.0.2.1/32", one(V4, cond("==", payload("ip", "saddr"), "192.0.2.1"))),
        ("destination 0.0.0.0/0", one(V4)),
        (
            "source 2001:db8::/32",
            one(
                V6,
                cond("==", payload("ip6", "saddr"), {"prefix": {"addr": "2001:db8::", "len": 32}}),
            ),
        ),
        (
            "destination 3001:4:b::10/128",
            one(V6, cond("==", payload("ip6", "daddr"), "3001:4:b::10")),
        ),
    ],
)
def test_prefixes(text: str, expected: list[Branch]) -> None:
    """Prefixes are ``ip``/``ip6`` saddr/daddr tests; /0 matches every address."""
    assert compiled(text) == expected


def test_ipv6_source_prefix_with_offset_is_raw_bits() -> None:
    """``0:0:12:3456::/72/40``: the address bits 40..71, at @nh 64+40 (RFC 8956 §3.1)."""
    assert compiled("source 0:0:12:3456::/72/40") == one(
        V6, cond("==", raw("nh", 104, 32), 0x12345600)
    )


def test_ipv6_destination_prefix_with_offset_is_raw_bits() -> None:
    """A destination's bits start at @nh 192; wide patterns are written in hex."""
    expected = one(V6, cond("==", raw("nh", 200, 56), "0x010db800000000"))
    assert compiled("destination 2001:db8::/64/8") == expected


def test_protocol_list() -> None:
    """IP protocol / upper-layer protocol is ``meta l4proto`` in both families."""
    assert compiled("ipv4 protocol =tcp") == one(V4, TCP)
    assert compiled("ipv6 protocol [ =tcp =udp ]") == one(V6, TCP_UDP)
    assert compiled("ipv4 protocol !=6") == one(V4, cond("!=", L4, 6))


def test_protocol_true_still_needs_a_protocol() -> None:
    """``protocol true`` matches any protocol the kernel could find."""
    assert compiled("ipv6 protocol true") == one(V6, cond("==", L4, {"range": [0, 255]}))


def test_port_is_source_or_destination() -> None:
    """Type 4 is two branches (sport OR dport), each only for TCP and UDP."""
    assert compiled("ipv4 port =80") == [
        (V4, TCP_UDP, cond("==", payload("th", "sport"), 80)),
        (V4, TCP_UDP, cond("==", payload("th", "dport"), 80)),
    ]


def test_port_true_is_one_branch_that_loads_the_port() -> None:
    """Every port: one branch, but the transport header must be there."""
    assert compiled("ipv6 port true") == one(
        V6, TCP_UDP, cond("==", payload("th", "dport"), {"range": [0, 0xFFFF]})
    )


def test_destination_and_source_ports() -> None:
    """destination-port / source-port: ``th dport`` / ``th sport``, TCP or UDP only."""
    assert compiled("ipv4 destination-port >=1024&<=2048 source-port <1024") == one(
        V4,
        TCP_UDP,
        cond("==", payload("th", "dport"), {"range": [1024, 2048]}),
        cond("<=", payload("th", "sport"), 1023),
    )


def test_protocol_narrowed_by_ports() -> None:
    """A protocol list and a port component meet in one l4proto test."""
    assert compiled("ipv4 protocol [ =tcp =icmp ] destination-port =53") == one(
        V4, TCP, cond("==", payload("th", "dport"), 53)
    )


def test_protocol_without_ports_matches_nothing() -> None:
    """``protocol =icmp destination-port =80`` can match no packet: no branch."""
    assert compiled("ipv4 protocol =icmp destination-port =80") == []


def test_icmp_type_and_code_per_family() -> None:
    """ICMP for IPv4 (protocol 1), ICMPv6 for IPv6 (58)."""
    assert compiled("ipv4 icmp-type =8 icmp-code =0") == one(
        V4,
        cond("==", L4, 1),
        cond("==", payload("icmp", "type"), 8),
        cond("==", payload("icmp", "code"), 0),
    )
    assert compiled("ipv6 icmp-type [ =echo-request =echo-reply ]") == one(
        V6, cond("==", L4, 58), cond("==", payload("icmpv6", "type"), {"range": [128, 129]})
    )


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ("=S", [cond("==", masked(FLAGS, 2), 2)]),
        ("S", [cond("==", masked(FLAGS, 2), 2)]),
        ("SA", [cond("!=", masked(FLAGS, 0x12), 0)]),
        ("=SA", [cond("==", masked(FLAGS, 0x12), 0x12)]),
        ("!=SA", [cond("!=", masked(FLAGS, 0x12), 0x12)]),
        ("!SA", [cond("==", masked(FLAGS, 0x12), 0)]),
        ("=S&!A", [cond("==", masked(FLAGS, 0x12), 2)]),
        ("0x100", [cond("==", masked(raw("th", 96, 16), 0x100), 0x100)]),
        ("=0x0102", [cond("==", masked(raw("th", 96, 16), 0x102), 0x102)]),
    ],
)
def test_tcp_flags_bitmask_operators(flags: str, expected: list[dict[str, Any]]) -> None:
    """Match bit: all bits; no match bit: any bit; not bit negates (RFC 8955 §4.2.1.2).
    Values above one octet test the two octets at @th,96 (§4.2.2.9)."""
    assert compiled(f"ipv4 tcp-flags {flags}") == one(V4, TCP, *expected)


def test_tcp_flags_or_of_chains() -> None:
    """Each AND-chain of tcp-flags terms is a branch."""
    assert compiled("ipv6 tcp-flags [ =S F ]") == [
        (V6, TCP, cond("==", masked(FLAGS, 2), 2)),
        (V6, TCP, cond("==", masked(FLAGS, 1), 1)),
    ]


def test_tcp_flags_that_cannot_hold_are_dropped() -> None:
    """``=S&!S`` never holds; all of a data-offset bit neither (it reads as 0)."""
    assert compiled("ipv4 tcp-flags =S&!S") == []
    assert compiled("ipv4 tcp-flags [ =0x1002 =S ]") == one(
        V4, TCP, cond("==", masked(FLAGS, 2), 2)
    )


def test_tcp_flags_that_always_hold_still_need_tcp() -> None:
    """Not all of a data-offset bit always holds: any TCP packet with a header."""
    assert compiled("ipv4 tcp-flags !=0x1000") == one(
        V4, TCP, cond("==", FLAGS, {"range": [0, 255]})
    )


def test_packet_length_is_the_total_length() -> None:
    """IPv4 ``ip length``; IPv6 ``ip6 length`` (payload) + 40 = total (RFC 8956 §3)."""
    assert compiled("ipv4 packet-length <100") == one(V4, cond("<=", payload("ip", "length"), 99))
    assert compiled("ipv6 packet-length >=100&<=1500") == one(
        V6, cond("==", payload("ip6", "length"), {"range": [60, 1460]})
    )
    assert compiled("ipv6 packet-length <40") == []


def test_dscp_and_flow_label() -> None:
    """DSCP: ``ip dscp`` / ``ip6 dscp``; flow label: ``ip6 flowlabel``."""
    assert compiled("ipv4 dscp [ =10 =12 ]") == one(
        V4, cond("==", payload("ip", "dscp"), {"set": [10, 12]})
    )
    assert compiled("ipv6 dscp =46 flow-label >0") == one(
        V6, cond("==", payload("ip6", "dscp"), 46), cond(">=", payload("ip6", "flowlabel"), 1)
    )


@pytest.mark.parametrize(
    ("fragment", "expected"),
    [
        ("dont-fragment", [(cond("==", masked(FRAG_OFF, 0x4000), 0x4000),)]),
        ("is-fragment", [(cond("!=", masked(FRAG_OFF, 0x1FFF), 0),)]),
        ("first-fragment", [(cond("==", masked(FRAG_OFF, 0x3FFF), 0x2000),)]),
        (
            "last-fragment",
            [(cond("==", masked(FRAG_OFF, 0x2000), 0), cond("!=", masked(FRAG_OFF, 0x1FFF), 0))],
        ),
        ("!is-fragment", [(cond("==", masked(FRAG_OFF, 0x1FFF), 0),)]),
        (
            "=dont-fragment+is-fragment",
            [
                (
                    cond("==", masked(FRAG_OFF, 0x4000), 0x4000),
                    cond("!=", masked(FRAG_OFF, 0x1FFF), 0),
                )
            ],
        ),
    ],
)
def test_ipv4_fragment_bits(fragment: str, expected: list[Branch]) -> None:
    """DF = flag DF; IsF = offset != 0; FF = offset 0 and MF; LF = offset != 0 and no MF
    (RFC 8955 §4.2.2.12)."""
    assert compiled(f"ipv4 fragment {fragment}") == [(V4, *b) for b in expected]


FRAG_MISSING = cond("==", exthdr("frag"), False)
FRAG_OFFSET = exthdr("frag", "frag-off")
FRAG_MORE = exthdr("frag", "more-fragments")


@pytest.mark.parametrize(
    ("fragment", "expected"),
    [
        ("is-fragment", [(cond("!=", FRAG_OFFSET, 0),)]),
        ("!is-fragment", [(FRAG_MISSING,), (cond("==", FRAG_OFFSET, 0),)]),
        ("first-fragment", [(cond("==", FRAG_MORE, 1), cond("==", FRAG_OFFSET, 0))]),
        ("last-fragment", [(cond("==", FRAG_MORE, 0), cond("!=", FRAG_OFFSET, 0))]),
        (
            "!first-fragment",
            [(FRAG_MISSING,), (cond("!=", FRAG_OFFSET, 0),), (cond("==", FRAG_MORE, 0),)],
        ),
        (
            "[ first-fragment is-fragment ]",
            [(cond("!=", FRAG_OFFSET, 0),), (cond("==", FRAG_MORE, 1),)],
        ),
        (
            "[ is-fragment !is-fragment&!first-fragment ]",
            [(FRAG_MISSING,), (cond("!=", FRAG_OFFSET, 0),), (cond("==", FRAG_MORE, 0),)],
        ),
    ],
)
def test_ipv6_fragment_bits(fragment: str, expected: list[Branch]) -> None:
    """IPv6 fragments are the fragment header's fields; a packet without one is a
    non-fragment, which a negated term must still match (RFC 8956 §3.6)."""
    assert compiled(f"ipv6 fragment {fragment}") == [(V6, *b) for b in expected]


def test_fragment_accepting_everything_is_no_test() -> None:
    """``!0`` holds for every packet: no fragment test at all."""
    assert compiled("ipv6 fragment !0") == one(V6)


def test_rule_is_the_product_of_its_components() -> None:
    """port (2 branches) AND an IPv6 negated fragment (2 branches): 4 nft rules."""
    match = parse_match("destination 2001:db8::1/128 port =80 fragment !is-fragment")
    assert [(k, len(d)) for k, d in components(match)] == [
        ("family", 1),
        ("protocol", 1),
        ("destination", 1),
        ("fragment", 2),
        ("port", 2),
    ]
    assert len(branches(match)) == 4


def test_decoded_not_equal_true_and_false_terms() -> None:
    """From BGP: lt|gt stays !=, ``true`` accepts everything, ``false`` nothing."""
    not_equal = decode_nlri(Family.IPV4, bytes.fromhex("058650"))  # destination-port !=80
    assert branches(not_equal) == one(V4, TCP_UDP, cond("!=", payload("th", "dport"), 80))
    either = decode_nlri(Family.IPV4, bytes.fromhex("0b0707800a"))  # dscp true:7 | false:10
    assert branches(either) == one(V4)
    never = decode_nlri(Family.IPV4, bytes.fromhex("0b8009"))  # dscp false:9
    assert branches(never) == []


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_compiled_match_agrees_with_flowspec(data: st.DataObject) -> None:
    """For random matches (every component, operator and family) and packets aimed at
    them, the nft branches match exactly the packets RFC 8955/8956 say the rule
    matches."""
    match = data.draw(st.from_type(FlowMatch))
    dnf = branches(match)
    for _ in range(30):
        packet = data.draw(packets(match))
        assert dnf_holds(dnf, packet) == flowspec_holds(match, packet)
