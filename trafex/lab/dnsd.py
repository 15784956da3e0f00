"""The lab's DNS resolver: answers A/AAAA queries for its zone over UDP, NXDOMAIN else.

Just enough DNS (RFC 1035) for host1 to resolve ``badhacks.com.`` through the routers,
so that the answer crosses router1 where the sensor watches. Run inside the resolver's
namespace: ``python -m trafex.lab.dnsd --listen 3001:10:53::53 badhacks.com.=3001:10:66::5``.
"""

from __future__ import annotations

import argparse
import ipaddress
import socket
import struct
import sys

TYPE_A = 1
TYPE_AAAA = 28
CLASS_IN = 1
RCODE_NXDOMAIN = 3
FLAG_QR_AA = 0x8400
FLAG_RD = 0x0100
TTL = 60

Zone = dict[str, ipaddress.IPv4Address | ipaddress.IPv6Address]


def _question(query: bytes) -> tuple[str, int, int, int]:
    """The first question's name, type, class, and the offset after it."""
    labels = []
    pos = 12
    while True:
        length = query[pos]
        if length == 0:
            pos += 1
            break
        if length & 0xC0:
            raise ValueError("compressed name in a question")
        labels.append(query[pos + 1 : pos + 1 + length].decode("ascii").lower())
        pos += 1 + length
    qtype, qclass = struct.unpack_from("!HH", query, pos)
    return ".".join(labels) + ".", qtype, qclass, pos + 4


def answer(query: bytes, zone: Zone) -> bytes | None:
    """The response to ``query`` (None: not a query we answer)."""
    if len(query) < 17:
        return None
    ident, flags, qdcount = struct.unpack_from("!HHH", query)
    if flags & 0x8000 or qdcount != 1:
        return None
    try:
        name, qtype, qclass, end = _question(query)
    except (ValueError, IndexError, struct.error, UnicodeDecodeError):
        return None
    address = zone.get(name)
    records = []
    if address is not None and qclass == CLASS_IN:
        wanted = TYPE_AAAA if address.version == 6 else TYPE_A
        if qtype == wanted:
            rdata = address.packed
            records.append(struct.pack("!HHHIH", 0xC00C, qtype, CLASS_IN, TTL, len(rdata)) + rdata)
    rcode = RCODE_NXDOMAIN if address is None else 0
    header = struct.pack(
        "!HHHHHH", ident, FLAG_QR_AA | (flags & FLAG_RD) | rcode, 1, len(records), 0, 0
    )
    return header + query[12:end] + b"".join(records)


def serve(listen: str, port: int, zone: Zone) -> None:
    family = socket.AF_INET6 if ":" in listen else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.bind((listen, port))
        while True:
            query, peer = sock.recvfrom(4096)
            response = answer(query, zone)
            if response is not None:
                sock.sendto(response, peer)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m trafex.lab.dnsd", description="The lab's DNS resolver."
    )
    parser.add_argument("--listen", required=True, help="address to answer on")
    parser.add_argument("--port", type=int, default=53)
    parser.add_argument("records", nargs="+", metavar="NAME=ADDRESS")
    args = parser.parse_args(argv)
    zone: Zone = {}
    for record in args.records:
        name, _, address = record.partition("=")
        zone[name.lower().rstrip(".") + "."] = ipaddress.ip_address(address)
    serve(args.listen, args.port, zone)
    return 0


if __name__ == "__main__":
    sys.exit(main())
