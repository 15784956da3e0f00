"""trafexd + its real gobgpd → a real FRR bgpd in a network namespace.

FRR's JSON is the oracle: each rule and route is read back from FRR, not from trafex.
One router and one trafexd per module (starting them costs seconds); each test
withdraws what it added.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from frr import FrrFlowEntry, FrrRouter
from peered import peered, skip_unless_possible
from trafexd import Trafexd, wait_for

from trafex.api.stubs import trafex_pb2 as pb

pytestmark = pytest.mark.integration

# (rule text, FRR's view of it). FRR writes numeric AND and OR both as ", "; bitmask
# terms as "= v" (match bit), "∋ v" (any bit), "!" (not), joined by ",&" or ",|".
V4_RULES: list[tuple[str, dict[str, Any]]] = [
    (
        "destination 10.0.0.0/8 source 1.2.3.4/32 protocol =tcp port [ <80 >80 ] "
        "destination-port >=1024&<=2048 source-port [ <1024 =8080 ] rate-limit 1000",
        {
            "destination": "10.0.0.0/8",
            "source": "1.2.3.4/32",
            "protocol": "= 6",
            "port": "< 80 , > 80",
            "destination_port": ">= 1024 , <= 2048",
            "source_port": "< 1024 , = 8080",
            "actions": ("FS:rate 1000.000000",),
        },
    ),
    (
        "destination 10.0.0.1/32 protocol =tcp tcp-flags =S&!A packet-length >100 "
        "dscp [ =10 =46 ] fragment [ dont-fragment is-fragment ] discard",
        {
            "protocol": "= 6",
            "tcp_flags": "= 2,&∋ ! 16",
            "packet_length": "> 100",
            "dscp": "= 10 , = 46",
            "fragment": "∋ 1,|∋ 2",
            "actions": ("FS:rate 0.000000",),
        },
    ),
    (
        "destination 10.0.0.2/32 protocol =icmp icmp-type =8 icmp-code =0 "
        "fragment !=first-fragment redirect 6:302 mark 10 action sample",
        {
            "icmp_type": "= 8",
            "icmp_code": "= 0",
            "fragment": "= ! 4",
            # FRR 8.4 shows any traffic-action as "eval stops" (it reads the wrong byte).
            "actions": ("FS:action eval stops", "FS:redirect VRF RT:6:302", "FS:marking 10"),
        },
    ),
    (
        "destination 10.0.0.3/32 redirect 4200000000:7 action terminal",
        {"actions": ("FS:action eval stops", "FS:redirect VRF RT:4200000000:7")},
    ),
    (
        "destination 10.0.0.4/32 redirect 192.0.2.1:7 mark 46",
        {"actions": ("FS:marking 46", "FS:redirect VRF RT:192.0.2.1:7")},
    ),
]
V6_RULES: list[tuple[str, dict[str, Any]]] = [
    (
        "source 3001:1:a::10/128 destination 3001:4:b::10/128 redirect 6:302",
        {
            "destination": "3001:4:b::10/128",
            "source": "3001:1:a::10/128",
            "actions": ("FS:redirect VRF RT:6:302",),
        },
    ),
    (
        "destination 2001:db8::/64/8 source 3001::/32 protocol =58 icmp-type =128 "
        "icmp-code =0 flow-label =5 packet-length <=1500 dscp =46 fragment first-fragment "
        "rate-limit 125000",
        {
            "destination": "1:db8::/64",  # the 8 bits before the offset are not on the wire
            "destination_offset": 8,
            "protocol": "= 58",
            "icmp_type": "= 128",
            "icmp_code": "= 0",
            "flow_label": "= 5",
            "packet_length": "<= 1500",
            "dscp": "= 46",
            "fragment": "∋ 4",
            "actions": ("FS:rate 125000.000000",),
        },
    ),
    (
        "destination 3001:4:b::20/128 protocol =tcp tcp-flags [ S =SA ] port =443 "
        "action sample-terminal",
        {"port": "= 443", "tcp_flags": "∋ 2,|= 18", "actions": ("FS:action eval stops",)},
    ),
]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FrrRouter, Trafexd]]:
    skip_unless_possible()
    with peered(tmp_path_factory.mktemp("lab")) as pair:
        yield pair


def _clear(trafexd: Trafexd) -> None:
    ids = [r.rule.meta.id for r in trafexd.stub.ListFlows(pb.ListFlowsRequest())]
    ids += [r.route.meta.id for r in trafexd.stub.ListRoutes(pb.ListRoutesRequest())]
    flows = [i for i in ids if i.startswith("fs-")]
    if flows:
        trafexd.stub.DeleteFlows(pb.DeleteFlowsRequest(ids=flows))
    for ident in ids:
        if ident.startswith("rt-"):
            trafexd.stub.DeleteRoute(pb.DeleteRouteRequest(id=ident))


@pytest.fixture
def clean(lab: tuple[FrrRouter, Trafexd]) -> Iterator[tuple[FrrRouter, Trafexd]]:
    router, trafexd = lab
    _clear(trafexd)
    router.wait_flowspec("ipv4", 0)
    router.wait_flowspec("ipv6", 0)
    yield router, trafexd
    _clear(trafexd)


def _add(trafexd: Trafexd, text: str, ttl: int = 0, *, force: bool = False) -> Any:
    request = pb.AddFlowRequest(
        flow=pb.FlowSpec(text=text), options=pb.IntentOptions(ttl_seconds=ttl, force=force)
    )
    return trafexd.stub.AddFlow(request, timeout=10)


def _by_destination(entries: list[FrrFlowEntry]) -> dict[str | None, FrrFlowEntry]:
    return {e.destination: e for e in entries}


def test_every_component_and_action_reaches_frr(clean: tuple[FrrRouter, Trafexd]) -> None:
    """Each match component and action arrives on FRR with the value that was asked for."""
    router, trafexd = clean
    for text, _ in V4_RULES + V6_RULES:
        _add(trafexd, text, force=True)  # some are broad: the breadth guard needs force
    for afi, rules in (("ipv4", V4_RULES), ("ipv6", V6_RULES)):
        entries = router.wait_flowspec(afi, len(rules))  # type: ignore[arg-type]
        for (text, expected), entry in zip(rules, _sorted_like(rules, entries), strict=True):
            for name, value in expected.items():
                actual = getattr(entry, name)
                if name == "actions":
                    assert sorted(actual) == sorted(value), text
                else:
                    assert actual == value, f"{name} of {text!r}: FRR has {actual!r}"
    assert all(router.alive().values())


def _sorted_like(
    rules: list[tuple[str, dict[str, Any]]], entries: list[FrrFlowEntry]
) -> list[FrrFlowEntry]:
    by_dst = _by_destination(entries)
    out = []
    for text, expected in rules:
        destination = expected.get("destination") or text.split("destination ")[1].split()[0]
        out.append(by_dst[destination])
    return out


def test_same_match_updates_in_place(clean: tuple[FrrRouter, Trafexd]) -> None:
    """Adding a rule with a known match replaces its actions: one path, same id."""
    router, trafexd = clean
    first = _add(trafexd, "destination 3001:4:b::10/128 source 3001:1:a::10/128 rate-limit 1000")
    second = _add(trafexd, "source 3001:1:a::10/128 destination 3001:4:b::10/128 rate-limit 2000")
    assert (first.created, second.created) == (True, False)
    assert first.rule.meta.id == second.rule.meta.id

    def updated() -> list[FrrFlowEntry] | None:
        entries = router.flowspec("ipv6")
        return entries if [e.rate for e in entries] == [2000.0] else None

    wait_for(updated, 10, "the rate to become 2000 on FRR", trafexd.logs)


def test_withdraw_removes_rule_and_route(clean: tuple[FrrRouter, Trafexd]) -> None:
    """Deleting by id (rule) and by prefix (route) withdraws them from FRR."""
    router, trafexd = clean
    added = _add(trafexd, "destination 10.9.9.9/32 protocol =udp discard")
    trafexd.stub.AddRoute(pb.AddRouteRequest(route=pb.RouteSpec(prefix="3001:10:66::5/128")))
    router.wait_flowspec("ipv4", 1)
    router.wait_unicast("ipv6", "3001:10:66::5/128")
    trafexd.stub.DeleteFlow(pb.DeleteFlowRequest(id=added.rule.meta.id))
    trafexd.stub.DeleteRoute(pb.DeleteRouteRequest(prefix="3001:10:66::5/128"))
    router.wait_flowspec("ipv4", 0)
    wait_for(
        lambda: router.unicast_route("ipv6", "3001:10:66::5/128") == [] or None,
        10,
        "the route to be withdrawn",
        trafexd.logs,
    )


def test_unicast_routes_carry_their_attributes(clean: tuple[FrrRouter, Trafexd]) -> None:
    """The talk's /128 with next-hop-self, and an IPv4 /32 with explicit next-hop,
    communities and MED, arrive on FRR as sent."""
    router, trafexd = clean
    trafexd.stub.AddRoute(
        pb.AddRouteRequest(
            route=pb.RouteSpec(
                prefix="3001:10:66::5/128",
                communities=["65000:666"],
                large_communities=["65010:1:2"],
            )
        )
    )
    trafexd.stub.AddRoute(
        pb.AddRouteRequest(
            route=pb.RouteSpec(
                prefix="192.0.2.66/32", next_hop=router.host_v4, communities=["no-export"], med=50
            )
        )
    )
    (v6,) = router.wait_unicast("ipv6", "3001:10:66::5/128")
    assert v6.next_hops == (router.host_v6,)  # next-hop-self: the sidecar's session address
    assert v6.communities == ("65000:666",)
    assert v6.large_communities == ("65010:1:2",)
    assert v6.as_path == "65010"
    (v4,) = router.wait_unicast("ipv4", "192.0.2.66/32")
    assert v4.med == 50
    assert v4.communities == ("noExport",)


def test_expired_rule_is_withdrawn(clean: tuple[FrrRouter, Trafexd]) -> None:
    """A rule with a TTL disappears from FRR and from trafexd when it expires."""
    router, trafexd = clean
    _add(trafexd, "destination 10.7.7.7/32 discard", ttl=2)
    router.wait_flowspec("ipv4", 1)
    router.wait_flowspec("ipv4", 0, timeout=10)
    assert list(trafexd.stub.ListFlows(pb.ListFlowsRequest())) == []


def test_bad_rule_is_refused_and_loses_nothing(clean: tuple[FrrRouter, Trafexd]) -> None:
    """A malformed rule gets INVALID_ARGUMENT naming the part; rules in force stay."""
    router, trafexd = clean
    _add(trafexd, "destination 10.1.1.1/32 discard")
    router.wait_flowspec("ipv4", 1)
    for bad in (
        "destination 10.1.1.2/32 dscp =99 discard",
        "destination 10.1.1.3/32 port [ =1 =2 =3 =4 =5 =6 ] discard",
    ):
        with pytest.raises(grpc.RpcError) as error:
            _add(trafexd, bad)
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "dscp" in str(error.value.details()) or "port" in str(error.value.details())
    assert len(router.wait_flowspec("ipv4", 1)) == 1
    assert router.neighbor_state(router.host_v4) == "Established"


def test_rules_come_back_after_gobgpd_sigkill(clean: tuple[FrrRouter, Trafexd]) -> None:
    """gobgpd killed with SIGKILL: trafexd restarts it and every rule is back on FRR,
    once each, soon after the session is up again."""
    router, trafexd = clean
    texts = [
        f"destination 3001:4:b::{i:x}/128 protocol =tcp rate-limit {1000 + i}" for i in range(1, 21)
    ]
    for text in texts:
        _add(trafexd, text)
    router.wait_flowspec("ipv6", 20)
    old = trafexd.sidecar_pid()
    os.kill(old, signal.SIGKILL)
    wait_for(
        lambda: trafexd.sidecar_pid() not in (0, old) or None, 20, "a new gobgpd", trafexd.logs
    )
    router.wait_established(timeout=30)
    up = time.monotonic()
    entries = router.wait_flowspec("ipv6", 20, timeout=10)
    assert time.monotonic() - up < 5
    assert sorted(e.rate or 0 for e in entries) == [1000.0 + i for i in range(1, 21)]


def test_trafexd_restart_keeps_rules_and_expires_the_due(clean: tuple[FrrRouter, Trafexd]) -> None:
    """trafexd stopped and started: the same rules are announced again from the store;
    one whose TTL passed while trafexd was down is not."""
    router, trafexd = clean
    keep = _add(trafexd, "destination 10.5.5.5/32 discard")
    _add(trafexd, "destination 10.5.5.6/32 discard", ttl=3)
    router.wait_flowspec("ipv4", 2)
    trafexd.stop()
    router.wait_flowspec("ipv4", 0, timeout=15)  # stopping trafexd withdraws everything
    time.sleep(3)
    trafexd.start()
    router.wait_established(timeout=30)
    (entry,) = router.wait_flowspec("ipv4", 1, timeout=15)
    assert entry.destination == "10.5.5.5/32"
    ids = [r.rule.meta.id for r in trafexd.stub.ListFlows(pb.ListFlowsRequest())]
    assert ids == [keep.rule.meta.id]


def test_ctl_round_trip(clean: tuple[FrrRouter, Trafexd], tmp_path: Path) -> None:
    """trafex-ctl add-flow --json prints the stored rule with its id; list-flows --json
    is an array; del-flow by id withdraws it; a bad rule is one line and exit 2;
    status --json shows a healthy sidecar with nothing failed or queued."""
    router, trafexd = clean
    ctl = [sys.executable, "-m", "trafex.cli.ctl", "--target", trafexd.api]
    import json

    out = subprocess.run(
        [
            *ctl,
            "add-flow",
            "--json",
            "source 3001:1:a::10/128 destination 3001:4:b::10/128 redirect 6:302",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    rule = json.loads(out.stdout)
    assert rule["actions"]["redirect"] == "6:302"
    (entry,) = router.wait_flowspec("ipv6", 1)
    assert entry.redirect is not None
    listed = json.loads(
        subprocess.run(
            [*ctl, "list-flows", "--json"], capture_output=True, text=True, check=True
        ).stdout
    )
    assert [r["id"] for r in listed] == [rule["id"]]
    bad = subprocess.run(
        [*ctl, "add-flow", "--destination", "10.0.0.1/33", "--discard"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 2
    assert bad.stderr.count("\n") == 1 and "Traceback" not in bad.stderr
    subprocess.run([*ctl, "del-flow", rule["id"]], capture_output=True, text=True, check=True)
    router.wait_flowspec("ipv6", 0)
    status = json.loads(
        subprocess.run(
            [*ctl, "status", "--json"], capture_output=True, text=True, check=True
        ).stdout
    )
    side = status["sidecar"]
    assert (side["healthy"], side["send_failures"], side["queued_paths"]) == (True, 0, 0)
    assert (status["flows"], {p["state"] for p in status["peers"]}) == (0, {"established"})
