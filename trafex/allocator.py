"""The C allocator tuned for a long-running daemon (glibc only; elsewhere nothing).

glibc serves a block of at least M_MMAP_THRESHOLD bytes with its own mmap, returned to
the system when freed. The threshold starts at 128 KiB but rises to the size of every
such block freed (up to 32 MiB), so after trafexd's first reconcile its multi-MiB
tables (a snapshot of 100,000 intents) come from the heap instead, where what is
allocated around them keeps the freed space from going back: measured with
``make bench BENCH_ARGS=reconcile``, +8 to +13 MiB of RSS over 10 reconciles of
100,000 rules, and none with the threshold fixed. Setting the threshold fixes it
(mallopt(3): an explicit value turns the adjustment off).
"""

from __future__ import annotations

import ctypes
import os

import structlog

log = structlog.get_logger("trafex.allocator")

M_MMAP_THRESHOLD = -3  # mallopt(3)'s parameter number, from glibc's malloc.h
MMAP_THRESHOLD = 128 * 1024  # glibc's own starting value, kept
ENVIRONMENT = "MALLOC_MMAP_THRESHOLD_"  # glibc's variable: the operator's choice wins


def fix_mmap_threshold(size: int = MMAP_THRESHOLD) -> bool:
    """Fix glibc's mmap threshold at ``size`` bytes; False where there is no glibc
    mallopt, or where the environment already sets the threshold."""
    if ENVIRONMENT in os.environ:
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    applied = bool(mallopt(M_MMAP_THRESHOLD, size))
    if not applied:
        log.debug("allocator.not_tuned", parameter="M_MMAP_THRESHOLD", size=size)
    return applied
