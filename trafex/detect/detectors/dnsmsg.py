"""A small DNS message parser: the question and the A, AAAA and CNAME answers.

Hand-written because it runs on every DNS response and must never raise on
hostile input: names are followed through compression pointers (any offset in
the message, at most ``MAX_POINTER_HOPS`` jumps), and a message cut short
(snaplen, malformed counts) yields the records parsed before the cut, as tshark
shows them.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

TYPE_A = 1
TYPE_CNAME = 5
TYPE_AAAA = 28

MAX_POINTER_HOPS = 128
MAX_NAME_LEN = 1024

_HEADER = struct.Struct("!HHHHHH")
_RR = struct.Struct("!HHIH")


class _TruncatedError(Exception):
    pass


@dataclass(frozen=True, slots=True)
class Answer:
    """One answer record: owner name (lower case, no trailing dot), type, value."""

    owner: str
    rtype: int
    value: str


@dataclass(frozen=True, slots=True)
class DnsResponse:
    """A DNS response's question and its answer section's A/AAAA/CNAME records."""

    ident: int
    qname: str
    qtype: int
    rcode: int
    truncated_flag: bool
    answers: tuple[Answer, ...]
    complete: bool

    def chain_addresses(self) -> list[str]:
        """Addresses of the A/AAAA answers reached from the qname through CNAMEs.

        Records may come in any order; a CNAME loop ends the walk.
        """
        reach = {self.qname.lower()}
        cnames: dict[str, list[str]] = {}
        for ans in self.answers:
            if ans.rtype == TYPE_CNAME:
                cnames.setdefault(ans.owner, []).append(ans.value.lower())
        todo = list(reach)
        while todo:
            name = todo.pop()
            for target in cnames.get(name, ()):
                if target not in reach:
                    reach.add(target)
                    todo.append(target)
        out: list[str] = []
        for ans in self.answers:
            if ans.rtype != TYPE_CNAME and ans.owner in reach and ans.value not in out:
                out.append(ans.value)
        return out


def _name(msg: bytes, off: int, size: int) -> tuple[str, int]:
    """Read a (possibly compressed) name at ``off``; returns it and the offset after it."""
    labels: list[str] = []
    after = -1
    hops = 0
    length = 0
    while True:
        if off >= size:
            raise _TruncatedError
        ln = msg[off]
        if ln == 0:
            off += 1
            break
        kind = ln & 0xC0
        if kind == 0xC0:
            if off + 1 >= size:
                raise _TruncatedError
            if after < 0:
                after = off + 2
            hops += 1
            if hops > MAX_POINTER_HOPS:
                raise _TruncatedError
            off = ((ln & 0x3F) << 8) | msg[off + 1]
            continue
        if kind:
            raise _TruncatedError  # extended label types are not used in answers
        end = off + 1 + ln
        if end > size:
            raise _TruncatedError
        length += ln + 1
        if length > MAX_NAME_LEN:
            raise _TruncatedError
        labels.append(msg[off + 1 : end].decode("latin-1").replace(".", "\\."))
        off = end
    return ".".join(labels), (after if after >= 0 else off)


def parse_response(msg: bytes) -> DnsResponse | None:
    """Parse a DNS response; ``None`` when it is not one or has no complete question."""
    size = len(msg)
    if size < 12:
        return None
    ident, flags, qdcount, ancount, _ns, _ar = _HEADER.unpack_from(msg, 0)
    if not flags & 0x8000 or qdcount == 0:
        return None
    try:
        qname, qtype, off = _question(msg, qdcount, size)
    except _TruncatedError:
        return None
    answers: list[Answer] = []
    complete = _answers(msg, off, ancount, size, answers)
    return DnsResponse(
        ident=ident,
        qname=qname,
        qtype=qtype,
        rcode=flags & 0x0F,
        truncated_flag=bool(flags & 0x0200),
        answers=tuple(answers),
        complete=complete,
    )


def _question(msg: bytes, qdcount: int, size: int) -> tuple[str, int, int]:
    """The first question's name and type, and the offset after every question."""
    qname, off = _name(msg, 12, size)
    if off + 4 > size:
        raise _TruncatedError
    qtype = (msg[off] << 8) | msg[off + 1]
    off += 4
    for _ in range(qdcount - 1):
        _skip, off = _name(msg, off, size)
        off += 4
        if off > size:
            raise _TruncatedError
    return qname, qtype, off


def _answers(msg: bytes, off: int, ancount: int, size: int, out: list[Answer]) -> bool:
    """Add the A, AAAA and CNAME answers from ``off`` to ``out``; False when the message
    is cut before its last answer (``out`` then holds those before the cut)."""
    try:
        for _ in range(ancount):
            owner, off = _name(msg, off, size)
            if off + 10 > size:
                raise _TruncatedError
            rtype, _rclass, _ttl, rdlen = _RR.unpack_from(msg, off)
            off += 10
            end = off + rdlen
            if end > size:
                raise _TruncatedError
            if rtype == TYPE_A and rdlen == 4:
                value = socket.inet_ntop(socket.AF_INET, msg[off:end])
            elif rtype == TYPE_AAAA and rdlen == 16:
                value = socket.inet_ntop(socket.AF_INET6, msg[off:end])
            elif rtype == TYPE_CNAME:
                value, _after = _name(msg, off, size)
            else:
                off = end
                continue
            out.append(Answer(owner.lower(), rtype, value))
            off = end
    except _TruncatedError:
        return False
    return True
