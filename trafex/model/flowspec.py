"""FlowSpec rules (RFC 8955 for IPv4, RFC 8956 for IPv6) as validated frozen values.

A rule is a :class:`FlowMatch` (the NLRI: one optional value per component type, so the
component order and uniqueness that RFC 8955 §4 demands hold by construction) and
:class:`FlowActions` (the traffic-filtering extended communities of RFC 8955 §7, in
:mod:`trafex.model.actions`). The components are those of the component table
(:mod:`trafex.model.components`). Everything a rule is made of is importable from here.

A match's identity is its NLRI encoding (:attr:`FlowMatch.key`): two matches that encode
to the same bytes are the same rule, so adding one again updates the rule's actions
instead of creating a second path. The encoding is canonical for the matches trafex
builds; a match decoded from NLRI bytes (:func:`trafex.model.nlri.decode_nlri`) keeps
those exact bytes, so that a rule received over BGP can be withdrawn by them.
"""

from __future__ import annotations

import functools
import ipaddress
import math
import socket
import struct
from dataclasses import KW_ONLY, InitVar, dataclass, field
from typing import ClassVar

from trafex.model.actions import FlowActions, RouteTarget, RouteTargetKind, float32
from trafex.model.components import (
    ATTRIBUTE,
    COMPONENT,
    COMPONENT_OF_TYPE,
    COMPONENTS,
    FRAGMENT_DONT,
    FRAGMENT_FIRST,
    FRAGMENT_IS,
    FRAGMENT_LAST,
    TERM_COMPONENTS,
    Component,
    ComponentKind,
    ComponentType,
    Family,
)
from trafex.model.errors import ValidationError
from trafex.model.protocols import PROTO_TCP, icmp_protocol
from trafex.model.terms import (
    MAX_NE_BRANCHES,
    MAX_NE_PER_CHAIN,
    OP_AND,
    OP_END,
    OP_EQ,
    OP_GT,
    OP_LEN_MASK,
    OP_LT,
    OP_MATCH,
    OP_NOT,
    BitmaskTerm,
    NumericTerm,
    Term,
    evaluate,
    expand_not_equal,
    is_lt_gt,
    term_from_op,
)

# The rule's parts defined beside it, re-exported: a rule is imported from here whole.
__all__ = [
    "ATTRIBUTE",
    "COMPONENT",
    "COMPONENT_OF_TYPE",
    "COMPONENTS",
    "FRAGMENT_DONT",
    "FRAGMENT_FIRST",
    "FRAGMENT_IS",
    "FRAGMENT_LAST",
    "MAX_NE_BRANCHES",
    "MAX_NE_PER_CHAIN",
    "OP_AND",
    "OP_END",
    "OP_EQ",
    "OP_GT",
    "OP_LEN_MASK",
    "OP_LT",
    "OP_MATCH",
    "OP_NOT",
    "TERM_COMPONENTS",
    "BitmaskTerm",
    "Component",
    "ComponentKind",
    "ComponentType",
    "Family",
    "FlowActions",
    "FlowMatch",
    "FlowPrefix",
    "FlowRule",
    "IPNetwork",
    "NumericTerm",
    "RouteTarget",
    "RouteTargetKind",
    "Term",
    "evaluate",
    "expand_not_equal",
    "float32",
    "frame_nlri",
    "network_text",
    "term_from_op",
    "unframe_nlri",
]

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def network_text(network: IPNetwork) -> str:
    """``str(network)``; IPv6 through the C library's inet_ntop, several times faster.

    Both follow RFC 5952 (lowercase, the first longest run of two or more zero groups
    compressed) except where the first 80 bits are zero: inet_ntop then writes an
    embedded IPv4 address (``::ffff:1.2.3.4``), so those go through ipaddress.
    """
    if network.version == 6:
        packed = network.network_address.packed
        if packed[:10] != _ZERO_80:
            return f"{socket.inet_ntop(socket.AF_INET6, packed)}/{network.prefixlen}"
    return str(network)


_ZERO_80 = bytes(10)


def _network(network_type: type[IPNetwork], spec: str) -> IPNetwork:
    """``network_type(spec)``, with IPv6 ``address/length`` parsed by the C library:
    the pure-Python address parser is most of the cost of a rule from the API."""
    address, _, length = spec.partition("/")
    if network_type is ipaddress.IPv6Network and length.isascii() and length.isdigit():
        try:
            packed = socket.inet_pton(socket.AF_INET6, address)
        except OSError:
            pass  # scoped or unusual: let ipaddress decide, and word the error
        else:
            return ipaddress.IPv6Network((packed, int(length)))
    return network_type(spec)


@dataclass(frozen=True, slots=True)
class FlowPrefix:
    """A destination or source prefix component; ``offset`` (IPv6 only) in bits.

    With an offset, the bits before it are not on the wire (RFC 8956 §3.1); they are
    zeroed here so that equal rules compare equal.
    """

    network: IPNetwork
    offset: int = 0
    # str() of an IPv6 network is slow and every render, answer and event needs it.
    _text: str = field(default="", init=False, repr=False, compare=False)

    @classmethod
    def parse(cls, text: str, *, field_name: str = "prefix") -> FlowPrefix:
        """``3001:1:a::10/128``, ``10.0.0.0/8``, ``3001::/64/8`` (IPv6 with offset 8).

        A bare address is a host prefix. Host bits set is an error, not a silent fix.
        """
        try:
            return _parse_prefix(text)
        except ValidationError as error:
            raise ValidationError(error.message, field=field_name) from None

    def __post_init__(self) -> None:
        plen = self.network.prefixlen
        if self.network.version == 6 and self.network.network_address.scope_id:
            # ipaddress reads "fe80::1%eth0"; the NLRI has no room for the zone.
            raise ValidationError(f"{self.network} has a zone: FlowSpec prefixes have none")
        if self.offset:
            if self.network.version == 4:
                raise ValidationError("an offset is only defined for IPv6 prefixes")
            if not 0 < self.offset < plen:
                raise ValidationError(
                    f"offset {self.offset} must be below the prefix length {plen}"
                )
            bits = int(self.network.network_address)
            kept = bits & ((1 << (128 - self.offset)) - 1)
            if kept != bits:
                net = ipaddress.IPv6Network((kept, plen))
                object.__setattr__(self, "network", net)

    @property
    def family(self) -> Family:
        return Family.IPV4 if self.network.version == 4 else Family.IPV6

    def __str__(self) -> str:
        if not self._text:
            text = network_text(self.network)
            object.__setattr__(self, "_text", f"{text}/{self.offset}" if self.offset else text)
        return self._text


@functools.lru_cache(maxsize=4096)
def _parse_prefix(text: str) -> FlowPrefix:
    """:meth:`FlowPrefix.parse` without the field name. Cached: a FlowPrefix is an
    immutable value, and rules sent together often share a prefix (one victim, one
    source), which then costs a lookup instead of a parse."""
    spec = text.strip()
    offset = 0
    if spec.count("/") == 2:
        spec, _, off = spec.rpartition("/")
        try:
            offset = int(off)
        except ValueError:
            raise ValidationError(f"bad offset in {text!r}") from None
    # Straight to the right class: ip_network() tries IPv4 first, and a failed
    # parse costs more than the whole prefix (the API parses thousands a second).
    network_type = ipaddress.IPv6Network if ":" in spec else ipaddress.IPv4Network
    try:
        network = _network(network_type, spec)  # strict: refuses host bits
    except ValueError:
        try:
            loose = network_type(spec, strict=False)
        except ValueError:
            raise ValidationError(f"not a prefix: {text!r}") from None
        raise ValidationError(f"{text!r} has host bits set (did you mean {loose}?)") from None
    return FlowPrefix(network, offset)


def _check_terms(terms: tuple[Term, ...], spec: Component, family: Family) -> bool:
    """Check one component's terms; True when one of them is a numeric ``!=`` or ``true``
    (lt and gt both set: rewritten, see :func:`expand_not_equal`)."""
    keyword = spec.keyword
    if family not in spec.families:
        raise ValidationError(f"is only defined for {spec.families[0].value}", field=keyword)
    expected = NumericTerm if spec.numeric else BitmaskTerm
    not_equal = False
    for index, term in enumerate(terms):
        if not isinstance(term, expected):
            raise ValidationError(f"term {index + 1} is not a {expected.__name__}", field=keyword)
        if index == 0 and term.and_:
            raise ValidationError("the first term cannot be ANDed with a previous one", keyword)
        if not 0 <= term.value <= spec.maximum:
            raise ValidationError(
                f"value {term.value} is out of range 0..{spec.maximum}", field=keyword
            )
        if spec.numeric and is_lt_gt(term):
            not_equal = True
    if (
        spec.type is ComponentType.FRAGMENT
        and family is Family.IPV6
        and any(t.value & FRAGMENT_DONT for t in terms)
    ):
        raise ValidationError("dont-fragment does not exist in IPv6 (RFC 8956)", keyword)
    return not_equal


def _single_equal(terms: tuple[Term, ...]) -> int | None:
    """The value when a numeric component is exactly one ``=value`` term."""
    if len(terms) == 1 and isinstance(terms[0], NumericTerm) and terms[0].op == "=":
        return terms[0].value
    return None


@dataclass(frozen=True, slots=True)
class FlowMatch:
    """The match of a FlowSpec rule: the NLRI.

    Each component appears at most once and components are kept in type order, as
    RFC 8955 §4.2 requires; empty tuples and ``None`` mean "not matched on".

    A ``!=`` term is rewritten as ``<`` OR ``>``, a ``true`` one as ``<`` OR ``>=``
    (:func:`expand_not_equal`: FRR 8.4 resets the session on either), unless
    ``nlri`` is given: the bytes the match was decoded from (only
    :func:`~trafex.model.nlri.decode_nlri` passes them). Such a match keeps its terms as
    they came (a != stays lt|gt) and encodes to exactly those bytes, non-minimal value
    lengths and bits the RFCs tell a decoder to ignore included: its key is the NLRI a
    BGP speaker holds, and withdrawing it withdraws that NLRI. ``dataclasses.replace``
    on it builds a new, canonical match.
    """

    family: Family
    destination: FlowPrefix | None = None
    source: FlowPrefix | None = None
    protocol: tuple[NumericTerm, ...] = ()
    port: tuple[NumericTerm, ...] = ()
    destination_port: tuple[NumericTerm, ...] = ()
    source_port: tuple[NumericTerm, ...] = ()
    icmp_type: tuple[NumericTerm, ...] = ()
    icmp_code: tuple[NumericTerm, ...] = ()
    tcp_flags: tuple[BitmaskTerm, ...] = ()
    packet_length: tuple[NumericTerm, ...] = ()
    dscp: tuple[NumericTerm, ...] = ()
    fragment: tuple[BitmaskTerm, ...] = ()
    flow_label: tuple[NumericTerm, ...] = ()
    _: KW_ONLY
    nlri: InitVar[bytes | None] = None
    # The identity (compared: two matches with the same components may be two NLRIs).
    _key: str = field(default="", init=False, repr=False)
    _encoded: bytes = field(default=b"", init=False, repr=False, compare=False)

    MAX_NLRI_LENGTH: ClassVar[int] = 4095

    def __post_init__(self, nlri: bytes | None) -> None:
        # One walk over the components: checked, rewritten where needed, encoded. (A
        # rule from the API is built thousands of times a second.)
        out = bytearray()
        for ctype, name in (
            (ComponentType.DESTINATION, "destination"),
            (ComponentType.SOURCE, "source"),
        ):
            prefix = getattr(self, name)
            if prefix is not None:
                if prefix.family is not self.family:
                    raise ValidationError(
                        f"{prefix} is not an {self.family.value} prefix", field=name
                    )
                out.append(ctype)
                out += _encode_prefix(prefix)
        present = bool(out)
        for spec in TERM_COMPONENTS:
            terms = getattr(self, spec.attribute)
            if not terms:
                continue
            if not isinstance(terms, tuple):
                terms = tuple(terms)
                object.__setattr__(self, spec.attribute, terms)
            present = True
            # Checked as given, before != is rewritten (which clears the AND bit of
            # each chain's first term).
            not_equal = _check_terms(terms, spec, self.family)
            if nlri is None and not_equal:
                try:
                    terms = expand_not_equal(terms)
                except ValidationError as error:
                    raise ValidationError(error.message, field=spec.keyword) from None
                object.__setattr__(self, spec.attribute, terms)
            out.append(spec.type)
            out += _encode_terms(terms)
        if not present:
            raise ValidationError("a rule needs at least one match component")
        self._check_consistency()
        encoded = bytes(out) if nlri is None else bytes(nlri)
        if len(encoded) > self.MAX_NLRI_LENGTH:
            raise ValidationError(
                f"the NLRI is {len(encoded)} bytes, above the {self.MAX_NLRI_LENGTH} "
                "RFC 8955 allows"
            )
        object.__setattr__(self, "_encoded", encoded)
        object.__setattr__(self, "_key", f"{self.family.value}:{encoded.hex()}")

    def _check_consistency(self) -> None:
        """Refuse the combinations that can never match a packet."""
        proto = _single_equal(self.protocol)
        if proto is None:
            return
        icmp = icmp_protocol(self.family.version)
        if (self.icmp_type or self.icmp_code) and proto != icmp:
            raise ValidationError(
                f"icmp-type/icmp-code need protocol {icmp}, not {proto}", field="protocol"
            )
        if self.tcp_flags and proto != PROTO_TCP:
            raise ValidationError(f"tcp-flags need protocol tcp, not {proto}", field="protocol")

    @property
    def key(self) -> str:
        """The rule's identity: family and canonical NLRI bytes in hex."""
        return self._key

    def components(self) -> list[tuple[ComponentType, FlowPrefix | tuple[Term, ...]]]:
        """The present components, in type order."""
        out: list[tuple[ComponentType, FlowPrefix | tuple[Term, ...]]] = []
        if self.destination is not None:
            out.append((ComponentType.DESTINATION, self.destination))
        if self.source is not None:
            out.append((ComponentType.SOURCE, self.source))
        for spec in TERM_COMPONENTS:
            terms = getattr(self, spec.attribute)
            if terms:
                out.append((spec.type, terms))
        return out

    def encode(self) -> bytes:
        """The NLRI's component bytes (without the length prefix), RFC 8955/8956."""
        return self._encoded

    def wire(self) -> bytes:
        """The NLRI as on the wire, with its 1- or 2-byte length prefix."""
        return frame_nlri(self.encode())


def frame_nlri(body: bytes) -> bytes:
    """FlowSpec NLRI component bytes with their length prefix (RFC 8955 §4): one byte
    below 240, else two bytes 0xFnnn."""
    if len(body) < 240:
        return bytes([len(body)]) + body
    return struct.pack("!H", 0xF000 | len(body)) + body


def unframe_nlri(nlri: bytes) -> bytes:
    """The component bytes of a FlowSpec NLRI, without its 1- or 2-byte length prefix."""
    return nlri[2:] if nlri and nlri[0] >= 0xF0 else nlri[1:]


def _encode_prefix(prefix: FlowPrefix) -> bytes:
    plen = prefix.network.prefixlen
    address = prefix.network.network_address.packed
    if prefix.family is Family.IPV4:
        return bytes([plen]) + address[: math.ceil(plen / 8)]
    bits = int.from_bytes(address, "big")
    width = plen - prefix.offset
    nbytes = math.ceil(width / 8)
    pattern = (bits >> (128 - plen)) & ((1 << width) - 1) if width else 0
    pattern <<= nbytes * 8 - width
    return bytes([plen, prefix.offset]) + pattern.to_bytes(nbytes, "big")


def _value_length(value: int) -> int:
    for code, size in ((0, 1), (1, 2), (2, 4), (3, 8)):
        if value < 1 << (8 * size):
            return code
    raise ValidationError(f"value {value} does not fit in 8 bytes")


def _encode_terms(terms: tuple[Term, ...]) -> bytes:
    out = bytearray()
    last = len(terms) - 1
    for index, term in enumerate(terms):
        code = _value_length(term.value)
        op = (OP_END if index == last else 0) | (OP_AND if term.and_ else 0) | code << 4
        out.append(op | term.op_bits)
        out += term.value.to_bytes(1 << code, "big")
    return bytes(out)


@dataclass(frozen=True, slots=True)
class FlowRule:
    """A FlowSpec rule: what to match, what to do."""

    match: FlowMatch
    actions: FlowActions

    @property
    def key(self) -> str:
        return self.match.key

    @property
    def family(self) -> Family:
        return self.match.family
