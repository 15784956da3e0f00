"""FlowSpec NLRI bytes → :class:`FlowMatch` (the inverse of ``FlowMatch.encode``).

Used to withdraw a path known only by its NLRI (an orphan in GoBGP's RIB) and to read
rules received over BGP. Malformed input raises :class:`ValidationError`.
"""

from __future__ import annotations

import ipaddress

from trafex.model.components import COMPONENT_OF_TYPE, Component, ComponentKind, Family
from trafex.model.errors import ValidationError
from trafex.model.flowspec import FlowMatch, FlowPrefix
from trafex.model.terms import OP_END, Term, term_from_op


def _prefix(family: Family, data: bytes, pos: int, keyword: str) -> tuple[FlowPrefix, int]:
    try:
        plen = data[pos]
        if family is Family.IPV4:
            nbytes = (plen + 7) // 8
            raw = data[pos + 1 : pos + 1 + nbytes]
            if plen > 32 or len(raw) != nbytes:
                raise ValidationError("truncated IPv4 prefix", field=keyword)
            bits = int.from_bytes(raw.ljust(4, b"\0"), "big")
            if bits & ((1 << (32 - plen)) - 1):
                address = ipaddress.IPv4Address(bits)
                raise ValidationError(f"{address}/{plen} has bits set past its length", keyword)
            network = ipaddress.IPv4Network((bits, plen))
            return FlowPrefix(network), pos + 1 + nbytes
        offset = data[pos + 1]
        width = plen - offset
        nbytes = (width + 7) // 8
        raw = data[pos + 2 : pos + 2 + nbytes]
        if plen > 128 or width < 0 or len(raw) != nbytes:
            raise ValidationError("truncated or inconsistent IPv6 prefix", field=keyword)
        # The padding bits after the pattern are ignored (RFC 8956 §3.1).
        pattern = int.from_bytes(raw, "big") >> (nbytes * 8 - width) if width else 0
        network6 = ipaddress.IPv6Network((pattern << (128 - plen), plen))
        try:
            return FlowPrefix(network6, offset), pos + 2 + nbytes
        except ValidationError as error:  # the offset
            raise ValidationError(error.message, field=keyword) from None
    except IndexError:
        raise ValidationError("truncated prefix component", field=keyword) from None


def _terms(component: Component, data: bytes, pos: int) -> tuple[tuple[Term, ...], int]:
    keyword, name, bitmask = component.keyword, component.type.name, component.bitmask
    terms: list[Term] = []
    while True:
        if pos >= len(data):
            raise ValidationError(f"component {name} has no end-of-list bit", keyword)
        op = data[pos]
        size = 1 << ((op >> 4) & 0x03)
        raw = data[pos + 1 : pos + 1 + size]
        if len(raw) != size:
            raise ValidationError(f"truncated value in component {name}", keyword)
        terms.append(term_from_op(bitmask, op, int.from_bytes(raw, "big")))
        pos += 1 + size
        if op & OP_END:
            return tuple(terms), pos


def decode_nlri(family: Family, data: bytes) -> FlowMatch:
    """Decode component bytes (without the NLRI length prefix).

    The match keeps its terms as they are on the wire (a numeric ``!=``, lt|gt, is not
    rewritten as ``<`` OR ``>`` as it is for rules typed by users) and encodes back to
    exactly ``data``: ``decode_nlri(f, d).encode() == d`` for every ``d`` it accepts, so
    a rule read from BGP is keyed and withdrawn by the NLRI the speaker holds.
    """
    kwargs: dict[str, object] = {}
    pos = 0
    last = 0
    while pos < len(data):
        component = COMPONENT_OF_TYPE.get(data[pos])
        if component is None:
            raise ValidationError(f"unknown component type {data[pos]}")
        ctype, keyword = component.type, component.keyword
        if ctype <= last:
            raise ValidationError(f"component {ctype.name} out of order or repeated", keyword)
        last = ctype
        if component.kind is ComponentKind.PREFIX:
            kwargs[component.attribute], pos = _prefix(family, data, pos + 1, keyword)
        else:
            kwargs[component.attribute], pos = _terms(component, data, pos + 1)
    return FlowMatch(family, nlri=bytes(data), **kwargs)  # type: ignore[arg-type]


def decode_key(key: str) -> FlowMatch:
    """A rule's key (``ipv6:0180…``) back into its match."""
    family, _, hexa = key.partition(":")
    try:
        return decode_nlri(Family(family), bytes.fromhex(hexa))
    except ValueError as error:
        raise ValidationError(f"not a FlowSpec key: {key!r} ({error})") from None
