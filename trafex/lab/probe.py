"""Wait for the first IPv6 packet from SRC to DST on an interface; print its kernel time.

The demos' stopwatch: started in a router's namespace before the trigger, it prints
``ready`` once its socket listens, then one JSON line ``{"ts": …}`` (the kernel's receive
timestamp, seconds since the epoch, the clock the sensor's packet times use) for the
first matching packet, and exits 0; 1 when none came in ``--timeout`` seconds.
``python -m trafex.lab.probe --interface eth2 --src 3001:1:a::10 --dst 3001:4:b::10``
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import select
import socket
import struct
import sys
import time

ETH_P_ALL = 0x0003
ETHERTYPE_IPV6 = 0x86DD
SO_TIMESTAMPNS = 35
_TIMESPEC = struct.Struct("qq")


def matches(frame: bytes, src: bytes, dst: bytes) -> bool:
    """An Ethernet frame carrying IPv6 from ``src`` to ``dst`` (packed addresses)."""
    if len(frame) < 54 or int.from_bytes(frame[12:14], "big") != ETHERTYPE_IPV6:
        return False
    return frame[22:38] == src and frame[38:54] == dst


def first_packet(interface: str, src: str, dst: str, timeout: float) -> float | None:
    want_src = ipaddress.IPv6Address(src).packed
    want_dst = ipaddress.IPv6Address(dst).packed
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL)) as sock:
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        sock.bind((interface, 0))
        print("ready", flush=True)
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            if not select.select([sock], [], [], left)[0]:
                break
            frame, ancillary, _flags, _address = sock.recvmsg(128, 64)
            if not matches(frame, want_src, want_dst):
                continue
            for level, kind, data in ancillary:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                    seconds, nanos = _TIMESPEC.unpack(data[: _TIMESPEC.size])
                    return float(seconds + nanos / 1e9)
            return time.time()
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trafex.lab.probe", description=__doc__)
    parser.add_argument("--interface", required=True)
    parser.add_argument("--src", required=True)
    parser.add_argument("--dst", required=True)
    parser.add_argument("--timeout", type=float, default=10.0)
    args = parser.parse_args(argv)
    ts = first_packet(args.interface, args.src, args.dst, args.timeout)
    if ts is None:
        return 1
    print(json.dumps({"ts": ts}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
