"""DNS responses built with Scapy (and by hand where Scapy would fix the bytes)."""

from __future__ import annotations

import struct
from typing import Any

from scapy.layers.dns import DNS, DNSQR, DNSRR
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether

RESOLVER4, CLIENT4 = "192.0.2.53", "10.0.0.7"
RESOLVER6, CLIENT6 = "3001:10:66::53", "3001:1:a::10"


def eth() -> Any:
    """An Ethernet header with fixed addresses (no ARP lookups when building)."""
    return Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")


def response(
    qname: str, answers: list[tuple[str, str, str]], qtype: str = "A", ident: int = 1
) -> Any:
    rrs = [DNSRR(rrname=owner, type=rtype, ttl=60, rdata=value) for owner, rtype, value in answers]
    return DNS(id=ident, qr=1, rd=1, ra=1, qd=DNSQR(qname=qname, qtype=qtype), an=rrs)


def udp(msg: Any, v6: bool = False, sport: int = 53, dport: int = 33333) -> Any:
    ip = IPv6(src=RESOLVER6, dst=CLIENT6) if v6 else IP(src=RESOLVER4, dst=CLIENT4)
    return eth() / ip / UDP(sport=sport, dport=dport) / msg


def raw_udp(payload: bytes, v6: bool = False) -> Any:
    ip = IPv6(src=RESOLVER6, dst=CLIENT6) if v6 else IP(src=RESOLVER4, dst=CLIENT4)
    return eth() / ip / UDP(sport=53, dport=33334) / payload


def tcp_stream(
    messages: list[bytes],
    v6: bool = False,
    split: int | None = None,
    sport: int = 53,
    dport: int = 40053,
) -> list[Any]:
    """A server->client DNS-over-TCP stream: handshake, length-prefixed messages."""
    ip_s = IPv6(src=RESOLVER6, dst=CLIENT6) if v6 else IP(src=RESOLVER4, dst=CLIENT4)
    ip_c = IPv6(src=CLIENT6, dst=RESOLVER6) if v6 else IP(src=CLIENT4, dst=RESOLVER4)
    sseq, cseq = 7000, 3000
    out = [
        eth() / ip_c / TCP(sport=dport, dport=sport, flags="S", seq=cseq - 1),
        eth() / ip_s / TCP(sport=sport, dport=dport, flags="SA", seq=sseq - 1, ack=cseq),
        eth() / ip_c / TCP(sport=dport, dport=sport, flags="A", seq=cseq, ack=sseq),
    ]
    data = b"".join(struct.pack("!H", len(m)) + m for m in messages)
    chunks = [data] if split is None else [data[:split], data[split:]]
    for chunk in chunks:
        out.append(
            eth() / ip_s / TCP(sport=sport, dport=dport, flags="PA", seq=sseq, ack=cseq) / chunk
        )
        sseq += len(chunk)
    return out


def compressed_chain() -> bytes:
    """qname a.bad.test, CNAME -> b.bad.test (pointer into the question), A for it."""
    header = struct.pack("!HHHHHH", 9, 0x8180, 1, 2, 0, 0)
    qname = b"\x01a\x03bad\x04test\x00"
    question = qname + struct.pack("!HH", 1, 1)
    # answer 1: owner = pointer to offset 12 (qname), CNAME rdata = "b" + pointer to "bad.test"
    rdata = b"\x01b\xc0\x0e"
    ans1 = b"\xc0\x0c" + struct.pack("!HHIH", 5, 1, 60, len(rdata)) + rdata
    owner2_off = 12 + len(question) + 12  # the CNAME's rdata inside answer 1
    ans2 = struct.pack("!H", 0xC000 | owner2_off) + struct.pack("!HHIH", 1, 1, 60, 4)
    ans2 += bytes([203, 0, 113, 9])
    return header + question + ans1 + ans2
