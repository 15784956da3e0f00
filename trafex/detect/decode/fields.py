"""Every header field the fast path reads, for every frame of a batch at once (numpy).

:class:`FrameFields` gathers, for each Ethernet frame of a run (its offset in the
buffer known), the fields :meth:`~trafex.detect.decode.links.Decoder.ether`
reads, as int64 columns, and says which frames are *eligible*: the ones the
fast path would take (IPv4 without options or IPv6 without extension headers,
TCP, not a fragment), also past one or two VLAN tags (a mirror port's capture).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

from trafex.detect.capture.frames import I64
from trafex.detect.decode.network import ETH_IPV4, ETH_IPV6, VLAN_TYPES
from trafex.model.protocols import PROTO_TCP

Mask = npt.NDArray[np.bool_]

# Offsets in an Ethernet frame (past its VLAN tags, if any).
ET = 12  # Ethernet type
IP = 14  # IP header
TCP4 = 34  # TCP header after IPv4 without options
TCP6 = 54  # TCP header after IPv6 without extension headers
ADDR4 = 26  # IPv4 source and destination addresses, then the TCP ports: the flow key
ADDR6 = 22
KEY4 = 12  # bytes of a flow key
KEY6 = 36
WIDTH = 70  # bytes read from every frame: up to the end of an IPv6 TCP header's window

_IS_VLAN = np.zeros(1 << 16, dtype=bool)  # indexed by an Ethernet type: one gather
_IS_VLAN[sorted(VLAN_TYPES)] = True


def be(m: npt.NDArray[np.uint8], start: int, width: int) -> I64:
    """The big-endian unsigned field of ``width`` bytes at column ``start`` of rows ``m``."""
    x = m[:, start].astype(np.int64)
    for k in range(1, width):
        x = (x << 8) | m[:, start + k]
    return x


class FrameFields:
    """The fast path's fields of a run of Ethernet frames (int64 columns, one row per
    frame); ``part()`` takes rows without copying."""

    _PER_FRAME = (
        "frame",
        "base",
        "m",
        "caplen",
        "wirelen",
        "ts",
        "et",
        "v6",
        "ttl",
        "tot",
        "sport",
        "dport",
        "seq",
        "ack",
        "hlen",
        "flags",
        "win",
        "seglen",
        "bad",
        "eligible",
    )

    def __init__(self, buf: bytes, frame: I64, caplen: I64, wirelen: I64, ts: I64) -> None:
        self.frame = frame
        self.caplen = caplen
        self.wirelen = wirelen
        self.ts = ts
        raw = np.frombuffer(buf, dtype=np.uint8)
        if int(frame.max()) + WIDTH + 8 > len(raw):  # short last frames: read zeros past the end
            raw = np.concatenate((raw, np.zeros(WIDTH + 8, dtype=np.uint8)))
        self._raw = raw
        # The Ethernet type and up to two VLAN tags' types.
        pre = sliding_window_view(raw, ET + 10)[frame]
        et0, et1, et2 = be(pre, ET, 2), be(pre, ET + 4, 2), be(pre, ET + 8, 2)
        tag1 = _IS_VLAN[et0]
        tag2 = tag1 & _IS_VLAN[et1]
        # Past the tags: the frame as if untagged, ``shift`` bytes further on.
        self.et = et = np.where(tag2, et2, np.where(tag1, et1, et0))
        shift = (tag1.astype(np.int64) + tag2) << 2
        self.base = base = frame + shift
        # One row of WIDTH bytes per frame from there (a copy: one gather).
        self.m = m = sliding_window_view(raw, WIDTH)[base]
        self.v6 = v6 = et == ETH_IPV6
        # IPv4 fields (read for every frame, used where the frame is IPv4).
        tot4 = be(m, IP + 2, 2)
        eligible4 = (
            (et == ETH_IPV4)
            & (caplen >= 54 + shift)
            & (m[:, IP] == 0x45)
            & (m[:, IP + 9] == PROTO_TCP)
            & ((be(m, IP + 6, 2) & 0x3FFF) == 0)
            & (tot4 >= 40)
        )
        # IPv6.
        plen = be(m, IP + 4, 2)
        eligible6 = (
            v6
            & (caplen >= 74 + shift)
            & (m[:, IP + 6] == PROTO_TCP)
            & (m[:, IP] >> 4 == 6)
            & (plen > 0)
        )
        self.ttl = np.where(v6, m[:, IP + 7], m[:, IP + 8]).astype(np.int64)
        self.tot = tot = np.minimum(np.where(v6, 40 + plen, tot4), wirelen - 14 - shift)
        # TCP, 20 bytes further on in IPv6.
        t = sliding_window_view(raw, 16)[base + np.where(v6, TCP6, TCP4)]
        self.sport = be(t, 0, 2)
        self.dport = be(t, 2, 2)
        self.seq = be(t, 4, 4)
        self.ack = be(t, 8, 4)
        self.hlen = (t[:, 12].astype(np.int64) >> 2) & 0x3C
        self.flags = t[:, 13].astype(np.int64)
        self.win = be(t, 14, 2)
        self.seglen = tot - np.where(v6, 40, 20) - self.hlen
        eligible = eligible4 | eligible6
        self.bad: Mask = eligible & ((self.hlen < 20) | (self.seglen < 0))
        self.eligible: Mask = eligible & ~self.bad

    def __len__(self) -> int:
        return len(self.frame)

    def part(self, lo: int, hi: int) -> FrameFields:
        """Rows ``lo`` to ``hi`` (views, no copy)."""
        if lo == 0 and hi == len(self.frame):
            return self
        part = object.__new__(FrameFields)
        part._raw = self._raw
        for name in self._PER_FRAME:
            setattr(part, name, getattr(self, name)[lo:hi])
        return part

    def keys(self, which: I64, at: int, width: int) -> list[bytes]:
        """The ``width`` bytes at ``at`` past the tags of frames ``which``, as bytes."""
        rows = sliding_window_view(self._raw, width)[self.base[which] + at]
        keys: list[bytes] = rows.view(f"V{width}").ravel().tolist()
        return keys

    def be16(self, at: I64) -> I64:
        """Big-endian 16-bit values at buffer offsets ``at``."""
        raw = self._raw
        at = np.minimum(at, len(raw) - 2)
        return (raw[at].astype(np.int64) << 8) | raw[at + 1]
