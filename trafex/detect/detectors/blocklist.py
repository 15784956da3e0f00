"""Blocked domain names, read from a file, matched exactly or as any subdomain.

File format: one name per line; ``#`` starts a comment; hosts-file lines
(``0.0.0.0 bad.example other.example``) give the names after the address;
``localhost`` entries of hosts files are ignored. Matching is case-insensitive
and ignores a trailing dot.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from pathlib import Path

from trafex.detect.errors import BlocklistError

_HOSTS_IGNORED = frozenset(
    {
        "localhost",
        "localhost.localdomain",
        "local",
        "broadcasthost",
        "ip6-localhost",
        "ip6-loopback",
    }
)


def normalize(name: str) -> str:
    return name.strip().rstrip(".").lower()


class Blocklist:
    """A set of names; ``match(qname)`` returns the blocked name that covers it."""

    def __init__(self, names: Iterable[str] = ()) -> None:
        self._names = frozenset(n for n in (normalize(x) for x in names) if n)

    def __len__(self) -> int:
        return len(self._names)

    @property
    def names(self) -> frozenset[str]:
        return self._names

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.match(name) is not None

    def match(self, qname: str) -> str | None:
        name = normalize(qname)
        names = self._names
        if not name or not names:
            return None
        if name in names:
            return name
        dot = name.find(".")
        while dot >= 0:
            name = name[dot + 1 :]
            if name in names:
                return name
            dot = name.find(".")
        return None

    @classmethod
    def from_file(cls, path: str | Path) -> Blocklist:
        try:
            text = Path(path).read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            raise BlocklistError(f"{path}: cannot read blocklist ({exc.strerror})") from exc
        return cls(parse_lines(text.splitlines(), str(path)))


def parse_lines(lines: Iterable[str], where: str = "blocklist") -> list[str]:
    """Names from blocklist lines (plain names or hosts-file lines)."""
    out: list[str] = []
    for lineno, raw in enumerate(lines, 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        fields = line.split()
        try:
            ipaddress.ip_address(fields[0])
            fields = fields[1:]
        except ValueError:
            pass
        for field in fields:
            name = normalize(field)
            if name in _HOSTS_IGNORED:
                continue
            if not _valid_name(name):
                raise BlocklistError(f"{where}:{lineno}: not a domain name: {field!r}")
            out.append(name)
    return out


_LABEL = re.compile(r"^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$")


def _valid_name(name: str) -> bool:
    if not name or len(name) > 253:
        return False
    return all(_LABEL.match(label) for label in name.split("."))
