"""How trafex's daemons learn that they should stop: SIGTERM or SIGINT set an event."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable

import structlog


def stop_event(program: str, also: Callable[[], None] | None = None) -> threading.Event:
    """An event that SIGTERM and SIGINT set (logged as ``PROGRAM.signal``); ``also`` runs
    in the handler too (to wake a loop that waits on something else)."""
    done = threading.Event()
    log = structlog.get_logger(f"trafex.{program}")

    def handler(signum: int, frame: object) -> None:
        log.info(f"{program}.signal", signal=signal.Signals(signum).name)
        done.set()
        if also is not None:
            also()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return done
