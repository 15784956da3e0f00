"""IP protocol numbers and TCP flags: the one table of their numbers and names.

Everything in trafex that names a protocol or a TCP flag reads it here: the FlowSpec
grammar (``protocol =tcp``, ``tcp-flags =SA``), the model's consistency checks, the
enforcer's nftables expressions, the sensor's detections and the trigger's rules.
Numbers are IANA's ("Assigned Internet Protocol Numbers"); TCP flag bits are those
of the TCP header's flags octet (RFC 9293, RFC 3168 for ECE and CWR).
"""

from __future__ import annotations

PROTO_ICMP = 1
PROTO_TCP = 6
PROTO_UDP = 17
PROTO_ICMPV6 = 58

#: Protocol names as trafex reads them (the grammar, configs, detections) → number.
#: Where several names share a number, the first is the one trafex writes.
PROTOCOLS: dict[str, int] = {
    "icmp": PROTO_ICMP,
    "igmp": 2,
    "tcp": PROTO_TCP,
    "udp": PROTO_UDP,
    "gre": 47,
    "esp": 50,
    "ah": 51,
    "icmpv6": PROTO_ICMPV6,
    "ipv6-icmp": PROTO_ICMPV6,
    "ospf": 89,
    "pim": 103,
    "vrrp": 112,
    "sctp": 132,
}
#: Number → the name trafex writes for it.
PROTOCOL_NAMES: dict[int, str] = {v: k for k, v in reversed(PROTOCOLS.items())}


def protocol_name(number: int) -> str:
    """``tcp`` for 6; the number as text for a protocol without a name here."""
    return PROTOCOL_NAMES.get(number, str(number))


def protocol_number(value: object) -> int | None:
    """The number of a protocol given by name (``tcp``), number (6) or number as text
    (``"6"``); None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 0 <= value <= 0xFF else None
    if not isinstance(value, str):
        return None
    text = value.strip().lower()
    if text in PROTOCOLS:
        return PROTOCOLS[text]
    return int(text) if text.isdigit() and int(text) <= 0xFF else None


def icmp_protocol(version: int) -> int:
    """ICMP's protocol number for IP ``version`` 4 or 6 (ICMPv6 in IPv6)."""
    return PROTO_ICMP if version == 4 else PROTO_ICMPV6


#: ICMP type names by IP version (ICMPv6 for 6) → type.
ICMP_TYPES: dict[int, dict[str, int]] = {
    4: {
        "echo-reply": 0,
        "unreachable": 3,
        "echo-request": 8,
        "router-advertisement": 9,
        "router-solicitation": 10,
        "time-exceeded": 11,
        "parameter-problem": 12,
    },
    6: {
        "unreachable": 1,
        "packet-too-big": 2,
        "time-exceeded": 3,
        "parameter-problem": 4,
        "echo-request": 128,
        "echo-reply": 129,
        "router-solicitation": 133,
        "router-advertisement": 134,
        "neighbor-solicitation": 135,
        "neighbor-advertisement": 136,
    },
}


TCP_FIN = 0x01
TCP_SYN = 0x02
TCP_RST = 0x04
TCP_PSH = 0x08
TCP_ACK = 0x10
TCP_URG = 0x20
TCP_ECE = 0x40
TCP_CWR = 0x80

#: One letter per flag, bit 0 (FIN) to bit 7 (CWR), as GoBGP writes them (``=SA``).
TCP_FLAG_LETTERS = "FSRPAUEC"
#: Flag names as the grammar reads them (``syn+ack``) → bit.
TCP_FLAG_NAMES: dict[str, int] = {
    "fin": TCP_FIN,
    "syn": TCP_SYN,
    "rst": TCP_RST,
    "reset": TCP_RST,
    "push": TCP_PSH,
    "psh": TCP_PSH,
    "ack": TCP_ACK,
    "urgent": TCP_URG,
    "urg": TCP_URG,
    "ece": TCP_ECE,
    "cwr": TCP_CWR,
}


def tcp_flags_text(value: int) -> str:
    """The flags of ``value`` (one octet) as letters: ``SA`` for SYN+ACK."""
    return "".join(c for i, c in enumerate(TCP_FLAG_LETTERS) if value & (1 << i))


def tcp_flags_value(letters: str) -> int | None:
    """The octet of flag ``letters`` (``SA`` → 0x12); None when one is not a flag letter."""
    if not letters or any(c not in TCP_FLAG_LETTERS for c in letters):
        return None
    value = 0
    for char in letters:
        value |= 1 << TCP_FLAG_LETTERS.index(char)
    return value
