"""The order in which FlowSpec rules apply (RFC 8955 §5.1, RFC 8956 §4).

A packet may match several rules; every receiver must apply them in the same order, and
that order must not depend on when the rules arrived. RFC 8955 §5.1 defines it by
comparing two rules component by component, lowest component type first:

* a component type present in only one of the rules: that rule comes first;
* destination or source prefix, both present: when one prefix contains the other, the
  more specific (longer) one comes first; otherwise the one with the lower IP value;
  IPv6 prefixes with an offset (RFC 8956 §4 and its Appendix A): the lower offset comes
  first (it matches more significant bits), equal offsets compare as above (the bits
  before the offset are zero on both sides);
* any other component, both present: its bytes (the operator/value pairs as encoded in
  the NLRI) compare like C's ``memcmp``: the lower string first; when one string is a
  prefix of the other, the longer one first;
* equal: next component type. Two rules equal in every component are the same NLRI.

The comparison is defined within one address family; :func:`compare` puts IPv4 rules
before IPv6 rules so that a mixed list has one deterministic order (a packet is only
ever matched by the rules of its own family, so this choice changes no verdict).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import TypeVar

from trafex.model.components import COMPONENTS, ComponentKind, Family
from trafex.model.flowspec import FlowMatch, FlowPrefix, FlowRule
from trafex.model.terms import OP_END

# The prefix components (destination, source) by type code: the attribute of each.
_PREFIXES = {int(c.type): c.attribute for c in COMPONENTS if c.kind is ComponentKind.PREFIX}

RuleOrMatch = TypeVar("RuleOrMatch", FlowRule, FlowMatch)


def split_components(match: FlowMatch) -> dict[int, bytes]:
    """The NLRI bytes of each component, keyed by component type, without the type byte.

    Splits :meth:`FlowMatch.encode`, so a match decoded from BGP keeps exactly the bytes
    it arrived with (non-minimal value lengths included): those bytes are what §5.1
    compares, on every router.
    """
    data = match.encode()
    out: dict[int, bytes] = {}
    pos = 0
    while pos < len(data):
        ctype = data[pos]
        start = pos + 1
        if ctype in _PREFIXES:
            length = data[start]
            if match.family is Family.IPV4:
                end = start + 1 + (length + 7) // 8
            else:
                offset = data[start + 1]
                end = start + 2 + (length - offset + 7) // 8
        else:
            end = start
            while True:
                op = data[end]
                end += 1 + (1 << ((op >> 4) & 0x03))
                if op & OP_END:
                    break
        out[ctype] = data[start:end]
        pos = end
    return out


def _compare_prefix(a: FlowPrefix, b: FlowPrefix) -> int:
    if a.offset != b.offset:
        return -1 if a.offset < b.offset else 1
    bits = a.network.max_prefixlen
    len_a, len_b = a.network.prefixlen, b.network.prefixlen
    value_a, value_b = int(a.network.network_address), int(b.network.network_address)
    shift = bits - min(len_a, len_b)
    if value_a >> shift == value_b >> shift:  # one contains the other
        return len_b - len_a  # the longer (more specific) first
    return -1 if value_a < value_b else 1


def _compare_bytes(a: bytes, b: bytes) -> int:
    common = min(len(a), len(b))
    if a[:common] != b[:common]:
        return -1 if a[:common] < b[:common] else 1
    return len(b) - len(a)  # equal common part: the longer string first


def compare(a: FlowMatch, b: FlowMatch) -> int:
    """Negative when ``a`` has precedence over ``b``, positive when ``b`` has, else 0."""
    return _compare(a, split_components(a), b, split_components(b))


def _compare(
    a: FlowMatch, bytes_a: dict[int, bytes], b: FlowMatch, bytes_b: dict[int, bytes]
) -> int:
    if a.family is not b.family:
        return -1 if a.family is Family.IPV4 else 1
    for ctype in sorted(set(bytes_a) | set(bytes_b)):
        if ctype not in bytes_b:
            return -1
        if ctype not in bytes_a:
            return 1
        name = _PREFIXES.get(ctype)
        if name is not None:
            prefix_a: FlowPrefix = getattr(a, name)
            prefix_b: FlowPrefix = getattr(b, name)
            result = _compare_prefix(prefix_a, prefix_b)
        else:
            result = _compare_bytes(bytes_a[ctype], bytes_b[ctype])
        if result:
            return result
    return 0


def _match_of(item: FlowRule | FlowMatch) -> FlowMatch:
    return item.match if isinstance(item, FlowRule) else item


def ordered(rules: Iterable[RuleOrMatch]) -> list[RuleOrMatch]:
    """``rules`` sorted by precedence (the rule that applies first comes first).

    Rules that §5.1 ranks equal (two encodings of one match, which only rules decoded
    from BGP can be) are ordered by their NLRI bytes, so the result never depends on
    the input order.
    """

    items = list(rules)
    split = {m.key: split_components(m) for m in map(_match_of, items)}

    def cmp(x: RuleOrMatch, y: RuleOrMatch) -> int:
        mx, my = _match_of(x), _match_of(y)
        result = _compare(mx, split[mx.key], my, split[my.key])
        if result:
            return result
        return (mx.key > my.key) - (mx.key < my.key)

    return sorted(items, key=functools.cmp_to_key(cmp))
