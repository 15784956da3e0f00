"""Strict config helpers: wrong types and unknown keys name the key."""

from __future__ import annotations

import pytest

from trafex.detect.confkeys import check_keys, get_bool, get_float, get_int, get_str_list
from trafex.detect.errors import ConfigError


@pytest.mark.parametrize(
    ("call", "key"),
    [
        (lambda: get_int({"n": True}, "n", "t", 1), "t.n"),
        (lambda: get_int({"n": 5}, "n", "t", 1, maximum=4), "t.n"),
        (lambda: get_float({"x": "1"}, "x", "t", 1.0), "t.x"),
        (lambda: get_bool({"b": 1}, "b", "t", False), "t.b"),
        (lambda: get_str_list({"l": [1]}, "l", "t", []), "t.l"),
        (lambda: check_keys({"a": 1, "zz": 2}, {"a"}, "t"), "t.zz"),
    ],
)
def test_errors_name_the_key(call: object, key: str) -> None:
    """Each bad value raises ConfigError whose key is the dotted name."""
    with pytest.raises(ConfigError) as err:
        call()  # type: ignore[operator]
    assert err.value.key == key
    assert key in str(err.value)


def test_defaults_apply_when_absent() -> None:
    """Absent keys give the default."""
    assert get_int({}, "n", "t", 7) == 7
    assert get_float({"x": 2}, "x", "t", 1.0) == 2.0
