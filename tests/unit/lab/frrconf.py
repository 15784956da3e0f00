"""Just enough of FRR's configuration language to check the lab's ``frr.conf`` files.

Reads the lines the lab's tests compare with lab/topology.toml: each ``interface``
block's ``ipv6 address`` lines, ``ospf6 router-id``, ``router bgp ASN`` with its
``bgp router-id`` and ``neighbor`` lines (peer groups resolved). Anything else is
skipped. A block starts at a line without indentation and ends at ``!`` or the next one.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Interface = ipaddress.IPv4Interface | ipaddress.IPv6Interface


@dataclass
class Neighbor:
    remote_as: int | None = None
    peer_group: str | None = None
    update_source: str | None = None


@dataclass
class FrrConf:
    interfaces: dict[str, set[Interface]] = field(default_factory=dict)
    ospf6_router_id: ipaddress.IPv4Address | None = None
    bgp_asn: int | None = None
    bgp_router_id: ipaddress.IPv4Address | None = None
    groups: dict[str, Neighbor] = field(default_factory=dict)  # peer groups by name
    neighbors: dict[Address, Neighbor] = field(default_factory=dict)

    def remote_as(self, address: Address) -> int | None:
        """A neighbor's AS: its own ``remote-as``, else its peer group's."""
        neighbor = self.neighbors[address]
        if neighbor.remote_as is not None:
            return neighbor.remote_as
        group = self.groups.get(neighbor.peer_group or "")
        return None if group is None else group.remote_as

    def neighbors_in(self, asn: int) -> set[Address]:
        return {a for a in self.neighbors if self.remote_as(a) == asn}


def _neighbor(conf: FrrConf, words: list[str]) -> None:
    """One ``neighbor NAME-OR-ADDRESS …`` line of ``router bgp``."""
    name, rest = words[1], words[2:]
    try:
        key: Address | None = ipaddress.ip_address(name)
    except ValueError:
        key = None
    if key is None:
        neighbor = conf.groups.setdefault(name, Neighbor())
    else:
        neighbor = conf.neighbors.setdefault(key, Neighbor())
    if rest[:1] == ["remote-as"]:
        neighbor.remote_as = int(rest[1])
    elif rest[:1] == ["peer-group"] and len(rest) == 2:
        neighbor.peer_group = rest[1]
    elif rest[:1] == ["update-source"]:
        neighbor.update_source = rest[1]


def parse(text: str) -> FrrConf:
    conf = FrrConf()
    block: list[str] = []
    for raw in text.splitlines():
        line = raw.rstrip()
        if not line or line.lstrip().startswith("!"):
            if line == "!":
                block = []
            continue
        words = line.split()
        if not raw[0].isspace():
            block = words
            if words[0] == "interface":
                conf.interfaces.setdefault(words[1], set())
            elif words[:2] == ["router", "bgp"]:
                conf.bgp_asn = int(words[2])
            continue
        depth = len(raw) - len(raw.lstrip())
        if block[:1] == ["interface"] and words[:2] == ["ipv6", "address"]:
            conf.interfaces[block[1]].add(ipaddress.ip_interface(words[2]))
        elif block == ["router", "ospf6"] and words[:2] == ["ospf6", "router-id"]:
            conf.ospf6_router_id = ipaddress.IPv4Address(words[2])
        elif block[:2] == ["router", "bgp"] and depth == 1:
            if words[:2] == ["bgp", "router-id"]:
                conf.bgp_router_id = ipaddress.IPv4Address(words[2])
            elif words[0] == "neighbor" and len(words) > 2:
                _neighbor(conf, words)
    return conf


def load(path: Path) -> FrrConf:
    return parse(path.read_text(encoding="utf-8"))
