"""The lab's one description (``lab/topology.toml``), read into frozen values.

Both runners start from it: ``trafex lab up`` builds it in network namespaces, and the
containerlab file is rendered from it (:mod:`trafex.lab.clab`). Pure: no I/O beyond
reading the file, and every fact is checked here so that the runners can trust it. Read
like every trafex config, by :meth:`trafex.config.Table.read` from the dataclasses
below: a mistake is a :class:`~trafex.config.ConfigError` naming the key.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from trafex.config import (
    ConfigError,
    Parse,
    Table,
    ip_address,
    ipv4_address,
    ipv6_address,
    read_toml,
    split_host_port,
)

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


def _interfaces(value: Any) -> tuple[Interface, ...]:
    if not isinstance(value, list) or not all(isinstance(a, str) for a in value):
        raise TypeError('expected a list of ADDRESS/LENGTH strings, like "3001:1::1/64"')
    return tuple(ipaddress.ip_interface(a) for a in value)


def _zone(value: Any) -> tuple[tuple[str, IPAddress], ...]:
    if not isinstance(value, Mapping):
        raise TypeError('expected a table of NAME = ADDRESS, like { "a.com." = "3001::1" }')
    return tuple((str(name), ip_address(address)) for name, address in sorted(value.items()))


def _lab_file(value: Any) -> Path:
    """A file of the lab, written relative to lab/."""
    if not isinstance(value, str):
        raise TypeError(f"expected a path relative to lab/, got {type(value).__name__}")
    return LAB_DIR / value


@dataclass(frozen=True)
class End:
    """One end of a link: a node's interface and its addresses."""

    node: str
    ifname: str
    addresses: Annotated[tuple[Interface, ...], Parse(_interfaces)] = ()


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
    loopback: Annotated[ipaddress.IPv6Address | None, Parse(ipv6_address)] = None  # routers
    router_id: Annotated[ipaddress.IPv4Address | None, Parse(ipv4_address)] = None  # routers
    # Hosts and the controller: their default route.
    gateway: Annotated[IPAddress | None, Parse(ip_address)] = None
    asn: int | None = None  # the controller's AS (routers use the lab's)
    # A resolver's zone: name -> address.
    dns: Annotated[tuple[tuple[str, IPAddress], ...], Parse(_zone)] = ()
    # A router that runs trafex enforce: its config.
    enforce: Annotated[Path | None, Parse(_lab_file)] = None
    trafexd: Annotated[Path | None, Parse(_lab_file)] = None  # the controller's trafexd config
    sensor: Annotated[Path | None, Parse(_lab_file)] = None  # the controller's sensor config
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


def _end(table: Table) -> End:
    node, sep, ifname = table.take("end", str).partition(":")
    if not sep or not _IFNAME.match(ifname):
        raise table.error("end", "expected NODE:IFNAME (ifname like eth1)")
    return table.read(End, node=node, ifname=ifname)


def _node(name: str, table: Table) -> Node:
    if not _NODE.match(name):
        raise ConfigError("a node name is 1-10 lowercase letters and digits", table.path)
    node = table.read(Node, name=name)
    if node.kind == "router" and (node.loopback is None or node.router_id is None):
        raise ConfigError("a router needs loopback and router_id", table.path)
    if node.kind != "router" and node.gateway is None:
        raise ConfigError(f"a {node.kind} needs a gateway", table.path)
    if node.kind == "controller" and (node.asn is None or node.trafexd is None):
        raise ConfigError("the controller needs asn and trafexd", table.path)
    return node


def _check_links(links: tuple[Link, ...], names: set[str]) -> None:
    """Every link end is a node's, and each NODE:IFNAME is used once."""
    seen: set[tuple[str, str]] = set()
    for i, link in enumerate(links):
        for end in link.ends():
            if end.node not in names:
                raise ConfigError(f"no node {end.node!r}", f"links[{i}]")
            if (end.node, end.ifname) in seen:
                raise ConfigError(f"{end.node}:{end.ifname} is used twice", f"links[{i}]")
            seen.add((end.node, end.ifname))


def parse_topology(data: Mapping[str, Any]) -> Topology:
    """Check and freeze a parsed ``topology.toml``."""
    root = Table(data, "")
    nodes = tuple(_node(name, table) for name, table in root.named_tables("nodes"))
    links = tuple(
        item.read(Link, a=_end(item.table("a")), b=_end(item.table("b")))
        for item in root.tables("links")
    )
    # [lab] holds the topology's own fields: name and asn.
    topology = root.table("lab").read(Topology, nodes=nodes, links=links)
    root.done()
    _check_links(links, {n.name for n in nodes})
    if len(topology.of_kind("controller")) != 1:
        raise ConfigError("the lab needs exactly one controller", "nodes")
    for node in nodes:
        if node.kind != "router" and not topology.addresses(node.name):
            raise ConfigError("not on any link with an address", f"nodes.{node.name}")
    return topology


def load_topology(path: Path = TOPOLOGY_FILE) -> Topology:
    return parse_topology(read_toml(path))


@dataclass(frozen=True, slots=True)
class ApiAccess:
    """How the lab's clients reach trafexd's API: ``target`` (``[ADDRESS]:PORT``, the
    controller's address and the port of its trafexd.toml ``[api] listen``), and the
    files of the PKI that trafexd.toml names (in ``pki``): the CA that signed its
    certificate and the token."""

    target: str
    pki: Path
    ca: Path
    token: Path

    def client_env(self) -> dict[str, str]:
        """The environment that points trafex-ctl and the sensor at these files."""
        return {"TRAFEX_TLS_CA": str(self.ca), "TRAFEX_TOKEN_FILE": str(self.token)}


def controller_access(topology: Topology) -> ApiAccess:
    """The lab's :class:`ApiAccess`, from the controller's trafexd.toml."""
    from trafex.control.config import load_config

    controller = topology.controller
    assert controller.trafexd is not None
    api = load_config(controller.trafexd).api
    if api.tls_cert is None or api.token_file is None:
        raise ConfigError("the lab's API needs tls_cert and token_file", f"{controller.trafexd}")
    _, port = split_host_port(api.listen)
    address = topology.address(controller.name)
    target = f"[{address}]:{port}" if address.version == 6 else f"{address}:{port}"
    pki = api.tls_cert.parent
    return ApiAccess(target=target, pki=pki, ca=pki / "ca.pem", token=api.token_file)


def frr_daemons(path: Path = DAEMONS_FILE) -> tuple[str, ...]:
    """The FRR daemons the lab's routers run (``NAME=yes`` lines of FRR's daemons file),
    zebra first: every other daemon connects to it."""
    names = []
    for line in path.read_text(encoding="utf-8").splitlines():
        key, sep, value = line.partition("#")[0].strip().partition("=")
        if sep and value.strip() == "yes" and "_" not in key and key != "vtysh":
            names.append(key)
    return tuple(sorted(names, key=lambda n: (n != "zebra", n)))
