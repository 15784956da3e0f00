"""Unit tests for trafex.trigger.mapping: each detector and action → the intents."""

from __future__ import annotations

from ipaddress import ip_address as ip

import pytest

from trafex.detect.detection import Detection, FlowDirection
from trafex.detect.detectors.dns import DnsEvidence
from trafex.detect.detectors.retransmit import RetransmitEvidence
from trafex.detect.detectors.volumetric import VolumetricEvidence
from trafex.model.flowspec import FlowRule
from trafex.model.grammar import parse_rule
from trafex.model.protocols import protocol_number
from trafex.model.route import UnicastRoute
from trafex.trigger.config import DetectorPolicy, parse_trigger
from trafex.trigger.intent import TriggerIntent
from trafex.trigger.mapping import intents_for

H1, H4, BAD = "3001:1:a::10", "3001:4:b::10", "3001:10:66::5"


def policy(detector: str, **table: object) -> DetectorPolicy:
    config = parse_trigger({"trigger": {detector: table}})
    return config.detectors[detector]


def dns(*addresses: str) -> Detection:
    answers = tuple(ip(a) for a in addresses)
    evidence = DnsEvidence("badhacks.com.", answers, ip(H1), ip("3001:10::53"), "badhacks.com")
    flow = FlowDirection(ip("3001:10::53"), 53, ip(H1), 33333, 17)
    return Detection("dns", 100.0, evidence, flow=flow, host=ip(H1))


def retransmit(src: str = H1, dst: str = H4) -> Detection:
    flow = FlowDirection(ip(src), 58719, ip(dst), 443, 6)
    return Detection("retransmit", 100.0, RetransmitEvidence(5, 3), flow=flow)


def _proto(name: str) -> int:
    number = protocol_number(name)
    assert number is not None
    return number


def volumetric(
    kind: str = "udp",
    host: str = "192.0.2.80",
    ip_proto: str | None = "udp",
    sources: tuple[tuple[str, int], ...] = (("198.51.100.1", 900), ("198.51.100.2", 50)),
    dports: tuple[tuple[str, int, int], ...] = (("udp", 123, 800),),
    sports: tuple[tuple[str, int, int], ...] = (("udp", 53, 700),),
) -> Detection:
    evidence = VolumetricEvidence(
        group="web",
        kind=kind,
        metric="pps",
        rate=12000.0,
        threshold=5000.0,
        window=10.0,
        ip_proto=_proto(ip_proto) if ip_proto is not None else None,
        top_sources=tuple((ip(s), n) for s, n in sources),
        top_dst_ports=tuple((_proto(p), port, n) for p, port, n in dports),
        top_src_ports=tuple((_proto(p), port, n) for p, port, n in sports),
    )
    return Detection("volumetric", 100.0, evidence, host=ip(host))


def texts(intents: list[TriggerIntent]) -> list[str]:
    return [i.text() for i in intents]


def rule(text: str) -> FlowRule:
    return parse_rule(text)


def test_dns_route_per_answer_address() -> None:
    """The talk's demo: a /128 (and a /32 for an A record), next-hop self, origin dns."""
    intents = intents_for(dns(BAD, "192.0.2.5", BAD), policy("dns"))
    assert texts(intents) == [f"{BAD}/128 next-hop self", "192.0.2.5/32 next-hop self"]
    assert all(isinstance(i.item, UnicastRoute) and i.item.next_hop is None for i in intents)
    first = intents[0]
    assert (first.origin, first.ttl, first.kind) == ("dns", 3600.0, "route")
    assert first.reason == f"dns: badhacks.com. -> {BAD} (blocklisted badhacks.com, client {H1})"


def test_dns_route_attributes_and_next_hop_per_family() -> None:
    """Communities go on every route; a configured next-hop only on its own family."""
    p = policy("dns", community=["65000:666"], next_hop="192.0.2.1", med=7)
    v6, v4 = intents_for(dns(BAD, "198.51.100.9"), p)
    assert v6.text() == f"{BAD}/128 next-hop self community [65000:666] med 7"
    assert v4.text() == "198.51.100.9/32 next-hop 192.0.2.1 community [65000:666] med 7"


def test_dns_flowspec_towards_and_from_the_address() -> None:
    """FlowSpec: destination = the address; both_directions adds source = the address."""
    p = policy("dns", action="flowspec", both_directions=True)
    intents = intents_for(dns(BAD), p)
    assert [i.item for i in intents] == [
        rule(f"destination {BAD}/128 redirect 6:302"),
        rule(f"source {BAD}/128 redirect 6:302"),
    ]


def test_retransmit_both_directions_by_default() -> None:
    """The talk's second demo: the flow and its reverse, /128s, protocol tcp, 6:302."""
    intents = intents_for(retransmit(), policy("retransmit"))
    assert [i.item for i in intents] == [
        rule(f"source {H1}/128 destination {H4}/128 protocol =tcp redirect 6:302"),
        rule(f"source {H4}/128 destination {H1}/128 protocol =tcp redirect 6:302"),
    ]
    assert intents[0].reason == f"retransmit: 5 retransmits {H1}:58719 -> {H4}:443"
    assert intents[1].reason.endswith("(reverse direction)")
    assert {i.origin for i in intents} == {"retransmit"}
    assert intents[0].ttl == 600.0


def test_retransmit_exact_ports_one_direction_ipv4() -> None:
    """With the ports in ``match`` the reverse rule swaps them; IPv4 flows get /32s."""
    p = policy("retransmit", match=["source-port", "destination-port"], discard=True)
    fwd, rev = intents_for(retransmit("10.1.0.1", "10.2.0.2"), p)
    assert fwd.item == rule(
        "source 10.1.0.1/32 destination 10.2.0.2/32 source-port =58719 destination-port =443 "
        "discard"
    )
    assert rev.item == rule(
        "source 10.2.0.2/32 destination 10.1.0.1/32 source-port =443 destination-port =58719 "
        "discard"
    )
    one = intents_for(retransmit(), policy("retransmit", both_directions=False, mark=46))
    assert texts(one) == [f"destination {H4}/128 source {H1}/128 protocol =tcp mark 46"]


def test_retransmit_route_action() -> None:
    """action = "route": the destination's host route, and the source's for both."""
    intents = intents_for(retransmit(), policy("retransmit", action="route"))
    assert texts(intents) == [f"{H4}/128 next-hop self", f"{H1}/128 next-hop self"]


def test_volumetric_default_discards_the_protocol_towards_the_host() -> None:
    """Default: destination host, the flood's protocol, discard."""
    (intent,) = intents_for(volumetric(), policy("volumetric"))
    assert intent.item == rule("destination 192.0.2.80/32 protocol =udp discard")
    assert intent.reason == "volumetric: udp pps 12000 > 5000 towards 192.0.2.80 (group web)"


@pytest.mark.parametrize(
    ("kind", "ip_proto", "host", "expected"),
    [
        ("tcp-syn", "tcp", "192.0.2.80", "protocol =tcp tcp-flags =S&!A"),
        ("icmp", "icmp", "192.0.2.80", "protocol =icmp"),
        ("icmp", "ipv6-icmp", "3001:4:b::10", "protocol =58"),
        ("fragment", "udp", "192.0.2.80", "fragment is-fragment"),
        ("all", "gre", "192.0.2.80", "protocol =gre"),
        ("all", None, "192.0.2.80", ""),
    ],
)
def test_volumetric_protocol_from_the_kind(
    kind: str, ip_proto: str | None, host: str, expected: str
) -> None:
    """Each kind of flood gets the match that selects it."""
    bits = 32 if "." in host else 128
    (intent,) = intents_for(
        volumetric(kind, host=host, ip_proto=ip_proto, dports=(), sports=()),
        policy("volumetric", rate_limit=1000),
    )
    assert intent.item == rule(f"destination {host}/{bits} {expected} rate-limit 1000")


def test_volumetric_precise_ports_and_sources() -> None:
    """match with ports and sources: the top ports, one rule per top source."""
    p = policy(
        "volumetric", match=["protocol", "destination-port", "source-port", "source"], discard=True
    )
    intents = intents_for(volumetric(), p)
    assert [i.item for i in intents] == [
        rule(
            f"destination 192.0.2.80/32 source {src}/32 protocol =udp destination-port =123 "
            "source-port =53 discard"
        )
        for src in ("198.51.100.1", "198.51.100.2")
    ]
    assert intents[0].reason.endswith(", source 198.51.100.1")


def test_volumetric_port_of_another_protocol_is_left_out() -> None:
    """A top port of TCP traffic does not go into a rule for a UDP flood."""
    p = policy("volumetric", match=["protocol", "destination-port"], discard=True)
    (intent,) = intents_for(volumetric(dports=(("tcp", 443, 10),)), p)
    assert intent.item == rule("destination 192.0.2.80/32 protocol =udp discard")


def test_volumetric_whole_host_and_rtbh_route() -> None:
    """match = []: everything towards the host; action = "route": a blackhole route."""
    (whole,) = intents_for(volumetric(), policy("volumetric", match=[], rate_limit=125000))
    assert whole.item == rule("destination 192.0.2.80/32 rate-limit 125000")
    (rtbh,) = intents_for(
        volumetric(), policy("volumetric", action="route", community=["blackhole"])
    )
    assert rtbh.text() == "192.0.2.80/32 next-hop self community [blackhole]"


def test_action_none_and_unknown_detector_give_nothing() -> None:
    """action = "none" turns a detector's trigger off; other detectors map to nothing."""
    assert intents_for(dns(BAD), policy("dns", action="none")) == []
    other = Detection("ttl", 1.0, RetransmitEvidence(1, 1), host=ip(H1))
    assert intents_for(other, policy("dns")) == []


def test_bad_evidence_raises_value_error() -> None:
    """Evidence that makes no valid intent raises ValueError (the policy counts it)."""
    flow = FlowDirection(ip(H1), 1, ip("10.0.0.1"), 2, 6)  # mixed families
    with pytest.raises(ValueError):
        intents_for(Detection("retransmit", 1.0, RetransmitEvidence(3, 3), flow=flow),
                    policy("retransmit"))  # fmt: skip


def test_repeated_answers_and_missing_flow_give_one_or_no_intent() -> None:
    """An address the answer repeats gives one intent; a retransmit detection without a
    flow, or evidence of another detector, gives none."""
    assert texts(intents_for(dns(BAD, BAD), policy("dns"))) == [f"{BAD}/128 next-hop self"]
    mixed = Detection("dns", 1.0, RetransmitEvidence(3, 3), host=ip(H1))
    assert intents_for(mixed, policy("dns")) == []
    bare = Detection("retransmit", 1.0, RetransmitEvidence(3, 3))
    assert intents_for(bare, policy("retransmit")) == []
