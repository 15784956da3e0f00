"""The view of one packet that detectors receive.

The decoder keeps its fields in local variables and fills one reused
:class:`PacketView` only when a detector asks for a packet, so the common case
allocates nothing. A detector must copy what it keeps: the view and its
``src``/``dst`` bytes are only valid during the call.
"""

from __future__ import annotations

import ipaddress
import socket

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class PacketView:
    """Header fields of one IP packet (network byte order already decoded).

    ``ts`` is in nanoseconds since the epoch; ``src``/``dst`` are packed addresses
    (4 or 16 bytes); ``length`` is the IP datagram's length on the wire;
    ``fragment`` is true for a non-first or non-last IP fragment, whose ports
    are 0 because they are not in the packet.
    """

    __slots__ = (
        "ack",
        "dport",
        "dst",
        "fragment",
        "length",
        "proto",
        "seq",
        "sport",
        "src",
        "tcp_flags",
        "ts",
        "ttl",
        "version",
    )

    def __init__(self) -> None:
        self.ts = 0
        self.version = 4
        self.src = b""
        self.dst = b""
        self.proto = 0
        self.sport = 0
        self.dport = 0
        self.ttl = 0
        self.length = 0
        self.tcp_flags = 0
        self.seq = 0
        self.ack = 0
        self.fragment = False

    @property
    def ts_seconds(self) -> float:
        return self.ts / 1e9

    def src_str(self) -> str:
        return addr_to_str(self.src)

    def dst_str(self) -> str:
        return addr_to_str(self.dst)


def addr_to_str(packed: bytes) -> str:
    """The text form of a packed IPv4 or IPv6 address."""
    family = socket.AF_INET if len(packed) == 4 else socket.AF_INET6
    return socket.inet_ntop(family, packed)


def ip_of(packed: bytes) -> IPAddress:
    """The address of a packed IPv4 (4 bytes) or IPv6 (16 bytes) address, as a value
    (a detector keeps this, not the view's bytes)."""
    return ipaddress.IPv4Address(packed) if len(packed) == 4 else ipaddress.IPv6Address(packed)
