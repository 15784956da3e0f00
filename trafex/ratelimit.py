"""The token bucket's one rule, shared by trafexd's per-origin rate guard
(:mod:`trafex.control.caps`) and the sensor's intent limit (:mod:`trafex.trigger.policy`)."""

from __future__ import annotations


def refilled(tokens: float, since: float, now: float, rate: float, capacity: float) -> float:
    """The tokens of a bucket that held ``tokens`` at ``since``, at ``now``: refilled at
    ``rate`` per second up to ``capacity`` (a clock that runs back refills nothing)."""
    return min(capacity, tokens + max(0.0, now - since) * rate)
