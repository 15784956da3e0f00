"""Detection values: frozen, flattened to one JSON object."""

from __future__ import annotations

import dataclasses

import pytest

from trafex.detect.detection import Detection, FlowDirection
from trafex.detect.detectors.dns import DnsEvidence


def test_to_dict_flattens_evidence_and_rounds_ts() -> None:
    """flow, host and the evidence's keys share one level; ts is rounded to microseconds."""
    flow = FlowDirection("3001:10:66::53", 53, "3001:1:a::10", 5353, "udp")
    ev = DnsEvidence(
        "badhacks.com.", ("3001:10:66::5",), "3001:1:a::10", "3001:10:66::53", "badhacks.com"
    )
    d = Detection("dns", 1.23456789, ev, flow=flow, host="3001:1:a::10")
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
    assert next(iter(out)) == "detector"


def test_values_are_frozen() -> None:
    """Detections and flow directions cannot be changed after creation."""
    flow = FlowDirection("a", 1, "b", 2, "tcp")
    with pytest.raises(dataclasses.FrozenInstanceError):
        flow.sport = 3  # type: ignore[misc]
    assert flow.reverse() == FlowDirection("b", 2, "a", 1, "tcp")
