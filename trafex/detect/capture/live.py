"""Live capture on a Linux interface: AF_PACKET with a TPACKET_V3 memory-mapped ring.

The kernel fills blocks of the ring with many frames; each block is walked
with ``struct`` like a chunk of a capture file, then given back. An optional
BPF filter is compiled by libpcap (through Scapy's ``compile_filter``; Debian
package ``libpcap0.8``) and attached to the socket, so the kernel drops
unwanted packets before they are copied. Kernel drop counters come from
``PACKET_STATISTICS`` and are summed over the run.
"""

from __future__ import annotations

import ctypes
import mmap
import select
import socket
import struct
from collections.abc import Generator
from pathlib import Path

import structlog

from trafex.detect.capture.frames import Chunk, Frames
from trafex.detect.capture.linktypes import LINKTYPE_ETHERNET, LINKTYPE_RAW
from trafex.detect.errors import LiveCaptureError

log = structlog.get_logger("trafex.detect.live")

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_RX_RING = 5
PACKET_STATISTICS = 6
PACKET_VERSION = 10
TPACKET_V3 = 2
SO_ATTACH_FILTER = 26
TP_STATUS_USER = 1
TP_STATUS_KERNEL = 0

_BLOCK_HDR = struct.Struct("=IIIIIIQ")  # version, offset_to_priv, status, num_pkts, first, len, seq
_PKT_HDR = struct.Struct("=IIIIIIH")  # next_offset, sec, nsec, snaplen, len, status, mac
_STATS_V3 = struct.Struct("=III")

ARPHRD_TO_LINKTYPE = {1: LINKTYPE_ETHERNET, 772: LINKTYPE_ETHERNET, 65534: LINKTYPE_RAW}


def compile_bpf(expression: str, linktype: int) -> bytes:
    """Compile a BPF filter with libpcap; returns the classic BPF program bytes."""
    try:
        from scapy.arch.common import compile_filter
    except ImportError as exc:  # pragma: no cover - scapy is a dependency
        raise LiveCaptureError(f"cannot compile BPF filter: {exc}") from exc
    try:
        program = compile_filter(expression, linktype=linktype)
    except Exception as exc:
        raise LiveCaptureError(f"bad BPF filter {expression!r}: {exc}") from exc
    count = int(program.bf_len)
    size = count * 8
    insns = ctypes.string_at(ctypes.addressof(program.bf_insns.contents), size)
    return struct.pack("H", count) + insns


def attach_bpf(sock: socket.socket, program: bytes) -> None:
    """Attach a classic BPF program (``count`` + 8-byte instructions) to a socket."""
    count = struct.unpack_from("H", program)[0]
    insns = ctypes.create_string_buffer(program[2:], len(program) - 2)
    fprog = struct.pack("HL", count, ctypes.addressof(insns))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)


class LiveInterface:
    """A packet source reading one interface until stopped (see :meth:`chunks`)."""

    def __init__(
        self,
        interface: str,
        bpf: str | None = None,
        block_size: int = 1 << 20,
        blocks: int = 64,
        block_timeout_ms: int = 50,
        max_packets: int | None = None,
        idle_stop_s: float | None = None,
    ) -> None:
        self.interface = interface
        self.bpf = bpf
        self.block_size = block_size
        self.blocks = blocks
        self.block_timeout_ms = block_timeout_ms
        self.max_packets = max_packets
        self.idle_stop_s = idle_stop_s
        self.packets = 0
        self.bad = 0
        self._drops = 0
        self._sock: socket.socket | None = None
        self.linktype = self._linktype()

    def _linktype(self) -> int:
        path = Path("/sys/class/net") / self.interface / "type"
        try:
            arphrd = int(path.read_text().strip())
        except (OSError, ValueError) as exc:
            raise LiveCaptureError(f"no such interface: {self.interface}") from exc
        linktype = ARPHRD_TO_LINKTYPE.get(arphrd)
        if linktype is None:
            raise LiveCaptureError(f"{self.interface}: unsupported link type (ARPHRD {arphrd})")
        return linktype

    def drops(self) -> int | None:
        self._read_stats()
        return self._drops

    def _read_stats(self) -> None:
        sock = self._sock
        if sock is None:
            return
        try:
            raw = sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, _STATS_V3.size)
        except OSError:
            return
        _packets, drops, _freeze = _STATS_V3.unpack_from(raw)
        self._drops += drops  # the kernel resets its counters on each read

    def open(self) -> socket.socket:
        try:
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        except PermissionError as exc:
            raise LiveCaptureError("live capture needs root or CAP_NET_RAW") from exc
        try:
            if self.bpf:
                attach_bpf(sock, compile_bpf(self.bpf, self.linktype))
            sock.setsockopt(SOL_PACKET, PACKET_VERSION, TPACKET_V3)
            frame_size = 1 << 11
            req = struct.pack(
                "=IIIIIII",
                self.block_size,
                self.blocks,
                frame_size,
                self.block_size * self.blocks // frame_size,
                self.block_timeout_ms,
                0,
                0,
            )
            sock.setsockopt(SOL_PACKET, PACKET_RX_RING, req)
            sock.bind((self.interface, ETH_P_ALL))
        except OSError as exc:
            sock.close()
            raise LiveCaptureError(f"{self.interface}: {exc.strerror or exc}") from exc
        self._sock = sock
        self._read_stats()  # start the counters from zero
        self._drops = 0
        return sock

    def chunks(self) -> Generator[Chunk, None, None]:
        """One chunk per block of the ring, as the kernel hands them over; an empty one
        when none came for a while (so that the sensor can tick and stop)."""
        sock = self._sock or self.open()
        size = self.block_size * self.blocks
        ring = mmap.mmap(sock.fileno(), size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        poller = select.poll()
        poller.register(sock.fileno(), select.POLLIN | select.POLLERR)
        block = 0
        ts = 0
        idle_ms = 0.0
        self.packets = 0
        try:
            while True:
                boff = block * self.block_size
                frames = self._block(ring, boff)
                if frames is None:
                    yield Chunk((), ts)
                    if not poller.poll(100):
                        idle_ms += 100
                        if self.idle_stop_s is not None and idle_ms >= self.idle_stop_s * 1000:
                            return
                    continue
                idle_ms = 0.0
                struct.pack_into("=I", ring, boff + 8, TP_STATUS_KERNEL)  # copied: give back
                block = (block + 1) % self.blocks
                if len(frames):
                    self.packets += len(frames)
                    ts = frames.lists()[3][-1]
                yield Chunk((frames,), ts)
                if self.max_packets is not None and self.packets >= self.max_packets:
                    return
        finally:
            self._read_stats()
            poller.unregister(sock.fileno())
            ring.close()
            sock.close()
            self._sock = None
            log.info(
                "live.stopped",
                interface=self.interface,
                packets=self.packets,
                kernel_drops=self._drops,
            )

    def _block(self, ring: mmap.mmap, boff: int) -> Frames | None:
        """The frames of the ring's block at ``boff`` (a copy), or None when the kernel
        has not handed it over yet: a contiguous run of frames, each behind a
        ``tpacket3_hdr``."""
        _v, _p, status, num, first, blen, _seq = _BLOCK_HDR.unpack_from(ring, boff)
        if not status & TP_STATUS_USER:
            return None
        buf = ring[boff : boff + max(blen, first)]
        unpack = _PKT_HDR.unpack_from
        offsets: list[int] = []
        caplens: list[int] = []
        wirelens: list[int] = []
        times: list[int] = []
        off = first
        for _ in range(num):
            nxt, sec, nsec, snaplen, wirelen, _st, mac = unpack(buf, off)
            offsets.append(off + mac)
            caplens.append(snaplen)
            wirelens.append(wirelen)
            times.append(sec * 1_000_000_000 + nsec)
            off += nxt
        return Frames(buf, self.linktype, lists=(offsets, caplens, wirelens, times))
