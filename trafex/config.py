"""Strict TOML configuration: the one reader every trafex config is read with.

A config is a tree of frozen dataclasses, and the dataclasses drive the reading:
:meth:`Table.read` reads one field per key, checks the value against the field's type,
and takes each default from the dataclass (stated there once). What a type alone cannot
say goes in ``Annotated`` metadata: :class:`Parse` (a value parser such as
:func:`host_port`) and :class:`Range` (bounds of a number)::

    @dataclass(frozen=True)
    class ApiConfig:
        listen: Annotated[str, Parse(host_port)] = "127.0.0.1:50061"
        timeout: Annotated[float, Range(above=0)] = 30.0

Whatever is left unread in a table is an unknown key, and every error is a
:class:`ConfigError` whose message starts with the dotted key
(``bgp.neighbor[0].peer_as: expected an integer, got str``,
``api.lisen: unknown key (known: listen)``). Cross-field checks stay
in each config module, after the read. The value parsers several configs share
(``HOST:PORT``, addresses, lists, durations) and the ``[state]`` table of trafex's
daemons live here too. Imports nothing from trafex but the model, so every layer can
use it.
"""

from __future__ import annotations

import dataclasses
import functools
import ipaddress
import math
import os
import tomllib
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, Union

from trafex.model.duration import parse_duration
from trafex.model.errors import TrafexError, ValidationError

T = TypeVar("T")
_REQUIRED: Any = dataclasses.MISSING


class ConfigError(TrafexError):
    """A configuration that trafex refuses. ``key`` is the dotted name of the bad key
    (empty when the whole file is at fault) and ``str(error)`` is ``key: message``."""

    def __init__(self, message: str, key: str = "") -> None:
        self.key = key
        self.message = message
        super().__init__(f"{key}: {message}" if key else message)


# -- what a field may say besides its type ------------------------------------------------


@dataclass(frozen=True, slots=True)
class Parse:
    """Read the field's TOML value with ``function``; its ValueError or TypeError (a
    :class:`~trafex.model.errors.ValidationError` too) becomes a ConfigError naming the
    key."""

    function: Callable[[Any], Any]


@dataclass(frozen=True, slots=True)
class Range:
    """Bounds of a number: ``minimum <= value <= maximum``, and ``value > above``.
    Floats must also be finite (TOML has ``nan`` and ``inf``). ``note`` is added to
    the message (``0: no limit``)."""

    minimum: float | None = None
    maximum: float | None = None
    above: float | None = None
    note: str = ""

    def __call__(self, value: T) -> T:
        """``value`` when it is in range; else a ValueError saying the range."""
        number = typing.cast(float, value)
        if isinstance(number, float) and not math.isfinite(number):
            raise ValueError(f"{number} is not a finite number")
        if self.above is not None and not number > self.above:
            problem = f"must be > {_number(self.above)}, got {_number(number)}"
        elif (self.minimum is not None and number < self.minimum) or (
            self.maximum is not None and number > self.maximum
        ):
            problem = f"{_number(number)} is out of range {self._text()}"
        else:
            return value
        raise ValueError(f"{problem} ({self.note})" if self.note else problem)

    def _text(self) -> str:
        if self.maximum is None:
            return f"{_number(self.minimum)} or more"
        if self.minimum is None:
            return f"{_number(self.maximum)} or less"
        return f"{_number(self.minimum)}..{_number(self.maximum)}"


NO_LIMIT = Range(0, note="0: no limit")  # a cap or rate where 0 turns it off


def _number(value: float | None) -> str:
    """``5`` for 5 and 5.0, ``0.5`` for 0.5: a number as a person writes it."""
    assert value is not None
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


# -- tables ---------------------------------------------------------------------------------


class Table:
    """A TOML table read key by key; whatever is left unread is an unknown key."""

    def __init__(self, data: Any, path: str) -> None:
        if not isinstance(data, Mapping):
            raise ConfigError(f"expected a table, got {type(data).__name__}", path)
        self.data = dict(data)
        self.path = path
        self.known: set[str] = set()  # every key asked for: the unknown key's hint

    def name(self, key: str) -> str:
        """The dotted name of ``key`` in this table, as error messages give it."""
        return f"{self.path}.{key}" if self.path else key

    def error(self, key: str, message: str) -> ConfigError:
        """A ConfigError about ``key`` of this table."""
        return ConfigError(message, self.name(key))

    def __contains__(self, key: str) -> bool:
        return key in self.data

    def take(self, key: str, kind: type[T] | tuple[type, ...], default: T = _REQUIRED) -> T:
        """The value of ``key``, of type ``kind`` (a bool is never an int); ``default``
        when absent (no default: the key is required)."""
        if key not in self.data:
            return self._absent(key, default)
        self.known.add(key)
        value = self.data.pop(key)
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if isinstance(value, bool) and bool not in kinds:
            raise self.error(key, f"expected {kind_name(kinds)}, got a boolean")
        if not isinstance(value, kinds):
            raise self.error(key, f"expected {kind_name(kinds)}, got {type(value).__name__}")
        return value  # type: ignore[return-value]

    def convert(self, key: str, parse: Callable[[Any], T], default: T = _REQUIRED) -> T:
        """``parse(value)`` of ``key`` (its ValueError or TypeError names the key);
        ``default`` when absent (no default: the key is required)."""
        if key not in self.data:
            return self._absent(key, default)
        self.known.add(key)
        return self.convert_value(key, parse, self.data.pop(key))

    def convert_value(self, key: str, parse: Callable[[Any], T], value: Any) -> T:
        """``parse(value)``, a value already taken from ``key``; errors name the key."""
        try:
            return parse(value)
        except ValidationError as error:
            raise self.error(key, error.message) from None
        except (ValueError, TypeError) as error:
            raise self.error(key, str(error)) from None

    def _absent(self, key: str, default: T) -> T:
        self.known.add(key)
        if default is _REQUIRED:
            raise self.error(key, "missing")
        return default

    def table(self, key: str) -> Table:
        """The sub-table ``key`` (empty when absent)."""
        self.known.add(key)
        return Table(self.data.pop(key, {}), self.name(key))

    def tables(self, key: str) -> list[Table]:
        """The list of tables ``key`` (``[[key]]``; empty when absent)."""
        items = self.take(key, list, [])
        return [Table(item, f"{self.name(key)}[{index}]") for index, item in enumerate(items)]

    def named_tables(self, key: str) -> list[tuple[str, Table]]:
        """The tables of table ``key`` by name (``[key.NAME]``), in file order."""
        parent = self.table(key)
        names = list(parent.data)
        return [(name, Table(parent.data.pop(name), parent.name(name))) for name in names]

    def read(self, cls: type[T], *, defaults: T | None = None, **given: Any) -> T:
        """A ``cls`` dataclass from this table: each field from its key, read and checked
        by its type (and :class:`Parse`, :class:`Range`); a dataclass field from the
        sub-table of that name. Defaults are ``defaults``' values, else the
        dataclass's; ``given`` fields are the caller's (read otherwise, or computed).
        Then any key left is an unknown key."""
        values = dict(given)
        fields = [f for f in _fields(typing.cast(type, cls)) if f.name not in given]
        if any(_default(f, defaults) is _REQUIRED for f in fields):
            self._unknown({f.name for f in fields})  # a misspelt required key: name it first
        for spec in fields:
            values[spec.name] = self._field(spec, _default(spec, defaults))
        self.done()
        return cls(**values)

    def _field(self, spec: _Field, default: Any) -> Any:
        key = spec.name
        if spec.unreadable:
            raise TypeError(spec.unreadable)  # a mistake in the dataclass, not the file
        if spec.nested is not None:
            nested_defaults = None if default is _REQUIRED else default
            return self.table(key).read(spec.nested, defaults=nested_defaults)
        if key not in self.data:
            return self._absent(key, default)
        if spec.parse is not None:
            value = self.convert(key, spec.parse)
        else:
            value = self.take(key, spec.kinds)
            if spec.make is not None:
                value = self.convert_value(key, spec.make, value)
        if spec.range is not None:
            value = self.convert_value(key, spec.range, value)
        return value

    def done(self) -> None:
        """Refuse any key left unread, naming it."""
        self._unknown(set())

    def _unknown(self, expected: set[str]) -> None:
        unknown = sorted(set(self.data) - expected)
        if unknown:
            known = sorted(self.known | expected)
            hint = f" (known: {', '.join(known)})" if known else ""
            raise self.error(unknown[0], f"unknown key{hint}")


def kind_name(kinds: tuple[type, ...]) -> str:
    """``an integer or a string``: the types ``kinds`` in words, for error messages."""
    if set(kinds) == {int, float}:
        return "a number"
    names = {
        int: "an integer",
        str: "a string",
        bool: "a boolean",
        float: "a number",
        list: "a list",
        dict: "a table",
    }
    return " or ".join(names.get(k, k.__name__) for k in kinds)


# -- reading a dataclass field by its type --------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Field:
    """How :meth:`Table.read` reads one field."""

    name: str
    field: dataclasses.Field[Any]
    kinds: tuple[type, ...] = ()  # the TOML types taken
    make: Callable[[Any], Any] | None = None  # then turned into the field's type
    parse: Callable[[Any], Any] | None = None  # or: the whole reading
    range: Range | None = None
    nested: type | None = None  # a dataclass: read from the sub-table
    unreadable: str = ""  # why no reader fits: the caller must give the field


def _default(spec: _Field, defaults: object | None) -> Any:
    if defaults is not None:
        return getattr(defaults, spec.name)
    if spec.field.default is not dataclasses.MISSING:
        return spec.field.default
    if spec.field.default_factory is not dataclasses.MISSING:
        return spec.field.default_factory()
    return _REQUIRED


@functools.cache
def _fields(cls: type) -> tuple[_Field, ...]:
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls.__name__} is not a dataclass")
    hints = typing.get_type_hints(cls, include_extras=True)
    return tuple(_field_of(f, hints[f.name]) for f in dataclasses.fields(cls) if f.init)


def _field_of(spec: dataclasses.Field[Any], hint: Any) -> _Field:
    parse: Callable[[Any], Any] | None = None
    bounds: Range | None = None
    if typing.get_origin(hint) is Annotated:
        hint, *extras = typing.get_args(hint)
        for extra in extras:
            if isinstance(extra, Parse):
                parse = extra.function
            elif isinstance(extra, Range):
                bounds = extra
    hint = _without_none(hint)
    if parse is not None:
        return _Field(spec.name, spec, parse=parse, range=bounds)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _Field(spec.name, spec, nested=hint)
    try:
        kinds, make = _reader_of(hint)
    except TypeError as error:
        return _Field(spec.name, spec, unreadable=f"{spec.name}: {error}")
    return _Field(spec.name, spec, kinds=kinds, make=make, range=bounds)


def _without_none(hint: Any) -> Any:
    """``X`` of ``X | None`` (None is only ever a default, never written in TOML)."""
    if typing.get_origin(hint) in (Union, types.UnionType):
        rest = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(rest) == 1:
            return rest[0]
    return hint


_SCALARS: dict[Any, tuple[tuple[type, ...], Callable[[Any], Any] | None]] = {
    bool: ((bool,), None),
    int: ((int,), None),
    float: ((int, float), float),
    str: ((str,), None),
    Path: ((str,), Path),
}


def _reader_of(hint: Any) -> tuple[tuple[type, ...], Callable[[Any], Any] | None]:
    """The TOML types a field of type ``hint`` takes, and what turns the value into it."""
    if hint in _SCALARS:
        return _SCALARS[hint]
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Literal:
        return (str,), one_of(*args)
    if origin is tuple and len(args) == 2 and args[1] is ... and args[0] in _ITEM_NAMES:
        items = list_of(args[0])
        return (list,), lambda value: tuple(items(value))
    if origin is frozenset and len(args) == 1 and args[0] in _ITEM_NAMES:
        items = list_of(args[0])
        return (list,), lambda value: frozenset(items(value))
    raise TypeError(f"no reader for {hint!r}: annotate it with Parse(...), or give it")


# -- value parsers (for Parse, Table.convert) -----------------------------------------------


def host_port(value: Any) -> str:
    """``HOST:PORT`` with a port 1..65535 (a gRPC target or listen address); an IPv6
    address in brackets (``[::1]:50061``)."""
    split_host_port(value)
    return typing.cast(str, value)


def split_host_port(value: Any) -> tuple[str, int]:
    """``(host, port)`` of a ``HOST:PORT`` (brackets removed from an IPv6 host)."""
    if not isinstance(value, str):
        raise ValueError(f"expected HOST:PORT, got {value!r}")
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected HOST:PORT, got {value!r}")
    if ":" in host:
        if not (host.startswith("[") and host.endswith("]")):
            raise ValueError(f"write an IPv6 address as [ADDRESS]:PORT, got {value!r}")
        host = host[1:-1]
    return host, int(port)


def ip_address(value: Any) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    # A TOML integer is refused: ip_address(5) would silently be 0.0.0.5.
    if not isinstance(value, str):
        raise TypeError(f"expected an IP address string, got {type(value).__name__}")
    return ipaddress.ip_address(value)


def ipv4_address(value: Any) -> ipaddress.IPv4Address:
    if not isinstance(value, str):
        raise TypeError(f"expected an IPv4 address string, got {type(value).__name__}")
    return ipaddress.IPv4Address(value)


def ipv6_address(value: Any) -> ipaddress.IPv6Address:
    if not isinstance(value, str):
        raise TypeError(f"expected an IPv6 address string, got {type(value).__name__}")
    return ipaddress.IPv6Address(value)


_ITEM_NAMES = {int: "integers", str: "strings", float: "numbers"}


def list_of(kind: type[T]) -> Callable[[Any], list[T]]:
    """A parser of a list whose items are all ``kind`` (``int``, ``str``, ``float``;
    an integer is a float too, a boolean is no number)."""
    kinds: tuple[type, ...] = (int, float) if kind is float else (kind,)
    message = f"expected a list of {_ITEM_NAMES[kind]}"

    def parse(value: Any) -> list[T]:
        if not isinstance(value, list) or not all(
            isinstance(v, kinds) and not isinstance(v, bool) for v in value
        ):
            raise TypeError(message)
        return typing.cast(list[T], [float(v) for v in value]) if kind is float else value

    return parse


def integer(bounds: Range) -> Callable[[Any], int]:
    """A parser of a TOML integer within ``bounds`` (a boolean is no integer)."""

    def parse(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"expected an integer, got {type(value).__name__}")
        return bounds(value)

    return parse


def number(bounds: Range) -> Callable[[Any], float]:
    """A parser of a TOML number (integer or float) within ``bounds``, as a float."""

    def parse(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TypeError(f"expected a number, got {type(value).__name__}")
        return bounds(float(value))

    return parse


str_list = list_of(str)
int_list = list_of(int)


def one_of(*choices: str) -> Callable[[Any], str]:
    """A parser of one of ``choices`` (a TOML string)."""

    def parse(value: Any) -> str:
        if value not in choices:
            raise ValueError(f"use one of {', '.join(choices)}, not {value!r}")
        return typing.cast(str, value)

    return parse


def addresses(value: Any) -> tuple[str, ...]:
    """A list of IP addresses, each written in its canonical form."""
    return tuple(str(ipaddress.ip_address(a)) for a in str_list(value))


#: Seconds from a number or ``"90s"``, ``"10m"``, ``"2h"``, ``"1d"``, ``"1w"`` (>= 0).
duration = parse_duration


# -- files ------------------------------------------------------------------------------------


def read_toml(path: Path) -> dict[str, Any]:
    """Read ``path`` as TOML (UTF-8 whatever the locale); every failure is one
    :class:`ConfigError` line naming the file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"{path}: {error.strerror}") from None
    except UnicodeDecodeError as error:
        raise ConfigError(
            f"{path}: not UTF-8 text (byte {error.object[error.start]:#04x} "
            f"at offset {error.start})"
        ) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML: {error}") from None


# -- [state]: where a trafex daemon keeps its files -------------------------------------------


def default_state_dir() -> Path:
    """``$TRAFEX_STATE_DIR``, else /var/lib/trafex for root, else ~/.local/state/trafex."""
    env = os.environ.get("TRAFEX_STATE_DIR")
    if env:
        return Path(env)
    if os.geteuid() == 0:
        return Path("/var/lib/trafex")
    return Path.home() / ".local" / "state" / "trafex"


@dataclass(frozen=True)
class StateConfig:
    """The ``[state]`` table. A daemon that shares the host with trafexd gives its own
    default, a folder of :func:`default_state_dir` (``StateConfig.under("enforce")``)."""

    dir: Path = field(default_factory=default_state_dir)

    @classmethod
    def under(cls, subdir: str) -> StateConfig:
        return cls(dir=default_state_dir() / subdir)
