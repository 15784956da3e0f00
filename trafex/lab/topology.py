"""The lab's one description (``lab/topology.toml``), read into frozen values.

Both runners start from it: ``trafex lab up`` builds it in network namespaces, and the
containerlab file is rendered from it (:mod:`trafex.lab.clab`). Pure: no I/O beyond
reading the file, and every fact is checked here so that the runners can trust it.
"""

from __future__ import annotations

import ipaddress
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from trafex.model.errors import TrafexError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Interface = ipaddress.IPv4Interface | ipaddress.IPv6Interface
Kind = Literal["router", "host", "controller"]
KINDS: tuple[Kind, ...] = ("router", "host", "controller")

#: The lab's files: lab/ at the top of the repository.
LAB_DIR = Path(__file__).resolve().parents[2] / "lab"
TOPOLOGY_FILE = LAB_DIR / "topology.toml"
DAEMONS_FILE = LAB_DIR / "routers" / "daemons"

# Kernel settings of the lab's nodes (both runners apply them).
ROUTER_SYSCTLS = {
    "net.ipv6.conf.all.forwarding": "1",
    "net.ipv6.conf.all.accept_dad": "0",
    "net.ipv6.conf.default.accept_dad": "0",
    "net.ipv6.conf.all.keep_addr_on_down": "1",
}
HOST_SYSCTLS = {
    "net.ipv6.conf.all.accept_dad": "0",
    "net.ipv6.conf.default.accept_dad": "0",
    "net.ipv6.conf.default.accept_ra": "0",
}
_IFNAME = re.compile(r"^[a-z][a-z0-9]{0,7}$")
_NODE = re.compile(r"^[a-z][a-z0-9]{0,9}$")


class TopologyError(TrafexError):
    """The topology file is wrong; the message names the key."""


@dataclass(frozen=True)
class End:
    """One end of a link: a node's interface and its addresses."""

    node: str
    ifname: str
    addresses: tuple[Interface, ...]


@dataclass(frozen=True)
class Link:
    a: End
    b: End

    def ends(self) -> tuple[End, End]:
        return (self.a, self.b)


@dataclass(frozen=True)
class Node:
    name: str
    kind: Kind
    loopback: ipaddress.IPv6Address | None = None  # routers
    router_id: ipaddress.IPv4Address | None = None  # routers
    gateway: IPAddress | None = None  # hosts and the controller: their default route
    asn: int | None = None  # the controller's AS (routers use the lab's)
    dns: tuple[tuple[str, IPAddress], ...] = ()  # a resolver's zone: name -> address
    enforce: Path | None = None  # a router that runs trafex enforce: its config
    trafexd: Path | None = None  # the controller's trafexd config
    sensor: Path | None = None  # the controller's sensor config
    sensor_node: str = ""  # where the sensor captures
    sensor_interface: str = ""

    @property
    def frr_config(self) -> Path:
        return LAB_DIR / "routers" / self.name / "frr.conf"


@dataclass(frozen=True)
class Topology:
    name: str
    asn: int
    nodes: tuple[Node, ...]
    links: tuple[Link, ...]

    def node(self, name: str) -> Node:
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(name)

    def of_kind(self, kind: Kind) -> tuple[Node, ...]:
        return tuple(n for n in self.nodes if n.kind == kind)

    def ends_of(self, node: str) -> tuple[End, ...]:
        """The node's link ends, by interface name."""
        ends = [e for link in self.links for e in link.ends() if e.node == node]
        return tuple(sorted(ends, key=lambda e: (len(e.ifname), e.ifname)))

    def addresses(self, node: str) -> tuple[Interface, ...]:
        return tuple(a for e in self.ends_of(node) for a in e.addresses)

    def address(self, node: str) -> IPAddress:
        """The node's first link address (a host's or the controller's own address)."""
        return self.addresses(node)[0].ip

    @property
    def controller(self) -> Node:
        return self.of_kind("controller")[0]

    @property
    def enforcers(self) -> tuple[Node, ...]:
        return tuple(n for n in self.nodes if n.enforce is not None)

    @property
    def resolver(self) -> Node | None:
        return next((n for n in self.nodes if n.dns), None)


class _Reader:
    """A TOML table read key by key; what is left unread is an unknown key."""

    def __init__(self, data: Any, path: str) -> None:
        if not isinstance(data, Mapping):
            raise TopologyError(f"{path}: expected a table")
        self.data = dict(data)
        self.path = path

    def take(self, key: str, kind: type, required: bool = False) -> Any:
        if key not in self.data:
            if required:
                raise TopologyError(f"{self.path}.{key}: missing")
            return None
        value = self.data.pop(key)
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
            raise TopologyError(f"{self.path}.{key}: expected {kind.__name__}")
        return value

    def parse(self, key: str, parse: Any, required: bool = False) -> Any:
        value = self.take(key, str, required)
        if value is None:
            return None
        try:
            return parse(value)
        except ValueError as error:
            raise TopologyError(f"{self.path}.{key}: {error}") from None

    def done(self) -> None:
        if self.data:
            raise TopologyError(f"unknown key {self.path}.{sorted(self.data)[0]}")


def _end(data: Any, path: str) -> End:
    table = _Reader(data, path)
    node, sep, ifname = table.take("end", str, required=True).partition(":")
    if not sep or not _IFNAME.match(ifname):
        raise TopologyError(f"{path}.end: expected NODE:IFNAME (ifname like eth1)")
    addresses = table.take("addresses", list) or []
    try:
        interfaces = tuple(ipaddress.ip_interface(a) for a in addresses)
    except ValueError as error:
        raise TopologyError(f"{path}.addresses: {error}") from None
    table.done()
    return End(node, ifname, interfaces)


def _node(name: str, data: Any) -> Node:
    path = f"nodes.{name}"
    if not _NODE.match(name):
        raise TopologyError(f"{path}: a node name is 1-10 lowercase letters and digits")
    table = _Reader(data, path)
    kind = table.take("kind", str, required=True)
    if kind not in KINDS:
        raise TopologyError(f"{path}.kind: use one of {', '.join(KINDS)}")
    dns = table.take("dns", dict) or {}
    try:
        zone = tuple((str(n), ipaddress.ip_address(a)) for n, a in sorted(dns.items()))
    except ValueError as error:
        raise TopologyError(f"{path}.dns: {error}") from None

    def path_of(key: str) -> Path | None:
        value = table.take(key, str)
        return None if value is None else LAB_DIR / value

    node = Node(
        name=name,
        kind=kind,
        loopback=table.parse("loopback", ipaddress.IPv6Address),
        router_id=table.parse("router_id", ipaddress.IPv4Address),
        gateway=table.parse("gateway", ipaddress.ip_address),
        asn=table.take("asn", int),
        dns=zone,
        enforce=path_of("enforce"),
        trafexd=path_of("trafexd"),
        sensor=path_of("sensor"),
        sensor_node=table.take("sensor_node", str) or "",
        sensor_interface=table.take("sensor_interface", str) or "",
    )
    table.done()
    if kind == "router" and (node.loopback is None or node.router_id is None):
        raise TopologyError(f"{path}: a router needs loopback and router_id")
    if kind != "router" and node.gateway is None:
        raise TopologyError(f"{path}: a {kind} needs a gateway")
    if kind == "controller" and (node.asn is None or node.trafexd is None):
        raise TopologyError(f"{path}: the controller needs asn and trafexd")
    return node


def parse_topology(data: Mapping[str, Any]) -> Topology:
    """Check and freeze a parsed ``topology.toml``."""
    root = _Reader(data, "topology")
    lab = _Reader(root.take("lab", dict, required=True), "lab")
    name = lab.take("name", str, required=True)
    asn = lab.take("asn", int, required=True)
    lab.done()
    nodes = tuple(_node(n, d) for n, d in (root.take("nodes", dict, required=True)).items())
    links = tuple(
        Link(_end(item.get("a"), f"links[{i}].a"), _end(item.get("b"), f"links[{i}].b"))
        for i, item in enumerate(root.take("links", list, required=True))
    )
    root.done()
    names = {n.name for n in nodes}
    seen: set[tuple[str, str]] = set()
    for i, link in enumerate(links):
        for end in link.ends():
            if end.node not in names:
                raise TopologyError(f"links[{i}]: no node {end.node!r}")
            if (end.node, end.ifname) in seen:
                raise TopologyError(f"links[{i}]: {end.node}:{end.ifname} is used twice")
            seen.add((end.node, end.ifname))
    if len([n for n in nodes if n.kind == "controller"]) != 1:
        raise TopologyError("nodes: the lab needs exactly one controller")
    topology = Topology(name=name, asn=asn, nodes=nodes, links=links)
    for node in nodes:
        if node.kind != "router" and not topology.addresses(node.name):
            raise TopologyError(f"nodes.{node.name}: not on any link with an address")
    return topology


def load_topology(path: Path = TOPOLOGY_FILE) -> Topology:
    try:
        return parse_topology(tomllib.loads(path.read_text(encoding="utf-8")))
    except OSError as error:
        raise TopologyError(f"{path}: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise TopologyError(f"{path}: not valid TOML: {error}") from None


def controller_api(topology: Topology) -> str:
    """``[ADDRESS]:PORT`` of trafexd's API as the lab's sensor reaches it: the
    controller's address, the port of its trafexd.toml ``[api] listen``."""
    from trafex.control.config import load_config

    controller = topology.controller
    assert controller.trafexd is not None
    port = load_config(controller.trafexd).api.listen.rpartition(":")[2]
    address = topology.address(controller.name)
    return f"[{address}]:{port}" if address.version == 6 else f"{address}:{port}"


def frr_daemons(path: Path = DAEMONS_FILE) -> tuple[str, ...]:
    """The FRR daemons the lab's routers run (``NAME=yes`` lines of FRR's daemons file),
    zebra first: every other daemon connects to it."""
    names = []
    for line in path.read_text(encoding="utf-8").splitlines():
        key, sep, value = line.partition("#")[0].strip().partition("=")
        if sep and value.strip() == "yes" and "_" not in key and key != "vtysh":
            names.append(key)
    return tuple(sorted(names, key=lambda n: (n != "zebra", n)))
