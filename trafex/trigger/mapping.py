"""Detection → intents, per detector and configured action. Pure: no state, no I/O.

- ``dns``: the answer's addresses. Route: one /32 or /128 each. FlowSpec: a rule with
  ``destination`` the address (and, ``both_directions``, one with ``source`` it).
- ``retransmit``: the flagged flow direction. FlowSpec: ``source``/``destination``
  /32|/128, plus the protocol and ports its ``match`` asks for; ``both_directions``
  adds the same rule for the reverse direction (the talk's demo). Route: the
  destination's host route (and the source's, both directions).
- ``volumetric``: the flood's target. FlowSpec: ``destination`` the host, precise with
  what ``match`` takes from the evidence (the protocol of the flood's kind, its top
  destination or source port, one rule per top source). Route: the host route (RTBH
  with ``community = ["blackhole"]``).

Evidence that cannot make a valid intent raises :class:`ValueError` (the model's
:class:`~trafex.model.errors.ValidationError` is one); the policy counts it and goes on.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence

from trafex.detect.detection import Detection, JSONValue
from trafex.model.flowspec import (
    BitmaskTerm,
    Family,
    FlowMatch,
    FlowPrefix,
    FlowRule,
    NumericTerm,
)
from trafex.model.grammar import PROTOCOLS
from trafex.model.route import UnicastRoute
from trafex.trigger.config import DetectorPolicy
from trafex.trigger.intent import TriggerIntent

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

TCP, UDP, ICMP, ICMPV6 = 6, 17, 1, 58
TCP_SYN, TCP_ACK = 0x02, 0x10
FRAGMENT_IS = 0x02


def intents_for(detection: Detection, policy: DetectorPolicy) -> list[TriggerIntent]:
    """The intents ``policy`` makes of ``detection`` (before hold-down and rate limit)."""
    if policy.action == "none":
        return []
    build = _BUILDERS.get(detection.detector)
    if build is None:
        return []
    return build(detection, policy)


def _address(text: object) -> IPAddress | None:
    if not isinstance(text, str):
        return None
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _host(address: IPAddress) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ipaddress.ip_network(address)


def _family(address: IPAddress) -> Family:
    return Family.IPV4 if address.version == 4 else Family.IPV6


def _prefix(address: IPAddress) -> FlowPrefix:
    return FlowPrefix(_host(address))


def _eq(value: int) -> tuple[NumericTerm, ...]:
    return (NumericTerm.of("=", value),)


def _route(address: IPAddress, policy: DetectorPolicy, reason: str) -> TriggerIntent:
    action = policy.route
    assert action is not None
    route = UnicastRoute(
        prefix=_host(address),
        next_hop=action.next_hop_for(address.version),
        communities=action.communities,
        large_communities=action.large_communities,
        local_preference=action.local_preference,
        med=action.med,
    )
    return TriggerIntent(route, policy.ttl, reason, policy.detector)


def _rule(match: FlowMatch, policy: DetectorPolicy, reason: str) -> TriggerIntent:
    assert policy.flow is not None
    return TriggerIntent(FlowRule(match, policy.flow.actions), policy.ttl, reason, policy.detector)


def _evidence(detection: Detection) -> Mapping[str, JSONValue]:
    return detection.evidence.to_dict()


# -- dns --------------------------------------------------------------------------------


def _dns(detection: Detection, policy: DetectorPolicy) -> list[TriggerIntent]:
    ev = _evidence(detection)
    raw = ev.get("addresses")
    addresses: list[IPAddress] = []
    for text in raw if isinstance(raw, list) else []:
        address = _address(text)
        if address is not None and address not in addresses:
            addresses.append(address)
    out: list[TriggerIntent] = []
    for address in addresses:
        reason = (
            f"dns: {ev.get('qname')} -> {address} "
            f"(blocklisted {ev.get('blocked')}, client {ev.get('client')})"
        )
        if policy.action == "route":
            out.append(_route(address, policy, reason))
            continue
        family = _family(address)
        out.append(_rule(FlowMatch(family, destination=_prefix(address)), policy, reason))
        if policy.both_directions:
            match = FlowMatch(family, source=_prefix(address))
            out.append(_rule(match, policy, reason + " (from the address)"))
    return out


# -- retransmit -------------------------------------------------------------------------


def _protocol_number(name: object) -> int | None:
    if isinstance(name, int):
        return name
    if not isinstance(name, str) or not name:
        return None
    if name in PROTOCOLS:
        return PROTOCOLS[name]
    return int(name) if name.isdigit() else None


def _retransmit(detection: Detection, policy: DetectorPolicy) -> list[TriggerIntent]:
    flow = detection.flow
    if flow is None:
        return []
    src, dst = _address(flow.src), _address(flow.dst)
    if src is None or dst is None:
        return []
    ev = _evidence(detection)
    reason = (
        f"retransmit: {ev.get('retransmits')} retransmits "
        f"{flow.src}:{flow.sport} -> {flow.dst}:{flow.dport}"
    )
    reverse = reason + " (reverse direction)"
    if policy.action == "route":
        out = [_route(dst, policy, reason)]
        if policy.both_directions:
            out.append(_route(src, policy, reverse))
        return out
    assert policy.flow is not None
    wanted = policy.flow.match
    proto = _protocol_number(flow.proto) if "protocol" in wanted else None

    def match(a: IPAddress, b: IPAddress, sport: int, dport: int) -> FlowMatch:
        return FlowMatch(
            _family(a),
            destination=_prefix(b),
            source=_prefix(a),
            protocol=_eq(proto) if proto is not None else (),
            source_port=_eq(sport) if "source-port" in wanted else (),
            destination_port=_eq(dport) if "destination-port" in wanted else (),
        )

    out = [_rule(match(src, dst, flow.sport, flow.dport), policy, reason)]
    if policy.both_directions:
        out.append(_rule(match(dst, src, flow.dport, flow.sport), policy, reverse))
    return out


# -- volumetric -------------------------------------------------------------------------


def _top(ev: Mapping[str, JSONValue], key: str, field: str) -> list[Mapping[str, JSONValue]]:
    raw = ev.get(key)
    if not isinstance(raw, list):
        return []
    return [item for item in raw if isinstance(item, dict) and field in item]


def _volumetric(detection: Detection, policy: DetectorPolicy) -> list[TriggerIntent]:
    host = _address(detection.host)
    if host is None:
        return []
    ev = _evidence(detection)
    kind = ev.get("kind")
    reason = (
        f"volumetric: {kind} {ev.get('metric')} {_num(ev.get('rate'))} > "
        f"{_num(ev.get('threshold'))} towards {host} (group {ev.get('group')})"
    )
    if policy.action == "route":
        return [_route(host, policy, reason)]
    assert policy.flow is not None
    wanted = policy.flow.match
    family = _family(host)
    parts: dict[str, object] = {}
    proto: int | None = None
    if "protocol" in wanted:
        if kind == "tcp-syn":
            proto = TCP
            parts["tcp_flags"] = (
                BitmaskTerm(TCP_SYN, match=True),
                BitmaskTerm(TCP_ACK, not_=True, and_=True),
            )
        elif kind == "udp":
            proto = UDP
        elif kind == "icmp":
            proto = ICMP if family is Family.IPV4 else ICMPV6
        elif kind == "fragment":
            parts["fragment"] = (BitmaskTerm(FRAGMENT_IS),)
        else:
            proto = _protocol_number(ev.get("ip_proto"))
        if proto is not None:
            parts["protocol"] = _eq(proto)
    if kind != "fragment":
        for choice, key, attribute in (
            ("destination-port", "top_dst_ports", "destination_port"),
            ("source-port", "top_src_ports", "source_port"),
        ):
            if choice not in wanted:
                continue
            ports = _top(ev, key, "port")
            if not ports:
                continue
            top = ports[0]
            port_proto = _protocol_number(top.get("proto"))
            if proto is not None and port_proto != proto:
                continue  # the top port belongs to other traffic than the flood's protocol
            port = top["port"]
            if isinstance(port, int):
                parts[attribute] = _eq(port)
    sources: Sequence[IPAddress | None] = [None]
    if "source" in wanted:
        found = [_address(s.get("src")) for s in _top(ev, "top_sources", "src")]
        same = [a for a in found if a is not None and a.version == host.version]
        if same:
            sources = same
    out = []
    for source in sources:
        match = FlowMatch(
            family,
            destination=_prefix(host),
            source=_prefix(source) if source is not None else None,
            **parts,  # type: ignore[arg-type]
        )
        why = reason if source is None else f"{reason}, source {source}"
        out.append(_rule(match, policy, why))
    return out


def _num(value: object) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f"{value:.0f}"
    return str(value)


_BUILDERS = {"dns": _dns, "retransmit": _retransmit, "volumetric": _volumetric}
