"""lab/topology.toml, its loader, and the lab files that must agree with it: every
router's frr.conf, the controller's trafexd.toml, the enforcer's enforce.toml, the FRR
daemons file; and the lab's resolver, which answers the zone topology.toml gives it."""

from __future__ import annotations

import ipaddress
import struct
import tomllib
from pathlib import Path
from typing import Any

import pytest
from scapy.layers.dns import DNS, DNSQR

from trafex.config import ConfigError
from trafex.lab import dnsd
from trafex.lab.topology import (
    LAB_DIR,
    Node,
    Topology,
    frr_daemons,
    load_topology,
    parse_topology,
)

from . import frrconf

TOPOLOGY = load_topology()
ROUTERS = TOPOLOGY.of_kind("router")
CONTROLLER = TOPOLOGY.controller

# The smallest valid lab: one router, the controller, one link.
MINIMAL = """
[lab]
name = "t"
asn = 65000

[nodes.r1]
kind = "router"
loopback = "3001::1"
router_id = "1.1.1.1"

[nodes.c]
kind = "controller"
gateway = "3001:1::1"
asn = 65010
trafexd = "controller/trafexd.toml"

[[links]]
a = { end = "r1:eth1", addresses = ["3001:1::1/64"] }
b = { end = "c:eth1", addresses = ["3001:1::10/64"] }
"""


def _parse(text: str) -> Topology:
    return parse_topology(tomllib.loads(text))


def _toml(path: Path) -> dict[str, Any]:
    return tomllib.loads(path.read_text(encoding="utf-8"))


# -- the loader --------------------------------------------------------------------------


def test_minimal_topology_loads() -> None:
    """The smallest lab the error cases below start from is itself valid."""
    topology = _parse(MINIMAL)
    assert [n.name for n in topology.nodes] == ["r1", "c"]
    assert topology.controller.asn == 65010
    assert topology.address("c") == ipaddress.IPv6Address("3001:1::10")


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        pytest.param(
            'router_id = "1.1.1.1"',
            'router_id = "1.1.1.1"\ncolour = "red"',
            "nodes.r1.colour: unknown key",
            id="unknown-key",
        ),
        pytest.param(
            "asn = 65000\n\n[nodes.r1]",
            "asn = 65000\nsize = 4\n\n[nodes.r1]",
            "lab.size: unknown key",
            id="unknown-lab-key",
        ),
        pytest.param(
            'loopback = "3001::1"', 'loopback = "3001::zz"', "nodes.r1.loopback", id="bad-loopback"
        ),
        pytest.param(
            '"3001:1::10/64"', '"3001:1::10/129"', "links[0].b.addresses", id="bad-link-address"
        ),
        pytest.param('end = "c:eth1"', 'end = "c9:eth1"', "links[0]: no node 'c9'", id="no-node"),
        pytest.param(
            'b = { end = "c:eth1"',
            'c = 1\nb = { end = "c:eth1"',
            "links[0].c: unknown key (known: a, b)",
            id="unknown-link-key",
        ),
        pytest.param(
            'b = { end = "c:eth1"', 'b = { ed = "c:eth1"', "links[0].b.end: missing", id="no-end"
        ),
        pytest.param(
            'end = "c:eth1"',
            'end = "r1:eth1"',
            "links[0]: r1:eth1 is used twice",
            id="ifname-twice",
        ),
        pytest.param(
            'kind = "controller"',
            'kind = "host"',
            "nodes: the lab needs exactly one controller",
            id="no-controller",
        ),
        pytest.param("asn = 65010\n", "", "nodes.c: the controller needs asn", id="controller-asn"),
    ],
)
def test_loader_errors_name_the_key(old: str, new: str, message: str) -> None:
    """A wrong topology raises ConfigError whose message names the key at fault."""
    assert old in MINIMAL
    with pytest.raises(ConfigError) as caught:
        _parse(MINIMAL.replace(old, new, 1))
    assert message in str(caught.value)


def test_interface_used_twice_across_links() -> None:
    """The same NODE:IFNAME in two links is an error naming the second link."""
    extra = '[[links]]\na = { end = "r1:eth1" }\nb = { end = "c:eth2" }\n'
    with pytest.raises(ConfigError, match=r"links\[1\]: r1:eth1 is used twice"):
        _parse(MINIMAL + extra)


def test_load_topology_file_errors(tmp_path: Path) -> None:
    """A missing file or one that is not TOML is a ConfigError naming the file."""
    with pytest.raises(ConfigError, match=r"nothing\.toml"):
        load_topology(tmp_path / "nothing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[lab\n")
    with pytest.raises(ConfigError, match=r"broken\.toml: not valid TOML"):
        load_topology(broken)


def test_frr_daemons_zebra_first() -> None:
    """The committed daemons file starts zebra first, then bgpd and ospf6d; no other."""
    assert frr_daemons() == ("zebra", "bgpd", "ospf6d")


def test_frr_daemons_reads_yes_lines_only(tmp_path: Path) -> None:
    """Only NAME=yes daemon lines count, zebra first: not =no, *_options, vtysh_enable."""
    path = tmp_path / "daemons"
    path.write_text('ripd=yes\nbgpd=no\nzebra=yes\nvtysh_enable=yes\nzebra_options="-A ::1"\n')
    assert frr_daemons(path) == ("zebra", "ripd")


def test_frr_daemons_skips_comments(tmp_path: Path) -> None:
    """A commented-out ``# NAME=yes`` line (FRR's daemons file is shell) starts nothing."""
    path = tmp_path / "daemons"
    path.write_text("zebra=yes\n# ripd=yes\n#bgpd=yes\n")
    assert frr_daemons(path) == ("zebra",)


# -- the committed lab -------------------------------------------------------------------


def test_committed_topology_shape() -> None:
    """The talk's lab: four routers, the controller in AS 65010, the resolver with
    badhacks.com., router1 enforcing, the sensor on a link end that exists."""
    assert [n.name for n in ROUTERS] == ["router1", "router2", "router3", "router4"]
    assert TOPOLOGY.asn == 65000 and CONTROLLER.asn == 65010
    assert [n.name for n in TOPOLOGY.enforcers] == ["router1"]
    assert TOPOLOGY.resolver is not None and TOPOLOGY.resolver.name == "dns"
    ends = {(e.node, e.ifname) for link in TOPOLOGY.links for e in link.ends()}
    assert (CONTROLLER.sensor_node, CONTROLLER.sensor_interface) in ends
    for path in (CONTROLLER.trafexd, CONTROLLER.sensor, *(n.enforce for n in ROUTERS)):
        assert path is None or path.is_file(), path


def _link_peers(node: str) -> list[tuple[str, Node]]:
    """(ifname, the node at the other end) for each of ``node``'s links."""
    peers = []
    for link in TOPOLOGY.links:
        for mine, other in ((link.a, link.b), (link.b, link.a)):
            if mine.node == node:
                peers.append((mine.ifname, TOPOLOGY.node(other.node)))
    return peers


@pytest.mark.parametrize("router", ROUTERS, ids=lambda n: n.name)
def test_frr_conf_interfaces_match_topology(router: Node) -> None:
    """Every link end on a router is an ``interface`` block in its frr.conf with exactly
    the topology's addresses, the loopback is ``interface lo``'s /128, and frr.conf has
    no addressed interface the topology lacks."""
    conf = frrconf.load(router.frr_config)
    assert router.loopback is not None
    expected = {end.ifname: set(end.addresses) for end in TOPOLOGY.ends_of(router.name)}
    expected["lo"] = {ipaddress.IPv6Interface(f"{router.loopback}/128")}
    for ifname, addresses in expected.items():
        assert ifname in conf.interfaces, f"{router.name}: no 'interface {ifname}'"
        assert conf.interfaces[ifname] == addresses, f"{router.name} {ifname}"
    addressed = {name for name, addresses in conf.interfaces.items() if addresses}
    assert addressed == set(expected)


@pytest.mark.parametrize("router", ROUTERS, ids=lambda n: n.name)
def test_frr_conf_ids_and_as(router: Node) -> None:
    """``ospf6 router-id`` and ``bgp router-id`` are the node's router_id, and ``router
    bgp`` is the lab's AS."""
    conf = frrconf.load(router.frr_config)
    assert conf.ospf6_router_id == router.router_id
    assert conf.bgp_router_id == router.router_id
    assert conf.bgp_asn == TOPOLOGY.asn


@pytest.mark.parametrize("router", ROUTERS, ids=lambda n: n.name)
def test_frr_conf_bgp_neighbors(router: Node) -> None:
    """The iBGP neighbors are exactly the other routers' loopbacks (from the loopback);
    a router linked to the controller peers with the controller's address in the
    controller's AS, and no other router has an eBGP neighbor."""
    conf = frrconf.load(router.frr_config)
    others = {r.loopback for r in ROUTERS if r.name != router.name}
    assert conf.neighbors_in(TOPOLOGY.asn) == others
    for address in others:
        assert address is not None
        neighbor = conf.neighbors[address]
        group = conf.groups.get(neighbor.peer_group or "")
        update_source = neighbor.update_source or (group.update_source if group else None)
        assert update_source == "lo", f"{router.name} -> {address}"
    ebgp = {a: conf.remote_as(a) for a in conf.neighbors if conf.remote_as(a) != TOPOLOGY.asn}
    controller_linked = any(peer.kind == "controller" for _, peer in _link_peers(router.name))
    expected = {TOPOLOGY.address(CONTROLLER.name): CONTROLLER.asn} if controller_linked else {}
    assert ebgp == expected


def test_router2_is_the_controller_peer() -> None:
    """As in the talk, router2 is the router that peers with the controller."""
    linked = [
        r.name for r in ROUTERS if any(p.kind == "controller" for _, p in _link_peers(r.name))
    ]
    assert linked == ["router2"]


def test_trafexd_neighbors_match_topology() -> None:
    """trafexd.toml: the controller's AS, listening on its address; its neighbors are
    the routers' addresses on its links (router2, unicast) and each enforcer's loopback
    (FlowSpec), all in the lab's AS."""
    assert CONTROLLER.trafexd is not None
    bgp = _toml(CONTROLLER.trafexd)["bgp"]
    own = TOPOLOGY.address(CONTROLLER.name)
    assert bgp["asn"] == CONTROLLER.asn
    assert [ipaddress.ip_address(a) for a in bgp["listen_addresses"]] == [own]
    linked = set()
    for link in TOPOLOGY.links:
        ends = {link.a.node: link.a, link.b.node: link.b}
        if CONTROLLER.name in ends:
            (other,) = (e for name, e in ends.items() if name != CONTROLLER.name)
            linked |= {a.ip for a in other.addresses}
    enforcers = {n.loopback for n in TOPOLOGY.enforcers}
    neighbors = {ipaddress.ip_address(n["address"]): n for n in bgp["neighbor"]}
    assert set(neighbors) == linked | enforcers
    assert all(n["peer_as"] == TOPOLOGY.asn for n in neighbors.values())
    for address in linked:
        assert ipaddress.ip_address(neighbors[address]["local_address"]) == own


@pytest.mark.parametrize("node", TOPOLOGY.enforcers, ids=lambda n: n.name)
def test_enforce_toml_matches_topology(node: Node) -> None:
    """enforce.toml: the router's AS and router id, one neighbor, the controller's
    address in the controller's AS, reached from the router's loopback; every redirect
    route's next hop is a neighbor's address on one of the router's links."""
    assert node.enforce is not None
    config = _toml(node.enforce)
    bgp = config["bgp"]
    assert bgp["asn"] == TOPOLOGY.asn
    assert ipaddress.ip_address(bgp["router_id"]) == node.router_id
    (neighbor,) = bgp["neighbor"]
    assert ipaddress.ip_address(neighbor["address"]) == TOPOLOGY.address(CONTROLLER.name)
    assert neighbor["peer_as"] == CONTROLLER.asn
    assert ipaddress.ip_address(neighbor["local_address"]) == node.loopback
    ifnames = {end.ifname for end in TOPOLOGY.ends_of(node.name)}
    assert set(config["enforce"]["interfaces"]) <= ifnames
    next_hops = {a.ip for _, peer in _link_peers(node.name) for a in TOPOLOGY.addresses(peer.name)}
    for redirect in config["enforce"]["redirect"]:
        for route in redirect["routes"]:
            via = ipaddress.ip_address(route.split(" via ")[1])
            assert via in next_hops, route


def test_lab_files_are_in_lab_dir() -> None:
    """Every file topology.toml names is inside lab/ (containerlab mounts lab/ only)."""
    paths = [CONTROLLER.trafexd, CONTROLLER.sensor, *(n.enforce for n in TOPOLOGY.nodes)]
    paths += [r.frr_config for r in ROUTERS]
    for path in paths:
        if path is not None:
            assert path.is_relative_to(LAB_DIR), path


# -- the resolver ------------------------------------------------------------------------

ZONE: dnsd.Zone = dict(TOPOLOGY.resolver.dns) if TOPOLOGY.resolver else {}
NAME, ADDRESS = next(iter(ZONE.items()))


def _query(name: str, qtype: str = "AAAA", ident: int = 0x1234) -> bytes:
    return bytes(DNS(id=ident, rd=1, qd=DNSQR(qname=name, qtype=qtype)))


def test_dnsd_answers_aaaa_from_the_zone() -> None:
    """An AAAA query for the zone's name gets one authoritative answer, its address,
    with the query's id, RD and question echoed."""
    assert (NAME, str(ADDRESS)) == ("badhacks.com.", "3001:10:66::5")
    response = dnsd.answer(_query(NAME), ZONE)
    assert response is not None
    message = DNS(response)
    assert (message.id, message.qr, message.aa, message.rd, message.rcode) == (0x1234, 1, 1, 1, 0)
    assert message.ancount == 1
    assert message.an[0].type == 28
    assert ipaddress.ip_address(message.an[0].rdata) == ADDRESS
    assert message.qd[0].qname == NAME.encode()


def test_dnsd_name_case_insensitive() -> None:
    """Names match whatever their case (DNS names are case-insensitive)."""
    response = dnsd.answer(_query(NAME.upper()), ZONE)
    assert response is not None and DNS(response).ancount == 1


def test_dnsd_a_query_is_noerror_without_answer() -> None:
    """An A query for an IPv6-only name: NOERROR, no answer (the name exists)."""
    response = dnsd.answer(_query(NAME, "A"), ZONE)
    assert response is not None
    message = DNS(response)
    assert (message.qr, message.rcode, message.ancount) == (1, 0, 0)


def test_dnsd_unknown_name_is_nxdomain() -> None:
    """A name outside the zone: NXDOMAIN, no answer."""
    response = dnsd.answer(_query("example.com."), ZONE)
    assert response is not None
    message = DNS(response)
    assert (message.qr, message.rcode, message.ancount) == (1, 3, 0)


def test_dnsd_ignores_responses() -> None:
    """A message with QR set (a response) gets no answer: no loops between resolvers."""
    response = dnsd.answer(_query(NAME), ZONE)
    assert response is not None
    assert dnsd.answer(response, ZONE) is None


@pytest.mark.parametrize(
    "garbage",
    [
        b"",
        b"\x00" * 11,
        b"\xff" * 40,
        struct.pack("!HHHHHH", 1, 0, 1, 0, 0, 0) + b"\x3fbad",  # label past the end
        struct.pack("!HHHHHH", 1, 0, 1, 0, 0, 0) + b"\xc0\x0c\x00\x1c\x00\x01",  # pointer
        struct.pack("!HHHHHH", 1, 0, 2, 0, 0, 0) + bytes(_query(NAME))[12:],  # 2 questions
        struct.pack("!HHHHHH", 1, 0, 1, 0, 0, 0) + b"\x03\xff\xfe\xfd\x00\x00\x1c\x00\x01",
    ],
    ids=["empty", "short", "ones", "truncated", "compressed", "two-questions", "not-ascii"],
)
def test_dnsd_ignores_garbage(garbage: bytes) -> None:
    """Anything that is not one well-formed question gets no answer (None), no error."""
    assert dnsd.answer(garbage, ZONE) is None
