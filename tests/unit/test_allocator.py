"""Unit tests for trafex.allocator: glibc's mmap threshold fixed, unless the operator
set it."""

from __future__ import annotations

import ctypes

import pytest

from trafex import allocator


def _has_glibc_mallopt() -> bool:
    try:
        return hasattr(ctypes.CDLL(None), "mallopt")
    except OSError:
        return False


@pytest.mark.skipif(not _has_glibc_mallopt(), reason="no glibc mallopt in this process")
def test_the_threshold_is_fixed(monkeypatch: pytest.MonkeyPatch) -> None:
    """On glibc the call takes (mallopt answers 1)."""
    monkeypatch.delenv(allocator.ENVIRONMENT, raising=False)
    assert allocator.fix_mmap_threshold()


def test_the_operators_setting_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    """MALLOC_MMAP_THRESHOLD_ in the environment (read by glibc at start): left alone."""
    monkeypatch.setenv(allocator.ENVIRONMENT, "262144")
    assert not allocator.fix_mmap_threshold()


def test_no_mallopt_is_no_tuning(monkeypatch: pytest.MonkeyPatch) -> None:
    """A C library without mallopt (musl's may lack it): nothing done, no error."""

    class NoMallopt:
        def __init__(self, name: object) -> None:
            pass

    monkeypatch.delenv(allocator.ENVIRONMENT, raising=False)
    monkeypatch.setattr(ctypes, "CDLL", NoMallopt)
    assert not allocator.fix_mmap_threshold()
