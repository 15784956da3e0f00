"""BGP path attributes of a FlowSpec path, as bytes (RFC 4271 §4.3, RFC 4760, RFC 8955 §7).

trafex hands GoBGP its FlowSpec paths in binary (``Path.nlri_binary`` and
``Path.pattrs_binary``): GoBGP decodes them with the same code it uses for UPDATE
messages, and building a handful of bytes costs a fraction of packing a dozen
protobuf ``Any`` messages per rule. Pure functions: no I/O.
"""

from __future__ import annotations

import functools
import ipaddress
import struct
from collections.abc import Iterable, Iterator

from trafex.bgp.stubs import gobgp_pb2
from trafex.model.errors import TrafexError
from trafex.model.flowspec import Family, FlowActions, RouteTarget, RouteTargetKind

# Attribute flags and type codes (RFC 4271 §4.3, RFC 4760, RFC 4360).
FLAG_OPTIONAL = 0x80
FLAG_TRANSITIVE = 0x40
FLAG_EXTENDED_LENGTH = 0x10
TYPE_ORIGIN = 1
TYPE_MP_REACH_NLRI = 14
TYPE_EXTENDED_COMMUNITIES = 16

# FlowSpec extended communities (RFC 8955 §7, RFC 7674): (type, sub-type).
TRAFFIC_RATE = (0x80, 0x06)
TRAFFIC_ACTION = (0x80, 0x07)
REDIRECT_AS2 = (0x80, 0x08)
REDIRECT_IPV4 = (0x81, 0x08)
REDIRECT_AS4 = (0x82, 0x08)
TRAFFIC_MARKING = (0x80, 0x09)
ACTION_SAMPLE = 0x02  # traffic-action: bit 46 of the community, S
ACTION_TERMINAL = 0x01  # bit 47, T

_AFI = {Family.IPV4: gobgp_pb2.Family.AFI_IP, Family.IPV6: gobgp_pb2.Family.AFI_IP6}
_SAFI_FLOWSPEC = gobgp_pb2.Family.SAFI_FLOW_SPEC_UNICAST
# RFC 8955 §4 says a FlowSpec MP_REACH carries no next-hop; GoBGP's API wants one
# and drops it again when it builds the UPDATE, so the unspecified address is sent.
_NEXT_HOP = {Family.IPV4: bytes(4), Family.IPV6: bytes(16)}


class DecodeError(TrafexError):
    """A GoBGP path that trafex does not model: bad attribute bytes, another family."""


def attribute(flags: int, code: int, value: bytes) -> bytes:
    """One path attribute: flags, type, length (1 or 2 bytes), value."""
    if len(value) > 255:
        return struct.pack("!BBH", flags | FLAG_EXTENDED_LENGTH, code, len(value)) + value
    return struct.pack("!BBB", flags & ~FLAG_EXTENDED_LENGTH, code, len(value)) + value


ORIGIN_IGP = attribute(FLAG_TRANSITIVE, TYPE_ORIGIN, b"\x00")


def mp_reach_flowspec(family: Family, nlri: bytes) -> bytes:
    """MP_REACH_NLRI for one FlowSpec NLRI (``nlri`` with its length prefix)."""
    next_hop = _NEXT_HOP[family]
    value = (
        struct.pack("!HBB", _AFI[family], _SAFI_FLOWSPEC, len(next_hop)) + next_hop + b"\x00" + nlri
    )
    return attribute(FLAG_OPTIONAL, TYPE_MP_REACH_NLRI, value)


def _route_target(target: RouteTarget) -> bytes:
    if target.kind is RouteTargetKind.AS2:
        return bytes(REDIRECT_AS2) + struct.pack(
            "!HI", int(target.global_admin), target.local_admin
        )
    if target.kind is RouteTargetKind.AS4:
        return bytes(REDIRECT_AS4) + struct.pack(
            "!IH", int(target.global_admin), target.local_admin
        )
    assert isinstance(target.global_admin, ipaddress.IPv4Address)
    return bytes(REDIRECT_IPV4) + target.global_admin.packed + struct.pack("!H", target.local_admin)


def action_communities(actions: FlowActions) -> list[bytes]:
    """The 8-byte extended communities that carry ``actions``, in RFC 8955 §7 order."""
    out: list[bytes] = []
    if actions.rate is not None:
        out.append(bytes(TRAFFIC_RATE) + struct.pack("!Hf", 0, actions.rate))
    if actions.sample or actions.terminal:
        bits = (ACTION_SAMPLE if actions.sample else 0) | (
            ACTION_TERMINAL if actions.terminal else 0
        )
        out.append(bytes(TRAFFIC_ACTION) + bytes(5) + bytes([bits]))
    if actions.redirect is not None:
        out.append(_route_target(actions.redirect))
    if actions.mark is not None:
        out.append(bytes(TRAFFIC_MARKING) + bytes(5) + bytes([actions.mark]))
    return out


def extended_communities(actions: FlowActions) -> bytes:
    """The EXTENDED_COMMUNITIES attribute that carries ``actions``."""
    value = b"".join(action_communities(actions))
    return attribute(FLAG_OPTIONAL | FLAG_TRANSITIVE, TYPE_EXTENDED_COMMUNITIES, value)


def split(data: bytes) -> tuple[int, int, bytes]:
    """One attribute's (flags, type code, value); raises on a short or long buffer."""
    if len(data) < 3:
        raise DecodeError(f"path attribute of {len(data)} bytes is too short")
    flags, code = data[0], data[1]
    if flags & FLAG_EXTENDED_LENGTH:
        if len(data) < 4:
            raise DecodeError("path attribute with extended length is too short")
        (length,), start = struct.unpack_from("!H", data, 2), 4
    else:
        length, start = data[2], 3
    if len(data) != start + length:
        raise DecodeError(
            f"path attribute type {code} says {length} bytes, has {len(data) - start}"
        )
    return flags, code, data[start:]


def _communities(value: bytes) -> Iterator[bytes]:
    if len(value) % 8:
        raise DecodeError(f"extended communities of {len(value)} bytes (not 8 each)")
    for i in range(0, len(value), 8):
        yield value[i : i + 8]


def actions_from_attributes(attributes: Iterable[bytes]) -> FlowActions:
    """The FlowSpec actions in a path's attributes (other communities are ignored).

    Raises :class:`~trafex.model.errors.ValidationError` when the communities make no
    valid set of actions (none at all, say), :class:`DecodeError` on bad bytes.
    """
    found = []
    for data in attributes:
        _flags, code, value = split(data)
        if code == TYPE_EXTENDED_COMMUNITIES:
            if len(value) % 8:
                raise DecodeError(f"extended communities of {len(value)} bytes (not 8 each)")
            found.append(value)
    return _actions_of(b"".join(found))


@functools.lru_cache(maxsize=256)
def _actions_of(communities: bytes) -> FlowActions:
    """The actions these extended communities make. Cached: the paths of a large RIB
    share a handful of action sets, and a reconcile reads every path (the result is
    immutable; a refusal is raised each time, not cached)."""
    rate: float | None = None
    redirect: RouteTarget | None = None
    mark: int | None = None
    sample = terminal = False
    for community in _communities(communities):
        kind = (community[0], community[1])
        if kind == TRAFFIC_RATE:
            rate = struct.unpack_from("!f", community, 4)[0]
        elif kind == TRAFFIC_ACTION:
            sample = bool(community[7] & ACTION_SAMPLE)
            terminal = bool(community[7] & ACTION_TERMINAL)
        elif kind == REDIRECT_AS2:
            asn, local = struct.unpack_from("!HI", community, 2)
            redirect = RouteTarget(RouteTargetKind.AS2, asn, local)
        elif kind == REDIRECT_AS4:
            asn, local = struct.unpack_from("!IH", community, 2)
            redirect = RouteTarget(RouteTargetKind.AS4, asn, local)
        elif kind == REDIRECT_IPV4:
            address = ipaddress.IPv4Address(community[2:6])
            (local,) = struct.unpack_from("!H", community, 6)
            redirect = RouteTarget(RouteTargetKind.IPV4, address, local)
        elif kind == TRAFFIC_MARKING:
            mark = community[7] & 0x3F
    return FlowActions(rate=rate, redirect=redirect, mark=mark, sample=sample, terminal=terminal)
