"""Tests of the FRR harness itself, against a real gobgpd speaking BGP to a real FRR bgpd.

Each test that needs a BGP speaker owns a ``gobgpd`` (temp dir, free API port on 127.0.0.1,
its own session, killed by PID at teardown) peering from the root-side veth addresses
(AS 65010) with the router in its namespace (AS 65000), and announces through the
``gobgp`` CLI. The expected values below double as documentation of what FRR 8.4.4 shows.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network, ip_interface
from pathlib import Path
from typing import Final

import frr
import pytest
from frr import (
    HOST_V4,
    HOST_V6,
    Afi,
    FrrCommandError,
    FrrError,
    FrrFlowEntry,
    FrrRouter,
    FrrRouterFactory,
    FrrStartError,
    FrrTimeoutError,
    Neighbor,
    decode_json_stream,
    parse_flowspec,
)
from netns import IPV4_POOL, IPV6_POOL, link_exists, namespace_exists, run_ip

GOBGPD: Final = shutil.which("gobgpd")
GOBGP: Final = shutil.which("gobgp")
PEER_AS: Final = 65010
ROUTER_AS: Final = 65000


def _free_port(host: str) -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _free_port_on_both(v4: str, v6: str) -> int:
    for _ in range(20):
        port = _free_port(v4)
        with contextlib.suppress(OSError), socket.socket(socket.AF_INET6) as s:
            s.bind((v6, port))
            return port
    raise RuntimeError(f"no TCP port free on both {v4} and {v6}")


@dataclass
class GoBgpd:
    """A gobgpd owned by one test: AS 65010, peering from the router's root-side addresses.

    It listens for BGP on a free port of ``host_v4``/``host_v6`` only (never on 0.0.0.0:179),
    and FRR is told that port, so FRR connects at once instead of waiting 5-10 s for
    gobgpd's first active attempt.
    """

    workdir: Path
    router: FrrRouter
    api_port: int = 0
    bgp_port: int = 0
    process: subprocess.Popen[bytes] | None = None

    @property
    def log(self) -> Path:
        return self.workdir / "gobgpd.log"

    def config(self) -> str:
        r = self.router
        neighbors = []
        for address, local, families in (
            (r.router_v4, r.host_v4, ("ipv4-unicast", "ipv4-flowspec")),
            (r.router_v6, r.host_v6, ("ipv6-unicast", "ipv6-flowspec")),
        ):
            afi_safis = "".join(
                f"  [[neighbors.afi-safis]]\n    [neighbors.afi-safis.config]\n"
                f'      afi-safi-name = "{f}"\n'
                for f in families
            )
            neighbors.append(
                f"[[neighbors]]\n"
                f"  [neighbors.config]\n"
                f'    neighbor-address = "{address}"\n'
                f"    peer-as = {ROUTER_AS}\n"
                f"  [neighbors.transport.config]\n"
                f'    local-address = "{local}"\n'
                f"{afi_safis}"
            )
        return (
            f"[global.config]\n"
            f"  as = {PEER_AS}\n"
            f'  router-id = "{r.host_v4}"\n'
            f"  port = {self.bgp_port}\n"
            f'  local-address-list = ["{r.host_v4}", "{r.host_v6}"]\n\n' + "\n".join(neighbors)
        )

    def start(self) -> None:
        assert GOBGPD is not None
        self.workdir.mkdir(parents=True, exist_ok=True)
        conf = self.workdir / "gobgpd.toml"
        conf.write_text(self.config())
        self.api_port = _free_port("127.0.0.1")
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                [
                    GOBGPD,
                    "-f",
                    str(conf),
                    "-t",
                    "toml",
                    "--api-hosts",
                    f"127.0.0.1:{self.api_port}",
                    "--pprof-disable",
                    "-p",
                ],
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 15
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"gobgpd exited {self.process.returncode}\n{self.logs()}")
            probe = subprocess.run(
                [GOBGP or "gobgp", "-p", str(self.api_port), "global"],
                check=False,
                capture_output=True,
                timeout=10,
            )
            if probe.returncode == 0:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"gobgpd API never answered\n{self.logs()}")
            time.sleep(0.1)

    def gobgp(self, *args: str) -> str:
        """Run ``gobgp -p API_PORT ARGS...``; fails the test with both logs on error."""
        assert GOBGP is not None
        proc = subprocess.run(
            [GOBGP, "-p", str(self.api_port), *args],
            check=False,
            capture_output=True,
            text=True,
            timeout=20,
        )
        if proc.returncode != 0:
            pytest.fail(f"gobgp {' '.join(args)}: {proc.stderr}{proc.stdout}\n{self.logs()}")
        return proc.stdout

    def logs(self) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except FileNotFoundError:
            text = "(no log)"
        return f"----- gobgpd: {self.log} -----\n" + "\n".join(text.splitlines()[-80:])

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)


@dataclass
class Lab:
    router: FrrRouter
    speaker: GoBgpd

    def announce(self, family: str, *args: str) -> None:
        self.speaker.gobgp("global", "rib", "-a", family, "add", *args)

    def withdraw(self, family: str, *args: str) -> None:
        self.speaker.gobgp("global", "rib", "-a", family, "del", *args)

    def wait_flowspec(self, afi: Afi, count: int) -> list[FrrFlowEntry]:
        try:
            return self.router.wait_flowspec(afi, count, timeout=10)
        except FrrError as exc:
            raise AssertionError(f"{exc}\n{self.speaker.logs()}") from None


@pytest.fixture
def lab(frr_router_factory: FrrRouterFactory, tmp_path: Path) -> Iterator[Lab]:
    """A started router whose two sessions (IPv4, IPv6) to a real gobgpd are Established."""
    if GOBGPD is None or GOBGP is None:
        pytest.skip("gobgpd/gobgp are not installed (Debian package gobgpd)")
    # Free on the wildcard addresses, hence on the router's root-side addresses too.
    port = _free_port_on_both("0.0.0.0", "::")
    router = frr_router_factory(
        [Neighbor(HOST_V4, PEER_AS, port=port), Neighbor(HOST_V6, PEER_AS, port=port)]
    )
    speaker = GoBgpd(tmp_path / "gobgpd", router, bgp_port=port)
    try:
        speaker.start()
        try:
            router.wait_established(timeout=20)
        except Exception as exc:
            raise AssertionError(f"{exc}\n{speaker.logs()}") from None
        yield Lab(router, speaker)
    finally:
        speaker.stop()


def _requires_frr() -> None:
    reason = frr.frr_missing_reason()
    if reason:
        pytest.skip(reason)


# --- parsing, no daemon needed -------------------------------------------------------

# `show bgp ipv6 flowspec detail json` for two rules, as FRR 8.4.4 prints it: one JSON
# array per rule, concatenated, not a JSON document.
DETAIL_SAMPLE: Final = """[
  {
    "to":"3001:4:b::10/128/off 0",
    "from":"3001:1:a::10/128/off 0"
  },
  {
    "ecomlist":"FS:redirect VRF RT:6:302"
  },
  {
    "time":"00:00:02"
  }
]
[
  {
    "to":"3001:4:b::20/128/off 0",
    "proto":"= 6 ",
    "dstp":"= 80 ",
    "tcp":"= 2"
  },
  {
    "ecomlist":"FS:rate 1000.000000 FS:redirect VRF RT:65000:7 FS:marking 10"
  },
  {
    "time":"00:00:02"
  }
]
"""
SUMMARY_SAMPLE: Final = {
    "routes": {
        "to 3001:4:b::10/128/off 0 from 3001:1:a::10/128/off 0/28": [
            {
                "valid": True,
                "bestpath": True,
                "selectionReason": "First path received",
                "pathFrom": "external",
                "to": "3001:4:b::10/128/off 0",
                "from": "3001:1:a::10/128/off 0",
                "weight": 0,
                "peerId": "fd00:7466:7800:1::1",
                "path": "65010",
                "origin": "incomplete",
            }
        ]
    }
}


def test_decode_json_stream_reads_concatenated_documents() -> None:
    """A run of concatenated JSON documents (FRR's flowspec detail) decodes in order;
    blank output decodes to no documents."""
    assert decode_json_stream(' [1]\n{"a": 2}  "x"\n') == [[1], {"a": 2}, "x"]
    assert decode_json_stream(" \n") == []


def test_parse_flowspec_builds_entries_and_joins_validity() -> None:
    """Each JSON array becomes one FrrFlowEntry with stripped match values, the prefix split
    from FRR's "/off N", actions split at "FS:", and valid/best/peer taken from the
    summary JSON when a path there has the same match components."""
    redirect, multi = parse_flowspec("ipv6", DETAIL_SAMPLE, SUMMARY_SAMPLE)

    assert redirect.match == {"to": "3001:4:b::10/128/off 0", "from": "3001:1:a::10/128/off 0"}
    assert (redirect.destination, redirect.destination_offset) == ("3001:4:b::10/128", 0)
    assert (redirect.source, redirect.source_offset) == ("3001:1:a::10/128", 0)
    assert redirect.actions == ("FS:redirect VRF RT:6:302",)
    assert redirect.redirect == "6:302"
    assert (redirect.valid, redirect.best, redirect.peer) == (True, True, "fd00:7466:7800:1::1")

    assert (multi.protocol, multi.destination_port, multi.tcp_flags) == ("= 6", "= 80", "= 2")
    assert multi.actions == (
        "FS:rate 1000.000000",
        "FS:redirect VRF RT:65000:7",
        "FS:marking 10",
    )
    assert (
        multi.rate,
        multi.redirect,
        multi.marking,
        multi.discard,
    ) == (1000.0, "65000:7", 10, False)
    assert (multi.valid, multi.best, multi.peer) == (None, None, None)


# --- the harness's own lifecycle -----------------------------------------------------


@pytest.mark.integration
def test_routers_get_unique_names_and_subnets_and_leave_nothing_behind(
    frr_router_factory: FrrRouterFactory,
) -> None:
    """Two routers at once get distinct namespaces, veth names of at most 15 characters,
    and distinct /31 and /64 subnets from the test ranges; each answers vtysh with its
    router-id and takes run-time configuration; close() stops bgpd and removes the veth
    pair and the namespace."""
    first = frr_router_factory()
    second = frr_router_factory(router_id="192.0.2.254", asn=65001)
    routers = (first, second)

    assert len({r.namespace for r in routers}) == 2
    assert len({r.host_v4 for r in routers} | {r.router_v4 for r in routers}) == 4
    assert len({r.host_v6 for r in routers} | {r.router_v6 for r in routers}) == 4
    for r in routers:
        assert namespace_exists(r.namespace)
        assert link_exists(r.network.host_ifname)
        assert link_exists(r.network.router_ifname, namespace=r.namespace)
        assert len(r.network.host_ifname) <= 15
        assert len(r.network.router_ifname) <= 15
        assert IPv4Network(f"{r.host_v4}/31", strict=False).subnet_of(IPV4_POOL)
        assert IPv6Network(f"{r.host_v6}/64", strict=False).subnet_of(IPV6_POOL)
        assert ip_interface(f"{r.router_v4}/31").network == ip_interface(f"{r.host_v4}/31").network
        assert ip_interface(f"{r.router_v6}/64").network == ip_interface(f"{r.host_v6}/64").network
        assert r.alive() == {"bgpd": True}
    summary = second.vtysh_json("show bgp summary json")["ipv4Unicast"]
    assert (summary["routerId"], summary["as"]) == ("192.0.2.254", 65001)
    assert {"ipv4Unicast", "ipv4Flowspec"} == set(
        first.neighbors()[first.host_v4]["addressFamilyInfo"]
    )

    second.configure("router bgp 65001", f"neighbor {second.host_v6} shutdown")
    assert second.neighbor_state(second.host_v6) == "Idle"
    with pytest.raises(FrrCommandError, match="Unknown command"):
        second.configure("no such command")

    pid = first.pids()["bgpd"]
    first.close()
    first.close()  # idempotent

    assert first.alive() == {"bgpd": False}
    assert not Path(f"/proc/{pid}").exists() or _is_zombie(pid)
    assert not namespace_exists(first.namespace)
    assert not link_exists(first.network.host_ifname)
    assert namespace_exists(second.namespace)


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z")
    except (FileNotFoundError, IndexError):
        return True


@pytest.mark.integration
def test_wait_established_times_out_with_states_and_logs(
    frr_router_factory: FrrRouterFactory,
) -> None:
    """With no speaker on the other side, wait_established raises FrrTimeoutError at its
    deadline, naming each neighbor's state and including bgpd's log."""
    router = frr_router_factory()

    with pytest.raises(FrrTimeoutError) as info:
        router.wait_established(timeout=0.5)

    message = str(info.value)
    assert router.host_v4 in message
    assert "Active" in message or "Connect" in message
    assert "bgpd.log" in message
    with pytest.raises(KeyError):
        router.neighbor_state("192.0.2.99")


@pytest.mark.integration
def test_failed_start_reports_log_and_removes_namespace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When bgpd exits during start, the context manager raises FrrStartError naming the
    dead daemon with its output, and still deletes the namespace and veth pair."""
    _requires_frr()
    monkeypatch.setattr(frr, "BGPD", Path("/bin/false"))
    router = FrrRouter(tmp_path / "frr")

    with pytest.raises(FrrStartError) as info, router:
        pytest.fail("start should have failed")

    assert "bgpd (exit 1) died" in str(info.value)
    assert "bgpd.out" in str(info.value)
    assert router.namespace
    assert not namespace_exists(router.namespace)
    assert not link_exists(router.network.host_ifname)


@pytest.mark.integration
def test_alive_reports_a_killed_daemon(frr_router_factory: FrrRouterFactory) -> None:
    """alive() turns False when bgpd dies, wait_until fails fast naming the dead daemon
    instead of waiting for its deadline, and close() still cleans up (including FRR's
    /var/tmp/frr/bgpd.PID, which a killed daemon leaves behind)."""
    router = frr_router_factory()
    pid = router.pids()["bgpd"]
    os.kill(pid, signal.SIGKILL)
    router.wait_until(lambda: not router.alive()["bgpd"], 5, "bgpd to die")

    started = time.monotonic()
    with pytest.raises(FrrError, match=r"bgpd \(exit signal SIGKILL\) died"):
        router.wait_until(lambda: None, 30, "something that never comes")
    assert time.monotonic() - started < 5

    router.close()
    assert not namespace_exists(router.namespace)
    assert not (frr.FRR_TMPDIR / f"bgpd.{pid}").exists()


# --- what a real BGP speaker's announcements look like in FRR -------------------------

# (gobgp match ..., gobgp then ..., FRR's match dict, FRR's actions). FRR shows
#  * numeric operators AND and OR alike (">= 1024 , <= 2048" is an AND, "= 80 , = 443" an OR),
#  * bitmask operators (tcp flags, fragment) with "=" for the match bit, "∋" without it,
#    "!" for the not bit, ",&" for AND and ",|" for OR,
#  * discard as rate 0, and every traffic-action (sample or terminal) as "eval stops".
IPV6_RULES: Final = (
    (
        "match source 3001:1:a::10/128 destination 3001:4:b::10/128",
        "then redirect 6:302",
        {"to": "3001:4:b::10/128/off 0", "from": "3001:1:a::10/128/off 0"},
        ("FS:redirect VRF RT:6:302",),
    ),
    (
        "match destination 3001:4:b::20/128 protocol tcp destination-port ==80"
        " source-port >1023 tcp-flags =S",
        "then rate-limit 1000",
        {
            "to": "3001:4:b::20/128/off 0",
            "proto": "= 6",
            "dstp": "= 80",
            "srcp": "> 1023",
            "tcp": "= 2",
        },
        ("FS:rate 1000.000000",),
    ),
    (
        "match destination 3001:4:b::30/128 protocol udp port >=1024&<=2048 packet-length >100",
        "then discard",
        {
            "to": "3001:4:b::30/128/off 0",
            "proto": "= 17",
            "port": ">= 1024 , <= 2048",
            "pktlen": "> 100",
        },
        ("FS:rate 0.000000",),
    ),
    (
        "match destination 3001:4:b::40/128 dscp 10 label 5",
        "then mark 20",
        {"to": "3001:4:b::40/128/off 0", "dscp": "= 10", "flwlbl": "= 5"},
        ("FS:marking 20",),
    ),
    (
        "match destination 3001:4:b::50/128 protocol 58 icmp-type 128 icmp-code 0",
        "then action sample",
        {"to": "3001:4:b::50/128/off 0", "proto": "= 58", "type": "= 128", "code": "= 0"},
        ("FS:action eval stops",),
    ),
    (
        "match destination 3001:4:b::60/128 source 3001:1:a::/48 fragment is-fragment",
        "then action terminal",
        {"to": "3001:4:b::60/128/off 0", "from": "3001:1:a::/48/off 0", "pktfrag": "∋ 2"},
        ("FS:action eval stops",),
    ),
    (
        "match destination 3001:4:b::70/128 protocol tcp port ==80 ==443 tcp-flags =S&!=A",
        "then rate-limit 12500 mark 10 redirect 65000:7",
        {
            "to": "3001:4:b::70/128/off 0",
            "proto": "= 6",
            "port": "= 80 , = 443",
            "tcp": "= 2,&= ! 16",
        },
        ("FS:rate 12500.000000", "FS:redirect VRF RT:65000:7", "FS:marking 10"),
    ),
)
IPV4_RULES: Final = (
    (
        "match source 198.51.100.1/32 destination 192.0.2.1/32 protocol tcp"
        " destination-port ==80 source-port >1023 tcp-flags S",
        "then rate-limit 1000",
        {
            "to": "192.0.2.1/32",
            "from": "198.51.100.1/32",
            "proto": "= 6",
            "dstp": "= 80",
            "srcp": "> 1023",
            "tcp": "∋ 2",
        },
        ("FS:rate 1000.000000",),
    ),
    (
        "match destination 192.0.2.2/32 protocol udp packet-length >=500 fragment =is-fragment",
        "then discard",
        {"to": "192.0.2.2/32", "proto": "= 17", "pktlen": ">= 500", "pktfrag": "= 2"},
        ("FS:rate 0.000000",),
    ),
    (
        "match destination 192.0.2.3/32 dscp 46",
        "then mark 10",
        {"to": "192.0.2.3/32", "dscp": "= 46"},
        ("FS:marking 10",),
    ),
    (
        "match destination 192.0.2.4/32 protocol icmp icmp-type 8 icmp-code 0",
        "then action terminal",
        {"to": "192.0.2.4/32", "proto": "= 1", "type": "= 8", "code": "= 0"},
        ("FS:action eval stops",),
    ),
    (
        "match destination 192.0.2.5/32",
        "then redirect 65000:100",
        {"to": "192.0.2.5/32"},
        ("FS:redirect VRF RT:65000:100",),
    ),
    (
        "match destination 192.0.2.6/32 source 198.51.100.0/24",
        "then action sample",
        {"to": "192.0.2.6/32", "from": "198.51.100.0/24"},
        ("FS:action eval stops",),
    ),
    (
        "match destination 192.0.2.0/24 protocol udp source-port ==53 packet-length >1000",
        "then rate-limit 125000 mark 0",
        {"to": "192.0.2.0/24", "proto": "= 17", "srcp": "= 53", "pktlen": "> 1000"},
        ("FS:rate 125000.000000", "FS:marking 0"),
    ),
)


def _shape(entries: list[FrrFlowEntry]) -> list[tuple[dict[str, str], tuple[str, ...]]]:
    return sorted(((e.match, e.actions) for e in entries), key=lambda s: sorted(s[0].items()))


@pytest.mark.integration
@pytest.mark.parametrize("afi", ["ipv4", "ipv6"])
def test_flowspec_rules_reach_frr_and_withdraw(lab: Lab, afi: Afi) -> None:
    """Every FlowSpec rule gobgpd announces shows up in flowspec() with FRR's spelling of
    its match components and actions, valid and best, from gobgpd's session of that
    family (and none in the other family); withdrawing each removes it."""
    rules = IPV4_RULES if afi == "ipv4" else IPV6_RULES
    other: Afi = "ipv6" if afi == "ipv4" else "ipv4"
    family = f"{afi}-flowspec"
    for match, then, _, _ in rules:
        lab.announce(family, *match.split(), *then.split())

    entries = lab.wait_flowspec(afi, len(rules))

    assert _shape(entries) == sorted(
        ((m, a) for _, _, m, a in rules), key=lambda s: sorted(s[0].items())
    )
    peer = lab.router.host_v4 if afi == "ipv4" else lab.router.host_v6
    assert {(True, True, peer)} == {(e.valid, e.best, e.peer) for e in entries}
    assert lab.router.flowspec(other) == []
    assert " 65010 ?" in lab.router.flowspec_text(afi)

    for match, _, _, _ in rules:
        lab.withdraw(family, *match.split())
    assert lab.wait_flowspec(afi, 0) == []
    assert lab.router.alive() == {"bgpd": True}


@pytest.mark.integration
def test_redirect_rule_survives_withdraw_and_reannounce_without_zebra(lab: Lab) -> None:
    """The sequence that crashes FRR 8.4.4's zebra (redirect rule announced, withdrawn,
    announced again) leaves the harness's zebra-less bgpd alive with the rule present."""
    match = ["match", "source", "3001:1:a::10/128", "destination", "3001:4:b::10/128"]
    then = ["then", "redirect", "6:302"]
    for _ in range(2):
        lab.announce("ipv6-flowspec", *match, *then)
        (entry,) = lab.wait_flowspec("ipv6", 1)
        assert entry.redirect == "6:302"
        lab.withdraw("ipv6-flowspec", *match)
        lab.wait_flowspec("ipv6", 0)
    lab.announce("ipv6-flowspec", *match, *then)

    (entry,) = lab.wait_flowspec("ipv6", 1)
    assert (entry.valid, entry.best) == (True, True)
    assert lab.router.alive() == {"bgpd": True}


@pytest.mark.integration
def test_unicast_routes_carry_next_hop_and_communities(lab: Lab) -> None:
    """/128 and /32 routes from gobgpd appear in unicast_routes() and, with next hop
    (the speaker's root-side address), communities (well-known ones by FRR's names),
    large communities and MED, in unicast_route()/unicast_details(); a withdrawn route
    is gone."""
    r = lab.router
    lab.announce("ipv6", "3001:10:66::5/128", "community", "65000:666")
    lab.announce(
        "ipv4",
        *[
            "192.0.2.66/32",
            "community",
            "65535:666,65000:666",
            "large-community",
            "65010:1:2",
            "med",
            "50",
        ],
    )
    r.wait_unicast("ipv6", "3001:10:66::5/128")
    r.wait_unicast("ipv4", "192.0.2.66/32")

    v6 = r.unicast_routes("ipv6")
    assert list(v6) == ["3001:10:66::5/128"]
    (raw,) = v6["3001:10:66::5/128"]
    assert (True, True, r.host_v6) == (raw["valid"], raw["bestpath"], raw["peerId"])
    (path6,) = r.unicast_route("ipv6", "3001:10:66::5/128")
    assert (r.host_v6,) == path6.next_hops
    assert path6.communities == ("65000:666",)
    assert (path6.large_communities, path6.med, path6.local_pref) == ((), None, None)
    assert (
        path6.as_path,
        path6.origin,
        path6.valid,
        path6.best,
    ) == ("65010", "incomplete", True, True)

    details = r.unicast_details("ipv4")
    assert list(details) == ["192.0.2.66/32"]
    (path4,) = details["192.0.2.66/32"]
    assert (r.host_v4,) == path4.next_hops
    # FRR adds no-export to a route tagged BLACKHOLE (RFC 7999 section 3.2) and sorts.
    assert path4.communities == ("65000:666", "blackhole", "noExport")
    assert path4.large_communities == ("65010:1:2",)
    assert (50, r.host_v4) == (path4.med, path4.peer)

    lab.withdraw("ipv6", "3001:10:66::5/128")
    r.wait_until(lambda: not r.unicast_routes("ipv6"), 10, "the IPv6 route to go")
    assert r.unicast_route("ipv6", "3001:10:66::5/128") == []
    assert list(r.unicast_routes("ipv4")) == ["192.0.2.66/32"]


@pytest.mark.integration
def test_with_zebra_installs_unicast_routes_in_the_namespace(
    frr_router_factory: FrrRouterFactory, tmp_path: Path
) -> None:
    """with_zebra=True starts zebra too (its own zserv socket); received unicast routes
    are valid and zebra installs them in the namespace's kernel table via the veth."""
    if GOBGPD is None or GOBGP is None:
        pytest.skip("gobgpd/gobgp are not installed (Debian package gobgpd)")
    port = _free_port_on_both("0.0.0.0", "::")
    router = frr_router_factory(
        [Neighbor(HOST_V4, PEER_AS, port=port), Neighbor(HOST_V6, PEER_AS, port=port)],
        with_zebra=True,
    )
    speaker = GoBgpd(tmp_path / "gobgpd", router, bgp_port=port)
    try:
        speaker.start()
        router.wait_established(timeout=20)
        speaker.gobgp("global", "rib", "-a", "ipv6", "add", "3001:10:66::5/128")

        def kernel_route() -> str | None:
            out = run_ip("-6", "route", "show", "3001:10:66::5/128", namespace=router.namespace)
            return out.strip() or None

        route = router.wait_until(kernel_route, 10, "zebra to install the route")
    finally:
        speaker.stop()

    assert f"via {router.host_v6}" in route
    assert "proto bgp" in route
    assert router.alive() == {"zebra": True, "bgpd": True}
