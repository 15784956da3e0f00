"""Durations as people write them (``90``, ``"90s"``, ``"10m"``, ``"2h"``, ``"1d"``,
``"1w"``): the one parser for TTLs, hold-downs and intervals, in configs and on the
command line."""

from __future__ import annotations

import math
import re

from trafex.model.errors import ValidationError

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw]?)$")
UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
EXAMPLES = "90, '90s', '10m', '2h', '1d'"


def parse_duration(value: object) -> float:
    """Seconds (>= 0) from a number, or from text: a number with an optional unit
    ``s m h d w`` (``1.5h``, ``" 5M "``). Anything else, a negative or an infinite
    number, is a :class:`ValidationError` (a ValueError)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValidationError(f"expected seconds or a duration like '10m', got {value!r}")
    if isinstance(value, str):
        match = _DURATION.match(value.strip().lower())
        if not match:
            raise ValidationError(f"{value!r} is not a duration ({EXAMPLES})")
        seconds = float(match.group(1)) * UNITS[match.group(2)]
    else:
        seconds = float(value)
    if not math.isfinite(seconds) or seconds < 0:
        raise ValidationError(f"must be a duration >= 0, got {value!r}")
    return seconds
