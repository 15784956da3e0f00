"""trafex's model ⇄ GoBGP 3.x API ``Path`` messages.

One of the two places where protobuf meets the model (the other is trafex's own API
servicer). Pure functions: no I/O.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from google.protobuf import any_pb2

from trafex.bgp import attributes, prefix_form
from trafex.bgp.attributes import DecodeError
from trafex.bgp.stubs import attribute_pb2, gobgp_pb2
from trafex.model.errors import ValidationError
from trafex.model.flowspec import Family, FlowMatch, FlowRule, frame_nlri, unframe_nlri
from trafex.model.nlri import decode_nlri
from trafex.model.route import UnicastRoute

__all__ = [
    "FAMILIES",
    "DecodeError",
    "decode_path",
    "flow_path",
    "route_path",
]

_F = gobgp_pb2.Family
FAMILY_IPV4_UNICAST = _F(afi=_F.AFI_IP, safi=_F.SAFI_UNICAST)
FAMILY_IPV6_UNICAST = _F(afi=_F.AFI_IP6, safi=_F.SAFI_UNICAST)
FAMILY_IPV4_FLOWSPEC = _F(afi=_F.AFI_IP, safi=_F.SAFI_FLOW_SPEC_UNICAST)
FAMILY_IPV6_FLOWSPEC = _F(afi=_F.AFI_IP6, safi=_F.SAFI_FLOW_SPEC_UNICAST)

# trafex's family names (as in the config's `families`) → GoBGP families.
FAMILIES: dict[str, Any] = {
    "ipv4-unicast": FAMILY_IPV4_UNICAST,
    "ipv6-unicast": FAMILY_IPV6_UNICAST,
    "ipv4-flowspec": FAMILY_IPV4_FLOWSPEC,
    "ipv6-flowspec": FAMILY_IPV6_FLOWSPEC,
}

ORIGIN_IGP = 0


def _pack(message: Any) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


def _flowspec_family(family: Family) -> Any:
    return FAMILY_IPV4_FLOWSPEC if family is Family.IPV4 else FAMILY_IPV6_FLOWSPEC


def flow_path(rule: FlowRule | FlowMatch, *, withdraw: bool = False) -> Any:
    """The GoBGP path that announces ``rule``, or withdraws it (a match is enough).

    The NLRI and attributes go as bytes (see :mod:`trafex.bgp.attributes`): the NLRI
    is the canonical encoding trafex keys the rule by (in GoBGP's form for an IPv6
    prefix with an offset, see :mod:`trafex.bgp.prefix_form`).
    """
    match = rule if isinstance(rule, FlowMatch) else rule.match
    nlri = frame_nlri(prefix_form.to_gobgp(match.family, match.encode()))
    path = gobgp_pb2.Path(
        family=_flowspec_family(match.family), nlri_binary=nlri, is_withdraw=withdraw
    )
    if not withdraw:
        assert isinstance(rule, FlowRule), "announcing needs the rule's actions"
        path.pattrs_binary.extend(
            (
                attributes.ORIGIN_IGP,
                attributes.mp_reach_flowspec(match.family, nlri),
                attributes.extended_communities(rule.actions),
            )
        )
    return path


_ORIGIN = _pack(attribute_pb2.OriginAttribute(origin=ORIGIN_IGP))


def route_path(route: UnicastRoute, *, withdraw: bool = False) -> Any:
    """The GoBGP path that announces (or withdraws) a unicast route.

    An unset next-hop is sent as 0.0.0.0 / ``::``: GoBGP then puts its own session
    address (next-hop-self), as the talk's ``next-hop self`` did.
    """
    v4 = route.prefix.version == 4
    family = FAMILY_IPV4_UNICAST if v4 else FAMILY_IPV6_UNICAST
    nlri = _pack(
        attribute_pb2.IPAddressPrefix(
            prefix_len=route.prefix.prefixlen, prefix=str(route.prefix.network_address)
        )
    )
    next_hop = str(route.next_hop) if route.next_hop else ("0.0.0.0" if v4 else "::")
    pattrs = [_ORIGIN]
    if v4:
        pattrs.append(_pack(attribute_pb2.NextHopAttribute(next_hop=next_hop)))
    else:
        pattrs.append(
            _pack(
                attribute_pb2.MpReachNLRIAttribute(
                    family=family, nlris=[nlri], next_hops=[next_hop]
                )
            )
        )
    if route.communities:
        pattrs.append(
            _pack(attribute_pb2.CommunitiesAttribute(communities=list(route.communities)))
        )
    if route.large_communities:
        pattrs.append(
            _pack(
                attribute_pb2.LargeCommunitiesAttribute(
                    communities=[
                        attribute_pb2.LargeCommunity(global_admin=g, local_data1=a, local_data2=b)
                        for g, a, b in route.large_communities
                    ]
                )
            )
        )
    if route.local_preference is not None:
        pattrs.append(_pack(attribute_pb2.LocalPrefAttribute(local_pref=route.local_preference)))
    if route.med is not None:
        pattrs.append(_pack(attribute_pb2.MultiExitDiscAttribute(med=route.med)))
    return gobgp_pb2.Path(family=family, nlri=nlri, pattrs=pattrs, is_withdraw=withdraw)


# ---------------------------------------------------------------------------------------
# Decoding


def _unpack(packed: any_pb2.Any, *candidates: Any) -> Any:
    for cls in candidates:
        if packed.Is(cls.DESCRIPTOR):
            message = cls()
            packed.Unpack(message)
            return message
    return None


def _decode_route(path: Any, v4: bool) -> UnicastRoute:
    prefix_msg = _unpack(path.nlri, attribute_pb2.IPAddressPrefix)
    if prefix_msg is None:
        raise DecodeError(f"unsupported unicast NLRI {path.nlri.type_url}")
    prefix = ipaddress.ip_network(f"{prefix_msg.prefix}/{prefix_msg.prefix_len}")
    next_hop: ipaddress.IPv4Address | ipaddress.IPv6Address | None = None
    communities: tuple[int, ...] = ()
    large: tuple[tuple[int, int, int], ...] = ()
    local_pref: int | None = None
    med: int | None = None
    for packed in path.pattrs:
        attr = _unpack(
            packed,
            attribute_pb2.NextHopAttribute,
            attribute_pb2.MpReachNLRIAttribute,
            attribute_pb2.CommunitiesAttribute,
            attribute_pb2.LargeCommunitiesAttribute,
            attribute_pb2.LocalPrefAttribute,
            attribute_pb2.MultiExitDiscAttribute,
        )
        if isinstance(attr, attribute_pb2.NextHopAttribute):
            next_hop = ipaddress.ip_address(attr.next_hop)
        elif isinstance(attr, attribute_pb2.MpReachNLRIAttribute) and attr.next_hops:
            next_hop = ipaddress.ip_address(attr.next_hops[0])
        elif isinstance(attr, attribute_pb2.CommunitiesAttribute):
            communities = tuple(attr.communities)
        elif isinstance(attr, attribute_pb2.LargeCommunitiesAttribute):
            large = tuple((c.global_admin, c.local_data1, c.local_data2) for c in attr.communities)
        elif isinstance(attr, attribute_pb2.LocalPrefAttribute):
            local_pref = attr.local_pref
        elif isinstance(attr, attribute_pb2.MultiExitDiscAttribute):
            med = attr.med
    return UnicastRoute(prefix, next_hop, communities, large, local_pref, med)


def decode_path(path: Any) -> FlowRule | UnicastRoute:
    """A GoBGP path back into the model (what GoBGP holds, for reconciling and tests).

    FlowSpec paths must carry their binary NLRI and attributes (``ListPath`` with
    ``enable_only_binary``, or the paths :func:`flow_path` builds).
    """
    family = path.family
    if family.safi == _F.SAFI_FLOW_SPEC_UNICAST:
        fam = Family.IPV4 if family.afi == _F.AFI_IP else Family.IPV6
        if not path.nlri_binary:
            raise DecodeError("a FlowSpec path without its binary NLRI")
        try:
            body = prefix_form.from_gobgp(fam, unframe_nlri(path.nlri_binary))
            match = decode_nlri(fam, body)
        except (ValidationError, DecodeError) as error:
            raise DecodeError(f"FlowSpec NLRI trafex cannot model: {error}") from None
        return FlowRule(match, attributes.actions_from_attributes(path.pattrs_binary))
    if family.safi == _F.SAFI_UNICAST and family.afi in (_F.AFI_IP, _F.AFI_IP6):
        return _decode_route(path, family.afi == _F.AFI_IP)
    raise DecodeError(f"unsupported family afi={family.afi} safi={family.safi}")
