"""The real captures in shared/captures, checked against their committed tshark oracles."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import pytest

from trafex.detect import SensorConfig
from trafex.detect.detectors.blocklist import Blocklist
from trafex.detect.detectors.dns import DnsConfig, DnsDetector

from .helpers import (
    SHARED_CAPTURE_NAMES,
    SHARED_CAPTURES,
    Direction,
    flagged,
    retransmit_detections,
    run_sensor,
)

ORACLE = SHARED_CAPTURES / "oracle"

# Where trafex knowingly differs from tshark (see the report for why).
RETRANSMIT_DIFFERENCES: dict[str, set[Direction]] = {}
DNS_DIFFERENCES = {
    # An inverse query (opcode 1): the A answer's owner is the root, not the question
    # name, so it is not on the name's CNAME chain; tshark lists it in dns.a.
    "zeek__dns-inverse-query.pcap": {("[4.3.2.1]", "4.3.2.1")},
}


def _need(name: str, oracle: str) -> Path:
    """The capture ``name``, or a skip when it or its ``oracle`` file is missing."""
    path = SHARED_CAPTURES / name
    for needed in (path, ORACLE / f"{name}.{oracle}"):
        if not needed.exists():
            pytest.skip(f"{needed} not present")
    return path


def _oracle_retransmissions(name: str) -> Counter[Direction]:
    out: Counter[Direction] = Counter()
    with open(ORACLE / f"{name}.retrans.tsv", newline="") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            key = (row["src"], int(row["sport"]), row["dst"], int(row["dport"]))
            out[key] += int(row["retransmission"])
    return out


@pytest.mark.parametrize("threshold", [1, 3, 5])
@pytest.mark.parametrize("name", SHARED_CAPTURE_NAMES)
def test_retransmit_detections_equal_oracle(name: str, threshold: int) -> None:
    """Flow directions flagged at thresholds 1, 3 and 5 are the ones tshark counts."""
    path = _need(name, "retrans.tsv")
    expected = flagged(_oracle_retransmissions(name), threshold)
    got = retransmit_detections(path, threshold)
    known = RETRANSMIT_DIFFERENCES.get(name, set())
    assert expected - known == got - known


@pytest.mark.parametrize("name", SHARED_CAPTURE_NAMES)
def test_dns_detections_equal_oracle(name: str) -> None:
    """With every question name blocklisted, (name, address) pairs equal tshark's answers."""
    path = _need(name, "dns.tsv")
    with open(ORACLE / f"{name}.dns.tsv", newline="") as f:
        rows = [
            r
            for r in csv.DictReader(f, delimiter="\t")
            if r["app"] == "dns" and r["inside_icmp"] == "0"
        ]
    names = {r["qname"] for r in rows if r["qname"] and r["qname"] != "<Root>"}
    expected = {
        (r["qname"].lower(), addr)
        for r in rows
        for addr in f"{r['answer_a']},{r['answer_aaaa']}".split(",")
        if addr and r["qname"] in names
    }
    detector = DnsDetector(DnsConfig(), Blocklist(names))
    got = set()
    for d in run_sensor(path, SensorConfig(), detectors=[detector]):
        qname = str(d.evidence.to_dict()["qname"]).rstrip(".").lower()
        got |= {(qname, a) for a in d.evidence.to_dict()["addresses"]}  # type: ignore[union-attr]
    known = DNS_DIFFERENCES.get(name, set())
    assert expected - known == got - known
    assert known <= expected


def test_known_differences_are_still_differences() -> None:
    """The documented DNS difference is real (if trafex catches up, the list must shrink)."""
    name = "zeek__dns-inverse-query.pcap"
    path = _need(name, "dns.tsv")
    detector = DnsDetector(DnsConfig(), Blocklist(["[4.3.2.1]"]))
    assert run_sensor(path, SensorConfig(), detectors=[detector]) == []
