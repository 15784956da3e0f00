"""The flow table's record layout, published for every reader of the slab.

Each direction of a TCP conversation is one fixed 48-byte record, packed
little-endian without padding (``RECORD``); a conversation's two directions are
records ``2n`` and ``2n + 1`` of one ``bytearray`` slab
(:attr:`~trafex.detect.flows.table.TcpFlowTable.slab`). ``FIELDS`` names every
field with its offset and ``struct`` code, in record order, so that another
reader (the numpy batches of :mod:`trafex.detect.decode.prefix`) can build its
view of the slab from this module alone.

The fields an in-order segment reads come first and the ones it writes next to
them, so that the flow table's fast path reads 17 bytes and writes one run of
bytes; ``base``, ``retrans`` and ``aux``, rarely touched, come last.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

M32 = 0xFFFFFFFF
"""Sequence numbers are modulo 2**32."""
HALF = 0x80000000
"""``(a - b) & M32 < HALF``: ``a`` is at or after ``b`` in sequence space."""


class Field(NamedTuple):
    """One field of a record: its name, byte offset and ``struct`` code (no byte order)."""

    name: str
    offset: int
    code: str


FIELDS: tuple[Field, ...] = (
    Field("nextseq", 0, "I"),  # the direction's next expected sequence number
    Field("lastack", 4, "I"),  # its last ACK number
    Field("maxack", 8, "I"),  # its highest sequence number to be acked (maxseqtobeacked)
    Field("dupacks", 12, "H"),  # duplicate ACKs in a row
    Field("window", 14, "H"),  # its last window (unscaled)
    Field("flags", 16, "B"),  # F_* below
    Field("flags2", 17, "B"),  # F2_* below
    Field("ack_t", 18, "q"),  # time of its last packet (Wireshark's lastacktime), ns
    Field("seq_t", 26, "q"),  # time nextseq last advanced, ns
    Field("base", 34, "I"),  # base sequence number (the ISN)
    Field("retrans", 38, "H"),  # retransmissions counted (saturates at 65535)
    Field("aux", 40, "q"),  # record 2n: the conversation's first RTT; 2n+1: latest SYN time
)

RECORD = struct.Struct("<" + "".join(f.code for f in FIELDS))
RECORD_SIZE = RECORD.size
assert RECORD_SIZE == 48  # tests/unit/detect/test_flowtable.py checks every offset

OFF_LASTACK = 4
OFF_MAXACK = 8
OFF_DUPACK_WIN_FLAGS = 12
OFF_FLAGS = 16
OFF_FLAGS2 = 17
OFF_ACK_T = 18
OFF_BASE = 34
OFF_RETRANS = 38
OFF_AUX = 40

# flags
F_BASE = 0x01  # base_seq known
F_KEEPALIVE = 0x02  # last segment in this direction was a keep-alive
F_ZWP = 0x04  # last segment in this direction was a zero-window probe
F_RTT_PENDING = 0x08  # a SYN was seen and the first RTT is not known yet
F_FIN = 0x10
F_RST = 0x20
F_REVBASE = 0x40  # this direction already gave the reverse its base_seq
F_WIN_SEEN = 0x80  # a window was seen (Wireshark starts a direction's window at 2**32-1)
# flags2
F2_ACKED_UNSEEN = 0x01  # this direction's data was acked unseen

SETTLED_MASK = F_BASE | F_REVBASE | F_RTT_PENDING
SETTLED = F_BASE | F_REVBASE
"""``flags & SETTLED_MASK == SETTLED``: a direction whose base sequence is known, that
gave the reverse its base, and whose conversation's first RTT is known; what the
fast path of :meth:`~trafex.detect.flows.table.TcpFlowTable.segment` requires."""
