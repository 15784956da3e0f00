"""Unicast routes (the talk's /32 and /128 announcements) as validated frozen values."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from trafex.model.errors import ValidationError

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# RFC 1997, RFC 7999, RFC 8326 well-known communities.
WELL_KNOWN_COMMUNITIES = {
    "graceful-shutdown": 0xFFFF0000,
    "accept-own": 0xFFFF0001,
    "blackhole": 0xFFFF029A,
    "no-export": 0xFFFFFF01,
    "no-advertise": 0xFFFFFF02,
    "no-export-subconfed": 0xFFFFFF03,
    "no-peer": 0xFFFFFF04,
}
_WELL_KNOWN_NAMES = {value: name for name, value in WELL_KNOWN_COMMUNITIES.items()}
_U32 = 0xFFFFFFFF


def parse_community(text: str) -> int:
    """``65000:666`` or a well-known name (``no-export``, ``blackhole`` ...) → 32-bit value."""
    spec = text.strip().lower()
    if spec in WELL_KNOWN_COMMUNITIES:
        return WELL_KNOWN_COMMUNITIES[spec]
    high, sep, low = spec.partition(":")
    try:
        hi, lo = int(high), int(low)
    except ValueError:
        raise ValidationError(f"{text!r} is not ASN:NN or a well-known name", "community") from None
    if not sep or not (0 <= hi <= 0xFFFF and 0 <= lo <= 0xFFFF):
        raise ValidationError(f"{text!r} is not ASN:NN with 16-bit parts", "community")
    return hi << 16 | lo


def format_community(value: int) -> str:
    return _WELL_KNOWN_NAMES.get(value, f"{value >> 16}:{value & 0xFFFF}")


def parse_large_community(text: str) -> tuple[int, int, int]:
    """``65000:1:2`` (RFC 8092: three 32-bit parts)."""
    parts = text.strip().split(":")
    try:
        values = tuple(int(p) for p in parts)
    except ValueError:
        raise ValidationError(f"{text!r} is not ASN:NN:NN", "large-community") from None
    if len(values) != 3 or not all(0 <= v <= _U32 for v in values):
        raise ValidationError(f"{text!r} is not ASN:NN:NN with 32-bit parts", "large-community")
    return values[0], values[1], values[2]


def format_large_community(value: tuple[int, int, int]) -> str:
    return ":".join(str(v) for v in value)


def parse_prefix(text: str) -> IPNetwork:
    """A prefix, or a bare address as its host route; host bits set is an error."""
    spec = text.strip()
    try:
        network = ipaddress.ip_network(spec, strict=True)
    except ValueError as error:
        try:
            loose = ipaddress.ip_network(spec, strict=False)
        except ValueError:
            raise ValidationError(f"not a prefix: {text!r}", field="prefix") from error
        raise ValidationError(
            f"{text!r} has host bits set (did you mean {loose}?)", field="prefix"
        ) from error
    return network


@dataclass(frozen=True, slots=True)
class UnicastRoute:
    """An IPv4 or IPv6 unicast route to announce.

    ``next_hop`` None means the sidecar's own address (next-hop-self). Communities are
    kept sorted and unique, so equal routes compare equal. ``local_preference`` is only
    carried on iBGP sessions (GoBGP strips it towards eBGP peers).
    """

    prefix: IPNetwork
    next_hop: IPAddress | None = None
    communities: tuple[int, ...] = ()
    large_communities: tuple[tuple[int, int, int], ...] = ()
    local_preference: int | None = None
    med: int | None = None

    def __post_init__(self) -> None:
        if self.next_hop is not None:
            if self.next_hop.version != self.prefix.version:
                raise ValidationError(
                    f"next-hop {self.next_hop} is not an IPv{self.prefix.version} address",
                    field="next-hop",
                )
            if self.next_hop.is_unspecified:
                object.__setattr__(self, "next_hop", None)
        for value in self.communities:
            if not 0 <= value <= _U32:
                raise ValidationError(f"{value} is not a 32-bit community", "community")
        for name in ("local_preference", "med"):
            value = getattr(self, name)
            if value is not None and not 0 <= value <= _U32:
                raise ValidationError(f"{value} is out of range 0..{_U32}", name.replace("_", "-"))
        object.__setattr__(self, "communities", tuple(sorted(set(self.communities))))
        object.__setattr__(self, "large_communities", tuple(sorted(set(self.large_communities))))

    @property
    def family(self) -> str:
        return "ipv4" if self.prefix.version == 4 else "ipv6"

    @property
    def key(self) -> str:
        """The route's identity: its prefix."""
        return f"{self.family}:{self.prefix}"
