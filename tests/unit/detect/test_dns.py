"""The dns detector: blocklisted answers, compared with tshark's view of the same capture."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from trafex.config import Table
from trafex.detect import ConfigError, SensorConfig
from trafex.detect.detectors.blocklist import Blocklist
from trafex.detect.detectors.dns import SPEC as DNS_SPEC
from trafex.detect.detectors.dns import DnsConfig, DnsDetector

from .dnsscenarios import (
    compressed_chain,
    raw_udp,
    response,
    tcp_stream,
    udp,
)
from .helpers import needs_tshark, run_sensor, tshark_fields, write_pcap

BLOCKED = ["bad.test", "evil.example"]


def _pairs(path: Path, names: list[str] = BLOCKED) -> set[tuple[str, str]]:
    detector = DnsDetector(DnsConfig(), Blocklist(names))
    out = set()
    for d in run_sensor(path, SensorConfig(), detectors=[detector]):
        ev = d.evidence.to_dict()
        addresses = ev["addresses"]
        assert isinstance(addresses, list)
        out |= {(str(ev["qname"]), str(a)) for a in addresses}
    return out


def _tshark_chain_pairs(path: Path, names: list[str] = BLOCKED) -> set[tuple[str, str]]:
    """From tshark's answer records: addresses reached from the qname through CNAMEs."""
    blocklist = Blocklist(names)
    rows = tshark_fields(
        path,
        [
            "dns.qry.name",
            "dns.count.answers",
            "dns.resp.name",
            "dns.resp.type",
            "dns.a",
            "dns.aaaa",
            "dns.cname",
        ],
        "dns.flags.response == 1",
    )
    out = set()
    for qname, count, owners, types, a, aaaa, cname in rows:
        if not qname or blocklist.match(qname) is None:
            continue
        values = {"1": iter(a.split(",")), "28": iter(aaaa.split(",")), "5": iter(cname.split(","))}
        records = []
        for owner, rtype in list(zip(owners.split(","), types.split(","), strict=False))[
            : int(count or 0)
        ]:
            value = next(values[rtype]) if rtype in values else ""
            records.append((owner.lower(), rtype, value))
        reach = {qname.lower()}
        changed = True
        while changed:
            changed = False
            for owner, rtype, value in records:
                if rtype == "5" and owner in reach and value.lower() not in reach:
                    reach.add(value.lower())
                    changed = True
        out |= {(qname + ".", v) for o, t, v in records if t in ("1", "28") and o in reach}
    return out


def _capture() -> list[Any]:
    return [
        udp(response("bad.test", [("bad.test", "A", "192.0.2.1")])),
        udp(response("www.bad.test", [("www.bad.test", "AAAA", "3001:10:66::5")], "AAAA"), True),
        udp(response("BAD.test", [("bad.test", "A", "192.0.2.2"), ("bad.test", "A", "192.0.2.3")])),
        udp(
            response(
                "cdn.evil.example",
                [
                    ("cdn.evil.example", "CNAME", "edge.cdn.net"),
                    ("edge.cdn.net", "CNAME", "node.cdn.net"),
                    ("node.cdn.net", "A", "198.51.100.7"),
                    ("node.cdn.net", "AAAA", "2001:db8::7"),
                    ("unrelated.net", "A", "198.51.100.99"),
                ],
            )
        ),
        udp(
            response(
                "evil.example",
                [  # chain given out of order
                    ("z.cdn.net", "A", "198.51.100.8"),
                    ("evil.example", "CNAME", "z.cdn.net"),
                ],
            )
        ),
        udp(response("good.test", [("good.test", "A", "192.0.2.50")])),
        raw_udp(compressed_chain()),
    ]


@needs_tshark
def test_udp_answers_equal_tshark_chain(tmp_path: Path) -> None:
    """A/AAAA answers reached through CNAME chains equal what tshark's records give."""
    path = write_pcap(tmp_path / "dns.pcap", _capture())
    expected = _tshark_chain_pairs(path)
    assert ("evil.example.", "198.51.100.8") in expected
    assert ("a.bad.test.", "203.0.113.9") in expected
    assert _pairs(path) == expected


@needs_tshark
def test_truncated_and_malformed_answers_equal_tshark(tmp_path: Path) -> None:
    """Cut or corrupt answers: the sensor keeps what parses, as tshark does, and never fails."""
    full = bytes(
        response("bad.test", [("bad.test", "A", "192.0.2.1"), ("bad.test", "A", "192.0.2.2")])
    )
    pkts = [raw_udp(full[:n]) for n in (11, 20, len(full) - 20, len(full) - 2)]
    looped = bytearray(compressed_chain())
    looped[-16:-14] = b"\xc0" + bytes([len(looped) - 16])  # owner pointer pointing at itself
    pkts.append(raw_udp(bytes(looped)))
    path = write_pcap(tmp_path / "cut.pcap", pkts)
    assert _pairs(path) == _tshark_chain_pairs(path)


@needs_tshark
@pytest.mark.parametrize("v6", [False, True], ids=["ipv4", "ipv6"])
def test_dns_over_tcp_equals_tshark(tmp_path: Path, v6: bool) -> None:
    """Length-prefixed DNS over TCP, one message per segment, equals tshark (IPv4, IPv6)."""
    msgs = [bytes(response("bad.test", [("bad.test", "A", "192.0.2.77")], ident=5))]
    path = write_pcap(tmp_path / "tcp.pcap", tcp_stream(msgs, v6=v6))
    assert _pairs(path) == _tshark_chain_pairs(path) == {("bad.test.", "192.0.2.77")}


def test_dns_over_tcp_split_and_batched(tmp_path: Path) -> None:
    """Messages split across segments and two messages in one stream are both found."""
    msgs = [
        bytes(response("bad.test", [("bad.test", "A", "192.0.2.10")], ident=1)),
        bytes(
            response(
                "x.evil.example",
                [("x.evil.example", "AAAA", "2001:db8::10")],
                qtype="AAAA",
                ident=2,
            )
        ),
    ]
    path = write_pcap(tmp_path / "split.pcap", tcp_stream(msgs, split=7))
    assert _pairs(path) == {("bad.test.", "192.0.2.10"), ("x.evil.example.", "2001:db8::10")}


def test_detection_names_client_and_server(tmp_path: Path) -> None:
    """The detection carries the qname with a trailing dot, its addresses and the client."""
    path = write_pcap(
        tmp_path / "one.pcap",
        [udp(response("bad.test", [("bad.test", "AAAA", "3001:10:66::5")], "AAAA"), True)],
    )
    detector = DnsDetector(DnsConfig(), Blocklist(BLOCKED))
    [d] = run_sensor(path, SensorConfig(), detectors=[detector])
    out = d.to_dict()
    assert out["detector"] == "dns"
    assert out["qname"] == "bad.test."
    assert out["addresses"] == ["3001:10:66::5"]
    assert out["client"] == "3001:1:a::10"
    assert isinstance(out["ts"], float)


def test_reload_reads_the_blocklist_again(tmp_path: Path) -> None:
    """reload() picks up names added to the blocklist file; a broken file keeps the old list."""
    blocklist = tmp_path / "bl.txt"
    blocklist.write_text("bad.test\n")
    detector = DnsDetector(DnsConfig(blocklist=str(blocklist)))
    assert detector.blocklist.match("www.bad.test") == "bad.test"
    assert detector.blocklist.match("evil.example") is None
    blocklist.write_text("bad.test\nevil.example\n")
    detector.reload()
    assert detector.blocklist.match("a.evil.example") == "evil.example"
    blocklist.write_text("not a name!\n")
    detector.reload()
    assert detector.blocklist.match("a.evil.example") == "evil.example"


def test_config_rejects_unknown_keys() -> None:
    """An unknown key in [detect.dns] is an error that names it."""
    with pytest.raises(ConfigError) as err:
        DNS_SPEC.read(Table({"blocklst": "x"}, "detect.dns"))
    assert err.value.key == "detect.dns.blocklst"


def test_responses_on_other_ports_are_ignored(tmp_path: Path) -> None:
    """Only the configured ports are DNS: a response on 5353 (mDNS) is not judged."""
    pkt = udp(response("bad.test", [("bad.test", "A", "192.0.2.1")]), sport=5353, dport=5353)
    path = write_pcap(tmp_path / "mdns.pcap", [pkt])
    assert _pairs(path) == set()
