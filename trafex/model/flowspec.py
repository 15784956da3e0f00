"""FlowSpec rules (RFC 8955 for IPv4, RFC 8956 for IPv6) as validated frozen values.

A rule is a :class:`FlowMatch` (the NLRI: one optional value per component type, so the
component order and uniqueness that RFC 8955 §4 demands hold by construction) and
:class:`FlowActions` (the traffic-filtering extended communities of RFC 8955 §7).

A match's identity is its NLRI encoding (:attr:`FlowMatch.key`): two matches that encode
to the same bytes are the same rule, so adding one again updates the rule's actions
instead of creating a second path. The encoding is canonical for the matches trafex
builds; a match decoded from NLRI bytes (:func:`trafex.model.nlri.decode_nlri`) keeps
those exact bytes, so that a rule received over BGP can be withdrawn by them.
"""

from __future__ import annotations

import enum
import functools
import ipaddress
import itertools
import math
import socket
import struct
from collections.abc import Iterable
from dataclasses import KW_ONLY, InitVar, dataclass, field, replace
from typing import ClassVar

from trafex.model.errors import ValidationError

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class Family(enum.Enum):
    """The FlowSpec address family: SAFI 133 with AFI 1 (IPv4) or AFI 2 (IPv6)."""

    IPV4 = "ipv4"
    IPV6 = "ipv6"

    @property
    def afi(self) -> int:
        return 1 if self is Family.IPV4 else 2

    @property
    def bits(self) -> int:
        return 32 if self is Family.IPV4 else 128


class ComponentType(enum.IntEnum):
    """NLRI component type codes (RFC 8955 §4.2.2, RFC 8956 §3)."""

    DESTINATION = 1
    SOURCE = 2
    PROTOCOL = 3
    PORT = 4
    DESTINATION_PORT = 5
    SOURCE_PORT = 6
    ICMP_TYPE = 7
    ICMP_CODE = 8
    TCP_FLAGS = 9
    PACKET_LENGTH = 10
    DSCP = 11
    FRAGMENT = 12
    FLOW_LABEL = 13


# Operator byte bits (RFC 8955 §4.2.1).
OP_END = 0x80
OP_AND = 0x40
OP_LEN_MASK = 0x30
OP_LT = 0x04
OP_GT = 0x02
OP_EQ = 0x01
OP_NOT = 0x02
OP_MATCH = 0x01

_NUMERIC_OPS: dict[str, tuple[bool, bool, bool]] = {
    # text: (lt, gt, eq)
    "=": (False, False, True),
    "!=": (True, True, False),
    "<": (True, False, False),
    "<=": (True, False, True),
    ">": (False, True, False),
    ">=": (False, True, True),
    "true": (True, True, True),
    "false": (False, False, False),
}
_NUMERIC_TEXT = {bits: text for text, bits in _NUMERIC_OPS.items()}


@dataclass(frozen=True, slots=True)
class NumericTerm:
    """One ``{operator, value}`` pair of a numeric component.

    ``and_`` joins the term to the previous one (logical AND); otherwise the term starts
    a new OR branch. ``>=1024&<=2048`` is ``(GE 1024), (LE 2048, and_)``.
    """

    lt: bool
    gt: bool
    eq: bool
    value: int
    and_: bool = False

    @classmethod
    def of(cls, op: str, value: int = 0, *, and_: bool = False) -> NumericTerm:
        """Build from an operator's text: ``= == != < <= > >= true false``."""
        bits = _NUMERIC_OPS.get("=" if op == "==" else op)
        if bits is None:
            raise ValidationError(f"unknown numeric operator {op!r}")
        return cls(*bits, value=value, and_=and_)

    @property
    def op(self) -> str:
        return _NUMERIC_TEXT[(self.lt, self.gt, self.eq)]

    @property
    def op_bits(self) -> int:
        return (OP_LT if self.lt else 0) | (OP_GT if self.gt else 0) | (OP_EQ if self.eq else 0)

    def matches(self, value: int) -> bool:
        """Whether ``value`` satisfies this single term (RFC 8955 §4.2.1.1)."""
        return (
            (self.lt and value < self.value)
            or (self.gt and value > self.value)
            or (self.eq and value == self.value)
        )


@dataclass(frozen=True, slots=True)
class BitmaskTerm:
    """One ``{operator, value}`` pair of a bitmask component (tcp-flags, fragment).

    ``match`` set: all bits of ``value`` must be set in the packet ("=S"); unset: any of
    them ("S"). ``not_`` negates the result ("!S", "!=SA").
    """

    value: int
    match: bool = False
    not_: bool = False
    and_: bool = False

    @property
    def op_bits(self) -> int:
        return (OP_NOT if self.not_ else 0) | (OP_MATCH if self.match else 0)

    def matches(self, bits: int) -> bool:
        hit = (bits & self.value) == self.value if self.match else bool(bits & self.value)
        return hit != self.not_


Term = NumericTerm | BitmaskTerm


def term_from_op(bitmask: bool, op: int, value: int) -> Term:
    """A term from its operator byte (RFC 8955 §4.2.1; the length bits are ignored)."""
    and_ = bool(op & OP_AND)
    if bitmask:
        return BitmaskTerm(value, match=bool(op & OP_MATCH), not_=bool(op & OP_NOT), and_=and_)
    return NumericTerm(bool(op & OP_LT), bool(op & OP_GT), bool(op & OP_EQ), value, and_)


def evaluate(terms: Iterable[Term], value: int) -> bool:
    """Evaluate an operator list: AND-chains, ORed together, left to right."""
    result = False
    branch: bool | None = None
    for term in terms:
        hit = term.matches(value)
        if term.and_ and branch is not None:
            branch = branch and hit
        else:
            result = result or bool(branch)
            branch = hit
    return result or bool(branch)


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


# Per component: keyword, maximum value, families, numeric (else bitmask).
@dataclass(frozen=True, slots=True)
class _Spec:
    type: ComponentType
    keyword: str
    maximum: int
    numeric: bool = True
    families: tuple[Family, ...] = (Family.IPV4, Family.IPV6)
    # The FlowMatch attribute that holds this component's terms.
    attribute: str = field(default="", init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "attribute", self.keyword.replace("-", "_"))


_SPECS: dict[str, _Spec] = {
    s.keyword: s
    for s in (
        _Spec(ComponentType.PROTOCOL, "protocol", 0xFF),
        _Spec(ComponentType.PORT, "port", 0xFFFF),
        _Spec(ComponentType.DESTINATION_PORT, "destination-port", 0xFFFF),
        _Spec(ComponentType.SOURCE_PORT, "source-port", 0xFFFF),
        _Spec(ComponentType.ICMP_TYPE, "icmp-type", 0xFF),
        _Spec(ComponentType.ICMP_CODE, "icmp-code", 0xFF),
        _Spec(ComponentType.TCP_FLAGS, "tcp-flags", 0xFFFF, numeric=False),
        _Spec(ComponentType.PACKET_LENGTH, "packet-length", 0xFFFF),
        _Spec(ComponentType.DSCP, "dscp", 0x3F),
        _Spec(ComponentType.FRAGMENT, "fragment", 0x0F, numeric=False),
        _Spec(ComponentType.FLOW_LABEL, "flow-label", 0xFFFFF, families=(Family.IPV6,)),
    )
}
# FlowMatch attribute name for each keyword.
ATTRIBUTE = {keyword: spec.attribute for keyword, spec in _SPECS.items()}
_SPEC_LIST = tuple(sorted(_SPECS.values(), key=lambda spec: spec.type))
KEYWORD_OF_TYPE: dict[ComponentType, str] = {
    ComponentType.DESTINATION: "destination",
    ComponentType.SOURCE: "source",
    **{s.type: s.keyword for s in _SPECS.values()},
}

FRAGMENT_DONT = 0x01
FRAGMENT_IS = 0x02
FRAGMENT_FIRST = 0x04
FRAGMENT_LAST = 0x08

IANA_ICMP = 1
IANA_TCP = 6
IANA_ICMPV6 = 58


def _check_terms(keyword: str, terms: tuple[Term, ...], spec: _Spec, family: Family) -> bool:
    """Check one component's terms; True when one of them is a numeric ``!=``."""
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
        if spec.numeric and _is_ne(term):
            not_equal = True
    if (
        spec.type is ComponentType.FRAGMENT
        and family is Family.IPV6
        and any(t.value & FRAGMENT_DONT for t in terms)
    ):
        raise ValidationError("dont-fragment does not exist in IPv6 (RFC 8956)", keyword)
    return not_equal


MAX_NE_PER_CHAIN = 4
# The OR-branches one AND-chain may become: each != in it doubles them.
MAX_NE_BRANCHES = 1 << MAX_NE_PER_CHAIN


def _is_ne(term: Term) -> bool:
    return isinstance(term, NumericTerm) and term.lt and term.gt and not term.eq


def expand_not_equal(terms: tuple[NumericTerm, ...]) -> tuple[NumericTerm, ...]:
    """Rewrite ``!=v`` as the equivalent ``<v`` OR ``>v``, distributed over AND-chains.

    RFC 8955 allows the lt|gt operator, but FRR 8.4 answers it with an UPDATE error
    NOTIFICATION that resets the session (every rule on it is lost). ``<v >v`` means
    the same to every receiver. An AND-chain may hold :data:`MAX_NE_PER_CHAIN` != terms
    (it becomes :data:`MAX_NE_BRANCHES` branches); more are refused. The terms are not
    otherwise checked (``FlowMatch`` checks them first).
    """
    if not any(_is_ne(t) for t in terms):
        return terms
    chains: list[list[NumericTerm]] = []
    for term in terms:
        if term.and_ and chains:
            chains[-1].append(term)
        else:
            chains.append([term])
    out: list[NumericTerm] = []
    for chain in chains:
        count = sum(1 for t in chain if _is_ne(t))
        if count > MAX_NE_PER_CHAIN:
            raise ValidationError(
                f"too many != terms in one AND-chain: {count}, at most {MAX_NE_PER_CHAIN} "
                "(each doubles the branches it is written as, with < and >)"
            )
        options = [
            [
                NumericTerm(True, False, False, t.value),
                NumericTerm(False, True, False, t.value),
            ]
            if _is_ne(t)
            else [t]
            for t in chain
        ]
        for combo in itertools.product(*options):
            out.extend(replace(t, and_=index > 0) for index, t in enumerate(combo))
    return tuple(out)


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

    A ``!=`` term is rewritten as ``<`` OR ``>`` (:func:`expand_not_equal`), unless
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
        for spec in _SPEC_LIST:
            terms = getattr(self, spec.attribute)
            if not terms:
                continue
            if not isinstance(terms, tuple):
                terms = tuple(terms)
                object.__setattr__(self, spec.attribute, terms)
            present = True
            # Checked as given, before != is rewritten (which clears the AND bit of
            # each chain's first term).
            not_equal = _check_terms(spec.keyword, terms, spec, self.family)
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
        icmp = IANA_ICMP if self.family is Family.IPV4 else IANA_ICMPV6
        if (self.icmp_type or self.icmp_code) and proto != icmp:
            raise ValidationError(
                f"icmp-type/icmp-code need protocol {icmp}, not {proto}", field="protocol"
            )
        if self.tcp_flags and proto != IANA_TCP:
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
        for keyword, spec in _SPECS.items():
            terms = getattr(self, ATTRIBUTE[keyword])
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


# ---------------------------------------------------------------------------------------
# Actions


class RouteTargetKind(enum.Enum):
    """The three redirect extended communities (RFC 8955 §7.4, RFC 7674)."""

    AS2 = "as2"  # type 0x8008: 2-byte ASN, 4-byte local
    IPV4 = "ipv4"  # type 0x8108: IPv4 address, 2-byte local
    AS4 = "as4"  # type 0x8208: 4-byte ASN, 2-byte local


@dataclass(frozen=True, slots=True)
class RouteTarget:
    """The route-target a redirect action points at (``6:302``, ``192.0.2.1:7``)."""

    kind: RouteTargetKind
    global_admin: int | ipaddress.IPv4Address
    local_admin: int

    def __post_init__(self) -> None:
        if self.kind is RouteTargetKind.IPV4:
            if not isinstance(self.global_admin, ipaddress.IPv4Address):
                raise ValidationError("an IPv4 route-target needs an IPv4 address", "redirect")
            local_max = 0xFFFF
        else:
            if not isinstance(self.global_admin, int):
                raise ValidationError("an AS route-target needs an AS number", "redirect")
            asn_max = 0xFFFF if self.kind is RouteTargetKind.AS2 else 0xFFFFFFFF
            if not 0 <= self.global_admin <= asn_max:
                raise ValidationError(f"AS {self.global_admin} is out of range", "redirect")
            local_max = 0xFFFFFFFF if self.kind is RouteTargetKind.AS2 else 0xFFFF
        if not 0 <= self.local_admin <= local_max:
            raise ValidationError(
                f"local part {self.local_admin} is out of range 0..{local_max}", "redirect"
            )

    @classmethod
    def parse(cls, text: str) -> RouteTarget:
        """``ASN2:NN``, ``ASN4:NN`` (an ASN above 65535, or written ``65000L:NN``), ``IPv4:NN``."""
        spec = text.strip()
        for prefix in ("target:", "rt:", "RT:"):
            spec = spec.removeprefix(prefix)
        glob, sep, local_text = spec.rpartition(":")
        if not sep or not glob:
            raise ValidationError(f"{text!r} is not ASN:NN or IPv4:NN", field="redirect")
        try:
            local = int(local_text)
        except ValueError:
            raise ValidationError(f"bad local part in {text!r}", field="redirect") from None
        if "." in glob:
            try:
                address = ipaddress.IPv4Address(glob)
            except ValueError:
                raise ValidationError(f"bad IPv4 address in {text!r}", "redirect") from None
            return cls(RouteTargetKind.IPV4, address, local)
        force4 = glob.upper().endswith("L")
        try:
            asn = int(glob[:-1] if force4 else glob)
        except ValueError:
            raise ValidationError(f"bad AS number in {text!r}", field="redirect") from None
        kind = RouteTargetKind.AS4 if force4 or asn > 0xFFFF else RouteTargetKind.AS2
        return cls(kind, asn, local)

    def __str__(self) -> str:
        suffix = (
            "L" if self.kind is RouteTargetKind.AS4 and int(self.global_admin) <= 0xFFFF else ""
        )
        return f"{self.global_admin}{suffix}:{self.local_admin}"


def float32(value: float) -> float:
    """``value`` as the IEEE-754 single precision number the wire carries."""
    result: float = struct.unpack("!f", struct.pack("!f", value))[0]
    return result


@dataclass(frozen=True, slots=True)
class FlowActions:
    """The actions of a rule (RFC 8955 §7): at most one of each kind.

    ``rate`` is in bytes per second (0 = discard), stored as the float32 the wire
    carries. Discard combines only with sample/terminal.
    """

    rate: float | None = None
    redirect: RouteTarget | None = None
    mark: int | None = None
    sample: bool = False
    terminal: bool = False

    def __post_init__(self) -> None:
        if self.rate is not None:
            if not math.isfinite(self.rate) or self.rate < 0:
                raise ValidationError(f"{self.rate} is not a rate in bytes/s", "rate-limit")
            if self.rate > 3.4e38:
                raise ValidationError(f"{self.rate} bytes/s does not fit a float32", "rate-limit")
            object.__setattr__(self, "rate", float32(self.rate))
        if self.mark is not None and not 0 <= self.mark <= 63:
            raise ValidationError(f"DSCP {self.mark} is out of range 0..63", field="mark")
        if not (
            self.rate is not None
            or self.redirect is not None
            or self.mark is not None
            or self.sample
            or self.terminal
        ):
            raise ValidationError(
                "a rule needs an action: discard, rate-limit, redirect, mark or action"
            )
        if self.discard and (self.redirect is not None or self.mark is not None):
            raise ValidationError(
                "discard cannot be combined with redirect or mark", field="discard"
            )

    @property
    def discard(self) -> bool:
        return self.rate == 0.0


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
