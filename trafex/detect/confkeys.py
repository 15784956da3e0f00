"""Strict reading of TOML tables: unknown keys and wrong types name the key."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

from trafex.detect.errors import ConfigError

T = TypeVar("T")

Table = Mapping[str, object]


def check_keys(table: Table, allowed: set[str] | frozenset[str], where: str) -> None:
    """Raise :class:`ConfigError` naming the first key of ``table`` not in ``allowed``."""
    for key in table:
        if key not in allowed:
            raise ConfigError(
                f"{where}.{key}", f"unknown key (allowed: {', '.join(sorted(allowed))})"
            )


def get_int(
    table: Table, key: str, where: str, default: int, minimum: int = 0, maximum: int | None = None
) -> int:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{where}.{key}", f"expected an integer, got {value!r}")
    if value < minimum:
        raise ConfigError(f"{where}.{key}", f"must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ConfigError(f"{where}.{key}", f"must be <= {maximum}, got {value}")
    return value


def get_float(table: Table, key: str, where: str, default: float, minimum: float = 0.0) -> float:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{where}.{key}", f"expected a number, got {value!r}")
    if value < minimum:
        raise ConfigError(f"{where}.{key}", f"must be >= {minimum}, got {value}")
    return float(value)


def get_str(table: Table, key: str, where: str, default: str | None) -> str | None:
    value = table.get(key, default)
    if value is not None and not isinstance(value, str):
        raise ConfigError(f"{where}.{key}", f"expected a string, got {value!r}")
    return value


def get_bool(table: Table, key: str, where: str, default: bool) -> bool:
    value = table.get(key, default)
    if not isinstance(value, bool):
        raise ConfigError(f"{where}.{key}", f"expected true or false, got {value!r}")
    return value


def get_int_list(table: Table, key: str, where: str, default: list[int]) -> list[int]:
    value = table.get(key, default)
    if not isinstance(value, list) or not all(
        isinstance(v, int) and not isinstance(v, bool) for v in value
    ):
        raise ConfigError(f"{where}.{key}", f"expected a list of integers, got {value!r}")
    return list(value)


def get_str_list(table: Table, key: str, where: str, default: list[str]) -> list[str]:
    value = table.get(key, default)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}.{key}", f"expected a list of strings, got {value!r}")
    return list(value)


def get_table(table: Table, key: str, where: str) -> Table:
    value = table.get(key, {})
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}.{key}", f"expected a table, got {value!r}")
    return value
