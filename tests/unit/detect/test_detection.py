"""Detection values: frozen, flattened to one JSON object."""

from __future__ import annotations

import dataclasses
from ipaddress import ip_address as ip

import pytest

from trafex.detect.detection import Detection, FlowDirection
from trafex.detect.detectors.dns import DnsEvidence


def test_to_dict_flattens_evidence_and_rounds_ts() -> None:
    """flow, host and the evidence's keys share one level; ts is rounded to microseconds."""
    client, server = ip("3001:1:a::10"), ip("3001:10:66::53")
    flow = FlowDirection(server, 53, client, 5353, 17)
    ev = DnsEvidence("badhacks.com.", (ip("3001:10:66::5"),), client, server, "badhacks.com")
    d = Detection("dns", 1.23456789, ev, flow=flow, host=client)
    out = d.to_dict()
    assert out["detector"] == "dns"
    assert out["ts"] == 1.234568
    assert out["addresses"] == ["3001:10:66::5"]
    assert out["flow"] == {
        "src": "3001:10:66::53",
        "sport": 53,
        "dst": "3001:1:a::10",
        "dport": 5353,
        "proto": "udp",
    }
    assert out["host"] == "3001:1:a::10"
    assert next(iter(out)) == "detector"


def test_flow_direction_reads_as_a_person_writes_it() -> None:
    """str() of a direction names the protocol and both ends; a protocol without a
    name shows its number."""
    assert str(FlowDirection(ip("10.0.0.1"), 5000, ip("10.0.0.2"), 80, 6)) == (
        "tcp 10.0.0.1:5000 -> 10.0.0.2:80"
    )
    assert FlowDirection(ip("::1"), 0, ip("::2"), 0, 253).to_dict()["proto"] == "253"


def test_values_are_frozen() -> None:
    """Detections and flow directions cannot be changed after creation."""
    a, b = ip("192.0.2.1"), ip("192.0.2.2")
    flow = FlowDirection(a, 1, b, 2, 6)
    with pytest.raises(dataclasses.FrozenInstanceError):
        flow.sport = 3  # type: ignore[misc]
    assert flow.reverse() == FlowDirection(b, 2, a, 1, 6)
