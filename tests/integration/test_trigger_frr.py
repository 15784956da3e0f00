"""The talk's two demos end to end: a capture → ``trafex detect --controller`` → a real
trafexd + gobgpd → a real FRR in a network namespace.

FRR's JSON is the oracle: the blocklisted name's /128 arrives with next-hop self, and
the retransmitting flow arrives as two FlowSpec rules (both directions) redirecting to
route-target 6:302. The capture is written with Scapy; ``--dry-run`` on the same capture
prints the same intents without sending anything.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from frr import FrrRouter
from peered import peered, skip_unless_possible
from trafexd import Trafexd

from trafex.api.stubs import trafex_pb2 as pb

pytestmark = pytest.mark.integration

H1, H4, DNS_SERVER, BAD = "3001:1:a::10", "3001:4:b::10", "3001:10::53", "3001:10:66::5"
FORWARD = {"source": f"{H1}/128", "destination": f"{H4}/128"}
REVERSE = {"source": f"{H4}/128", "destination": f"{H1}/128"}


def talk_capture(path: Path) -> Path:
    """A DNS answer badhacks.com. AAAA 3001:10:66::5 for host1, then a TCP flow
    host1:58719 → host4:443 whose first data segment is sent five times."""
    from scapy.layers.dns import DNS, DNSQR, DNSRR
    from scapy.layers.inet import TCP, UDP
    from scapy.layers.inet6 import IPv6
    from scapy.layers.l2 import Ether
    from scapy.utils import wrpcap

    packets: list[Any] = []

    def add(layer: Any) -> None:
        pkt = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / layer
        pkt.time = 1_700_000_000.0 + 0.01 * len(packets)
        packets.append(pkt)

    add(
        IPv6(src=DNS_SERVER, dst=H1)
        / UDP(sport=53, dport=33333)
        / DNS(
            id=7,
            qr=1,
            qd=DNSQR(qname="badhacks.com", qtype="AAAA"),
            an=DNSRR(rrname="badhacks.com", type="AAAA", rdata=BAD, ttl=60),
        )
    )
    c, s = 1000, 5000
    add(IPv6(src=H1, dst=H4) / TCP(sport=58719, dport=443, flags="S", seq=c - 1))
    add(IPv6(src=H4, dst=H1) / TCP(sport=443, dport=58719, flags="SA", seq=s - 1, ack=c))
    add(IPv6(src=H1, dst=H4) / TCP(sport=58719, dport=443, flags="A", seq=c, ack=s))
    for _ in range(5):
        add(
            IPv6(src=H1, dst=H4)
            / TCP(sport=58719, dport=443, flags="PA", seq=c, ack=s)
            / (b"x" * 100)
        )
    wrpcap(str(path), packets)
    return path


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    workdir = tmp_path_factory.mktemp("capture")
    blocklist = workdir / "bad.txt"
    blocklist.write_text("badhacks.com\n")
    return talk_capture(workdir / "talk.pcap"), blocklist


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FrrRouter, Trafexd]]:
    skip_unless_possible()
    with peered(tmp_path_factory.mktemp("trigger-lab"), (6,)) as pair:
        yield pair


def detect(pcap: Path, blocklist: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "trafex.cli.main",
            "detect",
            "--pcap",
            str(pcap),
            "--blocklist",
            str(blocklist),
            "--progress",
            "0",
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def stats(stderr: str) -> dict[str, str]:
    (line,) = [x for x in stderr.splitlines() if x.startswith("done ")]
    return dict(part.split("=", 1) for part in line.split()[1:])


def test_capture_to_frr(lab: tuple[FrrRouter, Trafexd], inputs: tuple[Path, Path]) -> None:
    """``trafex detect --pcap … --controller …``: FRR receives 3001:10:66::5/128 with
    next-hop self, and the flow's two directions with redirect 6:302; trafexd keeps them
    with the detector as origin, the reason and a TTL."""
    router, trafexd = lab
    done = detect(*inputs, "--controller", trafexd.api)
    assert done.returncode == 0, done.stderr
    counts = stats(done.stderr)
    assert (counts["intents"], counts["sent"], counts["failed"]) == ("3", "3", "0"), done.stderr
    (route,) = router.wait_unicast("ipv6", f"{BAD}/128")
    assert route.next_hops == (router.host_v6,)  # next-hop self: the sidecar's address
    assert route.as_path == "65010"
    entries = router.wait_flowspec("ipv6", 2)
    seen = {(e.source, e.destination): e for e in entries}
    for direction in (FORWARD, REVERSE):
        entry = seen[(direction["source"], direction["destination"])]
        assert entry.redirect == "6:302"
        assert entry.protocol == "= 6"
    rules = [r.rule for r in trafexd.stub.ListFlows(pb.ListFlowsRequest())]
    assert {r.meta.origin for r in rules} == {"retransmit"}
    assert all(r.meta.reason.startswith("retransmit: 3 retransmits ") for r in rules)
    assert all(r.meta.expires_at.seconds - r.meta.created_at.seconds == 600 for r in rules)
    (stored,) = [r.route for r in trafexd.stub.ListRoutes(pb.ListRoutesRequest())]
    assert stored.meta.origin == "dns"
    assert stored.meta.reason.startswith("dns: badhacks.com. -> 3001:10:66::5")


def test_dry_run_prints_what_would_be_sent(inputs: tuple[Path, Path]) -> None:
    """``--dry-run --json`` prints one {"intent": …} per intent, the same three; nothing
    is sent (no controller is given)."""
    done = detect(*inputs, "--dry-run", "--json")
    assert done.returncode == 0, done.stderr
    objects = [json.loads(line) for line in done.stdout.splitlines()]
    intents = [o["intent"] for o in objects if "intent" in o]
    assert [(i["kind"], i["origin"]) for i in intents] == [
        ("route", "dns"),
        ("flow", "retransmit"),
        ("flow", "retransmit"),
    ]
    assert intents[0]["prefix"] == f"{BAD}/128" and intents[0]["next_hop"] is None
    assert [{k: i["match"][k] for k in ("source", "destination")} for i in intents[1:]] == [
        FORWARD,
        REVERSE,
    ]
    assert {i["actions"]["redirect"] for i in intents[1:]} == {"6:302"}
    counts = stats(done.stderr)
    assert counts["intents"] == "3" and "sent" not in counts
