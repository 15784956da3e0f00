"""PacketView and address formatting."""

from __future__ import annotations

import ipaddress

from trafex.detect.packet import PacketView, addr_to_str


def test_addresses_print_like_tshark() -> None:
    """Packed addresses print as tshark does (mixed notation for IPv4-mapped IPv6)."""
    for text in ("192.0.2.1", "3001:10:66::5", "::ffff:10.0.0.1"):
        packed = ipaddress.ip_address(text).packed
        assert addr_to_str(packed) == text
        assert ipaddress.ip_address(addr_to_str(packed)).packed == packed


def test_view_helpers() -> None:
    """The view gives seconds and text addresses."""
    pkt = PacketView()
    pkt.ts = 2_500_000_000
    pkt.src = bytes([10, 0, 0, 1])
    pkt.dst = ipaddress.ip_address("3001:1:a::10").packed
    assert pkt.ts_seconds == 2.5
    assert (pkt.src_str(), pkt.dst_str()) == ("10.0.0.1", "3001:1:a::10")
