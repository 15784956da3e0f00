"""Unicast routes (the talk's /32 and /128 announcements) as validated frozen values,
and their written forms: one line of text (:func:`route_text`) and JSON
(:func:`route_dict`, read back by :func:`route_from_dict`), both built from the parts'
text that :func:`parse_route` reads."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

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
    # The identity, built once: the table and the reconciler read it for every route.
    _key: str = field(default="", init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # ipaddress reads "fe80::1%eth0"; BGP carries no zone (GoBGP refuses the text).
        if self.prefix.version == 6 and self.prefix.network_address.scope_id:
            raise ValidationError(f"{self.prefix} has a zone: a route has none", "prefix")
        if isinstance(self.next_hop, ipaddress.IPv6Address) and self.next_hop.scope_id:
            raise ValidationError(f"{self.next_hop} has a zone: BGP carries none", "next-hop")
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
        object.__setattr__(self, "_key", f"{self.family}:{self.prefix}")

    @property
    def family(self) -> str:
        return "ipv4" if self.prefix.version == 4 else "ipv6"

    @property
    def key(self) -> str:
        """The route's identity: its prefix."""
        return self._key


def parse_route(
    prefix: str,
    next_hop: str = "",
    communities: Iterable[str] = (),
    large_communities: Iterable[str] = (),
    local_preference: int | None = None,
    med: int | None = None,
) -> UnicastRoute:
    """A route from its parts as text (the API's ``RouteSpec``, ``trafex-ctl``'s options,
    :func:`route_dict`): a bare address is a host route, an empty next-hop (or "self")
    is next-hop-self."""
    if not prefix:
        raise ValidationError("a route needs a prefix", field="prefix")
    hop = None
    if next_hop and next_hop != "self":
        try:
            hop = ipaddress.ip_address(next_hop)
        except ValueError:
            raise ValidationError(f"not an address: {next_hop!r}", "next-hop") from None
    return UnicastRoute(
        prefix=parse_prefix(prefix),
        next_hop=hop,
        communities=tuple(parse_community(c) for c in communities),
        large_communities=tuple(parse_large_community(c) for c in large_communities),
        local_preference=local_preference,
        med=med,
    )


# -- the two written forms of a route: one line of text, and JSON ------------------------


def route_text(route: UnicastRoute) -> str:
    """The route as one line, in ExaBGP's words:
    ``3001:10:66::5/128 next-hop self community [65000:666] med 5``."""
    parts = [str(route.prefix), "next-hop", str(route.next_hop) if route.next_hop else "self"]
    if route.communities:
        parts.append(f"community [{' '.join(map(format_community, route.communities))}]")
    if route.large_communities:
        texts = " ".join(map(format_large_community, route.large_communities))
        parts.append(f"large-community [{texts}]")
    if route.local_preference is not None:
        parts.append(f"local-preference {route.local_preference}")
    if route.med is not None:
        parts.append(f"med {route.med}")
    return " ".join(parts)


def route_dict(route: UnicastRoute) -> dict[str, Any]:
    """The route as JSON (the stable shape of ``trafex-ctl --json``): every key always
    present, communities as text, ``next_hop`` null for next-hop-self."""
    return {
        "family": route.family,
        "prefix": str(route.prefix),
        "next_hop": str(route.next_hop) if route.next_hop else None,
        "communities": [format_community(c) for c in route.communities],
        "large_communities": [format_large_community(c) for c in route.large_communities],
        "local_preference": route.local_preference,
        "med": route.med,
    }


# route_dict's keys (but family, which follows from the prefix): what each must hold.
_JSON_FIELDS: dict[str, tuple[Callable[[object], bool], str]] = {
    "prefix": (lambda v: isinstance(v, str), "a string"),
    "next_hop": (lambda v: v is None or isinstance(v, str), "a string or null"),
    "communities": (
        lambda v: isinstance(v, list) and all(isinstance(c, str) for c in v),
        "a list of strings",
    ),
    "large_communities": (
        lambda v: isinstance(v, list) and all(isinstance(c, str) for c in v),
        "a list of strings",
    ),
    "local_preference": (lambda v: v is None or _is_int(v), "an integer or null"),
    "med": (lambda v: v is None or _is_int(v), "an integer or null"),
}


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def route_from_dict(data: object) -> UnicastRoute:
    """The inverse of :func:`route_dict`; a ValidationError names the bad field."""
    if not isinstance(data, Mapping):
        raise ValidationError(f"a route is a JSON object, not {type(data).__name__}")
    unknown = sorted(set(data) - set(_JSON_FIELDS) - {"family"})
    if unknown:
        raise ValidationError("unknown field", field=unknown[0])
    for name, (check, expected) in _JSON_FIELDS.items():
        if name not in data:
            raise ValidationError("missing from the route", field=name)
        if not check(data[name]):
            raise ValidationError(f"expected {expected}, got {data[name]!r:.40}", field=name)
    route = parse_route(
        data["prefix"],
        data["next_hop"] or "",
        data["communities"],
        data["large_communities"],
        data["local_preference"],
        data["med"],
    )
    if data.get("family", route.family) != route.family:
        raise ValidationError(f"{route.prefix} is not an {data['family']} prefix", "family")
    return route
