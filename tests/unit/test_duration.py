"""Unit tests for trafex.model.duration: the one parser of TTLs and intervals."""

from __future__ import annotations

import pytest

from trafex.model.duration import parse_duration
from trafex.model.errors import ValidationError


@pytest.mark.parametrize(
    ("value", "seconds"),
    [(90, 90.0), (1.5, 1.5), (0, 0.0), ("90", 90.0), ("90s", 90.0), ("10m", 600.0),
     ("2h", 7200.0), ("1d", 86400.0), ("1w", 604800.0), ("1.5h", 5400.0), (" 5M ", 300.0),
     ("10 m", 600.0), ("0", 0.0)],
)  # fmt: skip
def test_parse_duration(value: object, seconds: float) -> None:
    """Seconds as a number, or text: a number with an optional unit s, m, h, d or w
    (what trafex-ctl's --ttl and the trigger's config both accept)."""
    assert seconds == parse_duration(value)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "'' is not a duration (90, '90s', '10m', '2h', '1d')"),
        ("1h30m", "'1h30m' is not a duration (90, '90s', '10m', '2h', '1d')"),
        ("1e3", "'1e3' is not a duration (90, '90s', '10m', '2h', '1d')"),
        ("-5m", "'-5m' is not a duration (90, '90s', '10m', '2h', '1d')"),
        (-1, "must be a duration >= 0, got -1"),
        (float("inf"), "must be a duration >= 0, got inf"),
        (float("nan"), "must be a duration >= 0, got nan"),
        (True, "expected seconds or a duration like '10m', got True"),
        (None, "expected seconds or a duration like '10m', got None"),
        ([5], "expected seconds or a duration like '10m', got [5]"),
    ],
)
def test_parse_duration_junk(value: object, message: str) -> None:
    """Anything else is a ValidationError (a ValueError) saying what is wrong."""
    with pytest.raises(ValidationError) as info:
        parse_duration(value)
    assert message == str(info.value)
