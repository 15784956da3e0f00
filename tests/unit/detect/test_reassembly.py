"""IP fragment reassembly: complete datagrams once, in any order, bounded."""

from __future__ import annotations

from trafex.detect.decode.reassembly import FragmentCache


def test_out_of_order_fragments_complete_once() -> None:
    """Fragments in any order give the payload once, when the last hole is filled."""
    cache = FragmentCache()
    assert cache.add(b"k", 16, False, b"C" * 4, 1) is None
    assert cache.add(b"k", 0, True, b"A" * 8, 2) is None
    assert cache.add(b"k", 8, True, b"B" * 8, 3) == b"A" * 8 + b"B" * 8 + b"C" * 4
    assert len(cache) == 0


def test_pending_datagrams_are_bounded() -> None:
    """At most max_datagrams wait; the oldest are dropped first."""
    cache = FragmentCache(max_datagrams=10)
    for i in range(100):
        cache.add(i.to_bytes(4, "big"), 0, True, b"x", i)
    assert len(cache) == 10
    assert cache.dropped == 90


def test_stale_datagram_restarts() -> None:
    """A datagram older than the timeout is dropped when a new fragment arrives."""
    cache = FragmentCache(timeout_ns=10)
    cache.add(b"k", 0, True, b"A" * 8, 0)
    assert cache.add(b"k", 8, False, b"B", 100) is None
    assert cache.dropped == 1
