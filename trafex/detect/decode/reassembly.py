"""IP fragment reassembly, bounded: tshark reassembles, so detections must too.

Fragments are kept per datagram (source, destination, identification,
protocol) until the datagram is complete, then the transport payload is
returned once. At most ``max_datagrams`` are pending (the oldest is dropped
first) and a datagram older than ``timeout_ns`` is dropped; overlapping
fragments keep the first copy of each byte.
"""

from __future__ import annotations

MAX_DATAGRAM = 65535 + 40


class _Pending:
    __slots__ = ("first_ts", "parts", "total")

    def __init__(self, ts: int) -> None:
        self.first_ts = ts
        self.parts: list[tuple[int, bytes]] = []
        self.total = -1


class FragmentCache:
    def __init__(self, max_datagrams: int = 1024, timeout_ns: int = 30_000_000_000) -> None:
        self.max_datagrams = max_datagrams
        self.timeout_ns = timeout_ns
        self._pending: dict[bytes, _Pending] = {}
        self.reassembled = 0
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._pending)

    def add(self, key: bytes, offset: int, more: bool, data: bytes, ts: int) -> bytes | None:
        """Add one fragment; returns the whole payload when this one completes it."""
        pending = self._pending
        entry = pending.get(key)
        if entry is None or ts - entry.first_ts > self.timeout_ns:
            if entry is not None:
                self.dropped += 1
            while len(pending) >= self.max_datagrams:
                del pending[next(iter(pending))]
                self.dropped += 1
            entry = pending[key] = _Pending(ts)
        if offset + len(data) > MAX_DATAGRAM:
            del pending[key]
            self.dropped += 1
            return None
        entry.parts.append((offset, data))
        if not more:
            entry.total = offset + len(data)
        if entry.total < 0:
            return None
        covered = 0
        for off, part in sorted(entry.parts, key=lambda p: p[0]):
            if off > covered:
                return None
            covered = max(covered, off + len(part))
        if covered < entry.total:
            return None
        del pending[key]
        out = bytearray(entry.total)
        for off, part in reversed(entry.parts):  # earlier copies win: written last
            out[off : off + len(part)] = part
        self.reassembled += 1
        return bytes(out[: entry.total])
