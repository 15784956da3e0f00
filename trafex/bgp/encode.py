"""trafex's model ⇄ GoBGP 3.x API ``Path`` messages.

One of the two places where protobuf meets the model (the other is trafex's own API
servicer). Pure functions: no I/O.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from google.protobuf import any_pb2

from trafex.bgp.stubs import attribute_pb2, gobgp_pb2
from trafex.model.errors import TrafexError
from trafex.model.flowspec import (
    ATTRIBUTE,
    KEYWORD_OF_TYPE,
    OP_AND,
    BitmaskTerm,
    ComponentType,
    Family,
    FlowActions,
    FlowMatch,
    FlowPrefix,
    FlowRule,
    NumericTerm,
    RouteTarget,
    RouteTargetKind,
    term_from_op,
)
from trafex.model.route import UnicastRoute


class DecodeError(TrafexError):
    """A GoBGP path that trafex does not model (another family, an unknown attribute)."""


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


def _encode_terms(terms: tuple[NumericTerm | BitmaskTerm, ...]) -> list[Any]:
    items = []
    last = len(terms) - 1
    for index, term in enumerate(terms):
        op = term.op_bits | (OP_AND if term.and_ else 0) | (0x80 if index == last else 0)
        items.append(attribute_pb2.FlowSpecComponentItem(op=op, value=term.value))
    return items


def flowspec_nlri(match: FlowMatch) -> Any:
    rules: list[any_pb2.Any] = []
    for ctype, value in match.components():
        if isinstance(value, FlowPrefix):
            rules.append(
                _pack(
                    attribute_pb2.FlowSpecIPPrefix(
                        type=ctype,
                        prefix_len=value.network.prefixlen,
                        prefix=str(value.network.network_address),
                        offset=value.offset,
                    )
                )
            )
        else:
            rules.append(
                _pack(attribute_pb2.FlowSpecComponent(type=ctype, items=_encode_terms(value)))
            )
    return attribute_pb2.FlowSpecNLRI(rules=rules)


def _route_target(target: RouteTarget) -> Any:
    if target.kind is RouteTargetKind.AS2:
        return attribute_pb2.RedirectTwoOctetAsSpecificExtended(
            asn=int(target.global_admin), local_admin=target.local_admin
        )
    if target.kind is RouteTargetKind.AS4:
        return attribute_pb2.RedirectFourOctetAsSpecificExtended(
            asn=int(target.global_admin), local_admin=target.local_admin
        )
    return attribute_pb2.RedirectIPv4AddressSpecificExtended(
        address=str(target.global_admin), local_admin=target.local_admin
    )


def extended_communities(actions: FlowActions) -> list[any_pb2.Any]:
    out: list[any_pb2.Any] = []
    if actions.rate is not None:
        out.append(_pack(attribute_pb2.TrafficRateExtended(asn=0, rate=actions.rate)))
    if actions.sample or actions.terminal:
        out.append(
            _pack(
                attribute_pb2.TrafficActionExtended(
                    sample=actions.sample, terminal=actions.terminal
                )
            )
        )
    if actions.redirect is not None:
        out.append(_pack(_route_target(actions.redirect)))
    if actions.mark is not None:
        out.append(_pack(attribute_pb2.TrafficRemarkExtended(dscp=actions.mark)))
    return out


_ORIGIN = _pack(attribute_pb2.OriginAttribute(origin=ORIGIN_IGP))


def flow_path(rule: FlowRule | FlowMatch, *, withdraw: bool = False) -> Any:
    """The GoBGP path that announces ``rule``, or withdraws it (a match is enough)."""
    match = rule if isinstance(rule, FlowMatch) else rule.match
    family = _flowspec_family(match.family)
    nlri = _pack(flowspec_nlri(match))
    next_hop = "0.0.0.0" if match.family is Family.IPV4 else "::"
    pattrs = [
        _ORIGIN,
        _pack(
            attribute_pb2.MpReachNLRIAttribute(family=family, nlris=[nlri], next_hops=[next_hop])
        ),
    ]
    if not withdraw:
        assert isinstance(rule, FlowRule), "announcing needs the rule's actions"
        pattrs.append(
            _pack(
                attribute_pb2.ExtendedCommunitiesAttribute(
                    communities=extended_communities(rule.actions)
                )
            )
        )
    return gobgp_pb2.Path(family=family, nlri=nlri, pattrs=pattrs, is_withdraw=withdraw)


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


def _decode_match(nlri: Any, family: Family) -> FlowMatch:
    kwargs: dict[str, Any] = {}
    for packed in nlri.rules:
        message = _unpack(packed, attribute_pb2.FlowSpecIPPrefix, attribute_pb2.FlowSpecComponent)
        if message is None:
            raise DecodeError(f"unsupported FlowSpec component {packed.type_url}")
        ctype = ComponentType(message.type)
        keyword = KEYWORD_OF_TYPE[ctype]
        if isinstance(message, attribute_pb2.FlowSpecIPPrefix):
            network = ipaddress.ip_network(f"{message.prefix}/{message.prefix_len}", strict=False)
            kwargs[keyword] = FlowPrefix(network, message.offset)
            continue
        bitmask = ctype in (ComponentType.TCP_FLAGS, ComponentType.FRAGMENT)
        terms = [term_from_op(bitmask, item.op, item.value) for item in message.items]
        kwargs[ATTRIBUTE[keyword]] = tuple(terms)
    return FlowMatch(family, **kwargs)


def _decode_actions(pattrs: Any) -> FlowActions:
    rate: float | None = None
    redirect: RouteTarget | None = None
    mark: int | None = None
    sample = terminal = False
    for packed in pattrs:
        attr = _unpack(packed, attribute_pb2.ExtendedCommunitiesAttribute)
        if attr is None:
            continue
        for community in attr.communities:
            ext = _unpack(
                community,
                attribute_pb2.TrafficRateExtended,
                attribute_pb2.TrafficActionExtended,
                attribute_pb2.RedirectTwoOctetAsSpecificExtended,
                attribute_pb2.RedirectFourOctetAsSpecificExtended,
                attribute_pb2.RedirectIPv4AddressSpecificExtended,
                attribute_pb2.TrafficRemarkExtended,
            )
            if isinstance(ext, attribute_pb2.TrafficRateExtended):
                rate = ext.rate
            elif isinstance(ext, attribute_pb2.TrafficActionExtended):
                sample, terminal = ext.sample, ext.terminal
            elif isinstance(ext, attribute_pb2.RedirectTwoOctetAsSpecificExtended):
                redirect = RouteTarget(RouteTargetKind.AS2, ext.asn, ext.local_admin)
            elif isinstance(ext, attribute_pb2.RedirectFourOctetAsSpecificExtended):
                redirect = RouteTarget(RouteTargetKind.AS4, ext.asn, ext.local_admin)
            elif isinstance(ext, attribute_pb2.RedirectIPv4AddressSpecificExtended):
                redirect = RouteTarget(
                    RouteTargetKind.IPV4, ipaddress.IPv4Address(ext.address), ext.local_admin
                )
            elif isinstance(ext, attribute_pb2.TrafficRemarkExtended):
                mark = ext.dscp
    return FlowActions(rate=rate, redirect=redirect, mark=mark, sample=sample, terminal=terminal)


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
    """A GoBGP path back into the model (what GoBGP holds, for reconciling and tests)."""
    family = path.family
    if family.safi == _F.SAFI_FLOW_SPEC_UNICAST:
        fam = Family.IPV4 if family.afi == _F.AFI_IP else Family.IPV6
        nlri = _unpack(path.nlri, attribute_pb2.FlowSpecNLRI)
        if nlri is None:
            raise DecodeError(f"unsupported FlowSpec NLRI {path.nlri.type_url}")
        return FlowRule(_decode_match(nlri, fam), _decode_actions(path.pattrs))
    if family.safi == _F.SAFI_UNICAST and family.afi in (_F.AFI_IP, _F.AFI_IP6):
        return _decode_route(path, family.afi == _F.AFI_IP)
    raise DecodeError(f"unsupported family afi={family.afi} safi={family.safi}")
