"""FlowSpec's address families and NLRI component types (RFC 8955 §4.2.2, RFC 8956 §3),
and :data:`COMPONENTS`: the one component table.

Like BIRD's ``flow4_type_str``/``flow6_type_str``, one table says for each component
its type code, keyword, kind of value, largest term value, families and help line, and
the model's checks (:class:`~trafex.model.flowspec.FlowMatch`), the NLRI codec
(:mod:`trafex.model.nlri`), the text grammar (:mod:`trafex.model.grammar`), the API
adapter, ``trafex-ctl``'s options and the tests all read it. Adding a component is one
row here (and its field in ``FlowMatch``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


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

    @property
    def version(self) -> int:
        """The IP version: 4 or 6."""
        return 4 if self is Family.IPV4 else 6


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


class ComponentKind(enum.Enum):
    """How a component's value is written: a prefix, or a list of operator/value terms
    compared as numbers (RFC 8955 §4.2.1.1) or as bitmasks (§4.2.1.2)."""

    PREFIX = "prefix"
    NUMERIC = "numeric"
    BITMASK = "bitmask"


_BOTH = (Family.IPV4, Family.IPV6)


@dataclass(frozen=True, slots=True)
class Component:
    """One NLRI component type: a row of :data:`COMPONENTS`.

    ``keyword`` is how trafex writes it (the grammar, JSON, the CLI's ``--keyword``
    option, validation errors' ``field``); ``aliases`` are other spellings the grammar
    reads. ``maximum`` is the largest value of one term (0 for the prefixes). ``help``
    is the line ``trafex-ctl --help`` shows for it.
    """

    type: ComponentType
    keyword: str
    kind: ComponentKind
    maximum: int
    help: str
    families: tuple[Family, ...] = _BOTH
    aliases: tuple[str, ...] = ()
    # Derived, as plain fields (read for every component of every rule): the FlowMatch
    # attribute that holds the component, and its kind as booleans.
    attribute: str = field(default="", init=False)
    numeric: bool = field(default=False, init=False)
    bitmask: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "attribute", self.keyword.replace("-", "_"))
        object.__setattr__(self, "numeric", self.kind is ComponentKind.NUMERIC)
        object.__setattr__(self, "bitmask", self.kind is ComponentKind.BITMASK)


_PREFIX, _NUMERIC, _BITMASK = ComponentKind.PREFIX, ComponentKind.NUMERIC, ComponentKind.BITMASK

#: Every FlowSpec component trafex knows, in type order (RFC 8955 §4.2.2, RFC 8956 §3):
#: the one table that the model's checks, the NLRI codec, the text grammar, the API
#: adapter, ``trafex-ctl``'s options and the tests read.
COMPONENTS: tuple[Component, ...] = (
    Component(
        ComponentType.DESTINATION,
        "destination",
        _PREFIX,
        0,
        "destination prefix: 3001:4:b::10/128, 192.0.2.0/24",
        aliases=("destination-ipv4", "destination-ipv6"),
    ),
    Component(
        ComponentType.SOURCE,
        "source",
        _PREFIX,
        0,
        "source prefix; IPv6 may add a bit offset: 3001::/64/8",
        aliases=("source-ipv4", "source-ipv6"),
    ),
    Component(
        ComponentType.PROTOCOL,
        "protocol",
        _NUMERIC,
        0xFF,
        "IP protocol (IPv6: upper-layer header), by name or number: tcp, '[ =6 =17 ]'",
        aliases=("next-header",),
    ),
    Component(
        ComponentType.PORT,
        "port",
        _NUMERIC,
        0xFFFF,
        "source or destination port: =80, '>=1024&<=2048'",
    ),
    Component(
        ComponentType.DESTINATION_PORT,
        "destination-port",
        _NUMERIC,
        0xFFFF,
        "destination port: =443, '=80 =443' (either)",
    ),
    Component(ComponentType.SOURCE_PORT, "source-port", _NUMERIC, 0xFFFF, "source port: '>=1024'"),
    Component(ComponentType.ICMP_TYPE, "icmp-type", _NUMERIC, 0xFF, "ICMP type: echo-request, =8"),
    Component(ComponentType.ICMP_CODE, "icmp-code", _NUMERIC, 0xFF, "ICMP code: =0"),
    Component(
        ComponentType.TCP_FLAGS,
        "tcp-flags",
        _BITMASK,
        0xFFFF,
        "TCP flags as letters FSRPAUEC or names: S (any of), =SA (all of), !A, syn+ack",
    ),
    Component(
        ComponentType.PACKET_LENGTH,
        "packet-length",
        _NUMERIC,
        0xFFFF,
        "IP packet length in bytes, header included: '>=1400'",
    ),
    Component(ComponentType.DSCP, "dscp", _NUMERIC, 0x3F, "DSCP: =46", aliases=("traffic-class",)),
    Component(
        ComponentType.FRAGMENT,
        "fragment",
        _BITMASK,
        0x0F,
        "is-fragment, first-fragment, last-fragment, dont-fragment (IPv4), not-a-fragment; "
        "'!' negates",
    ),
    Component(
        ComponentType.FLOW_LABEL,
        "flow-label",
        _NUMERIC,
        0xFFFFF,
        "IPv6 flow label: =5",
        families=(Family.IPV6,),
    ),
)
#: The components by keyword.
COMPONENT: dict[str, Component] = {c.keyword: c for c in COMPONENTS}
#: The components whose value is a list of terms (all but the two prefixes).
TERM_COMPONENTS = tuple(c for c in COMPONENTS if c.kind is not ComponentKind.PREFIX)
# FlowMatch attribute name for each term component's keyword.
ATTRIBUTE = {c.keyword: c.attribute for c in TERM_COMPONENTS}
#: The components by type code.
COMPONENT_OF_TYPE: dict[int, Component] = {int(c.type): c for c in COMPONENTS}

FRAGMENT_DONT = 0x01
FRAGMENT_IS = 0x02
FRAGMENT_FIRST = 0x04
FRAGMENT_LAST = 0x08

# The fragment component's bits by name (RFC 8955 §4.2.2.12), in rendering order.
FRAGMENT_NAMES = {
    "dont-fragment": FRAGMENT_DONT,
    "df": FRAGMENT_DONT,
    "is-fragment": FRAGMENT_IS,
    "isf": FRAGMENT_IS,
    "first-fragment": FRAGMENT_FIRST,
    "ff": FRAGMENT_FIRST,
    "last-fragment": FRAGMENT_LAST,
    "lf": FRAGMENT_LAST,
}
FRAGMENT_ORDER = ("dont-fragment", "is-fragment", "first-fragment", "last-fragment")
