"""IPv6 FlowSpec prefixes with an offset: RFC 8956's form and GoBGP's.

RFC 8956 §3.1 puts only the pattern on the wire: the ``length - offset`` bits after
the offset, padded to a whole octet. GoBGP 3.10 and FRR 8.4 both use the form of the
earlier drafts instead: ``ceil(length / 8)`` octets of the whole prefix (the bits
before the offset zero). The two agree when the offset is 0, which is nearly always.

trafex keys a rule by its RFC 8956 bytes and converts at the GoBGP boundary, so that
GoBGP (and the FRR routers it talks to) parse exactly the rule that was asked for,
and a rule read back from GoBGP gets the same key it was stored under. Only IPv6
destination/source components (types 1 and 2, always first in an NLRI) differ.
"""

from __future__ import annotations

from trafex.bgp.attributes import DecodeError
from trafex.model.flowspec import Family

_PREFIX_TYPES = (1, 2)


def _octets(bits: int) -> int:
    return (bits + 7) // 8


def _convert(body: bytes, *, to_gobgp: bool) -> bytes:
    out = bytearray()
    pos = 0
    while pos < len(body) and body[pos] in _PREFIX_TYPES:
        if pos + 3 > len(body):
            raise DecodeError("IPv6 FlowSpec prefix component is truncated")
        ctype, length, offset = body[pos], body[pos + 1], body[pos + 2]
        if length > 128 or offset > length:
            raise DecodeError(f"IPv6 FlowSpec prefix /{length} with offset {offset}")
        pattern_bits = length - offset
        # Pattern octets in the source form, and the bits they hold.
        have = _octets(length) if not to_gobgp else _octets(pattern_bits)
        data = body[pos + 3 : pos + 3 + have]
        if len(data) != have:
            raise DecodeError("IPv6 FlowSpec prefix component is truncated")
        value = int.from_bytes(data, "big")
        if to_gobgp:  # pattern bits → whole prefix, bits before the offset zero
            pattern = value >> (have * 8 - pattern_bits)
            whole = pattern << (_octets(length) * 8 - length)
            encoded = whole.to_bytes(_octets(length), "big")
        else:  # whole prefix → pattern bits after the offset, padded
            pattern = (value >> (have * 8 - length)) & ((1 << pattern_bits) - 1)
            encoded = (pattern << (_octets(pattern_bits) * 8 - pattern_bits)).to_bytes(
                _octets(pattern_bits), "big"
            )
        out += bytes((ctype, length, offset)) + encoded
        pos += 3 + have
    return bytes(out) + body[pos:]


def _needs_conversion(family: Family, body: bytes) -> bool:
    """True when an IPv6 NLRI starts with a prefix component that has an offset."""
    if family is not Family.IPV6:
        return False
    pos = 0
    # At most two prefix components (destination, source) lead the NLRI.
    for _ in _PREFIX_TYPES:
        if len(body) < pos + 3 or body[pos] not in _PREFIX_TYPES:
            return False
        if body[pos + 2]:
            return True
        pos += 3 + _octets(body[pos + 1])  # offset 0: both forms are the same size
    return False


def to_gobgp(family: Family, body: bytes) -> bytes:
    """NLRI component bytes (no length prefix) from RFC 8956's form to GoBGP's."""
    return _convert(body, to_gobgp=True) if _needs_conversion(family, body) else body


def from_gobgp(family: Family, body: bytes) -> bytes:
    """NLRI component bytes (no length prefix) from GoBGP's form to RFC 8956's."""
    return _convert(body, to_gobgp=False) if _needs_conversion(family, body) else body
