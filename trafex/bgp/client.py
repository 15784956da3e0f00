"""The GoBGP API client: the only module that sends paths to gobgpd.

It takes and returns model types (rules, routes, peer snapshots); GoBGP's protobuf
messages stay inside ``trafex.bgp``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
import grpc.experimental

from trafex.bgp import prefix_form
from trafex.bgp.attributes import actions_from_attributes
from trafex.bgp.encode import FAMILIES, DecodeError, decode_path, flow_path, route_path
from trafex.bgp.stubs import gobgp_pb2, gobgp_pb2_grpc
from trafex.model.errors import TrafexError, ValidationError
from trafex.model.flowspec import Family, FlowActions, FlowMatch, FlowRule, unframe_nlri
from trafex.model.nlri import decode_nlri
from trafex.model.route import UnicastRoute

Announceable = FlowRule | UnicastRoute
Withdrawable = FlowRule | FlowMatch | UnicastRoute
# What GoBGP holds for a key: the actions of a FlowSpec rule (None: actions trafex
# would refuse), or the whole route.
Signature = FlowActions | UnicastRoute | None
RibEntry = tuple[str, Signature]  # a path of the RIB: its key, what it carries


class SidecarError(TrafexError):
    """gobgpd answered with an error, or could not be reached."""

    def __init__(self, message: str, *, unavailable: bool = False) -> None:
        super().__init__(message)
        self.unavailable = unavailable


def _error(action: str, error: grpc.RpcError) -> SidecarError:
    code = error.code() if hasattr(error, "code") else None
    details = error.details() if hasattr(error, "details") else str(error)
    unavailable = code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
    what = "gobgpd is unreachable" if unavailable else "gobgpd refused"
    return SidecarError(f"{what} ({action}): {details}", unavailable=unavailable)


@dataclass(frozen=True, slots=True)
class PeerInfo:
    address: str
    peer_as: int
    state: str
    families: tuple[str, ...]
    received: int
    advertised: int
    uptime_since: float | None


@dataclass(frozen=True, slots=True)
class SidecarInfo:
    asn: int
    router_id: str
    listen_port: int


_STATES = {
    0: "unknown",
    1: "idle",
    2: "connect",
    3: "active",
    4: "opensent",
    5: "openconfirm",
    6: "established",
}
_FAMILY_NAMES = {(f.afi, f.safi): name for name, f in FAMILIES.items()}


@dataclass(frozen=True, slots=True)
class LearnedFlow:
    """A FlowSpec path a peer sent (trafex enforce's input): the rule, or why trafex
    cannot model it (then ``rule`` is None and ``error`` says which part)."""

    key: str
    rule: FlowRule | None
    error: str
    peer: str


def nlri_key(family: str, nlri_binary: bytes) -> str:
    """Our key for a FlowSpec NLRI as GoBGP returns it (with its length prefix)."""
    body = prefix_form.from_gobgp(Family(family), unframe_nlri(nlri_binary))
    return f"{family}:{body.hex()}"


def _actions_or_none(attributes: Iterable[bytes]) -> FlowActions | None:
    """A FlowSpec path's actions, or None for actions trafex would refuse."""
    try:
        return actions_from_attributes(attributes)
    except ValidationError:
        return None


def _peer(peer: Any) -> PeerInfo:
    state = peer.state
    received = advertised = 0
    families = []
    for afi_safi in peer.afi_safis:
        family = afi_safi.config.family
        name = _FAMILY_NAMES.get((family.afi, family.safi))
        if name:
            families.append(name)
        received += afi_safi.state.received
        advertised += afi_safi.state.advertised
    uptime = peer.timers.state.uptime
    established = _STATES.get(state.session_state, "unknown") == "established"
    return PeerInfo(
        address=peer.conf.neighbor_address or state.neighbor_address,
        peer_as=peer.conf.peer_asn or state.peer_asn,
        state=_STATES.get(state.session_state, "unknown"),
        families=tuple(families),
        received=received,
        advertised=advertised,
        uptime_since=float(uptime.seconds) if established and uptime.seconds else None,
    )


class GobgpClient:
    """A synchronous client of one gobgpd's API (``host:port``)."""

    def __init__(self, target: str, *, timeout: float = 5.0) -> None:
        self.target = target
        self.timeout = timeout
        self._channel = grpc.insecure_channel(
            target,
            options=[
                ("grpc.max_receive_message_length", 64 * 1024 * 1024),
                # ListPath streams one message per prefix: read on the calling thread,
                # without a hand-off per message, it reads a large RIB about twice as
                # fast. Every stream here is consumed by the thread that opened it.
                (grpc.experimental.ChannelOptions.SingleThreadedUnaryStream, 1),
            ],
        )
        self._stub = gobgp_pb2_grpc.GobgpApiStub(self._channel)
        self.foreign = 0  # paths seen by the last rib() that trafex cannot model

    def close(self) -> None:
        self._channel.close()

    def info(self) -> SidecarInfo:
        """GoBGP's global settings; raises :class:`SidecarError` when unreachable."""
        try:
            response = self._stub.GetBgp(gobgp_pb2.GetBgpRequest(), timeout=self.timeout)
        except grpc.RpcError as error:
            raise _error("GetBgp", error) from None
        glob = getattr(response, "global")
        return SidecarInfo(asn=glob.asn, router_id=glob.router_id, listen_port=glob.listen_port)

    def _stream(self, paths: Iterable[Any], batch_size: int, action: str) -> None:
        def requests() -> Iterator[Any]:
            batch: list[Any] = []
            for path in paths:
                batch.append(path)
                if len(batch) >= batch_size:
                    yield gobgp_pb2.AddPathStreamRequest(paths=batch)
                    batch = []
            if batch:
                yield gobgp_pb2.AddPathStreamRequest(paths=batch)

        try:
            self._stub.AddPathStream(requests(), timeout=max(self.timeout, 120.0))
        except grpc.RpcError as error:
            raise _error(action, error) from None

    @staticmethod
    def _path(item: Withdrawable, withdraw: bool) -> Any:
        if isinstance(item, FlowRule | FlowMatch):
            return flow_path(item, withdraw=withdraw)
        return route_path(item, withdraw=withdraw)

    def announce(self, items: Iterable[Announceable], *, batch_size: int = 1000) -> None:
        """Add (or replace, same NLRI) these paths in GoBGP's global RIB, streamed."""
        self._stream((self._path(i, False) for i in items), batch_size, "announce")

    def withdraw(self, items: Iterable[Withdrawable], *, batch_size: int = 1000) -> None:
        """Withdraw these paths from GoBGP's global RIB, streamed."""
        self._stream((self._path(i, True) for i in items), batch_size, "withdraw")

    def rib(self, families: Sequence[str] = tuple(FAMILIES)) -> dict[str, Signature]:
        """What GoBGP announces on trafex's behalf: locally originated paths by key."""
        return dict(self.walk_rib(families))

    def walk_rib(self, families: Sequence[str] = tuple(FAMILIES)) -> Iterator[RibEntry]:
        """The locally originated paths as they stream in, as (key, signature); sets
        :attr:`foreign` once the walk is done. Nothing is kept: a reconcile compares
        each path as it comes (:class:`~trafex.control.reconcile.PlanBuilder`).

        FlowSpec paths are asked for in binary only and keyed from GoBGP's NLRI bytes,
        which are byte for byte the canonical encoding trafex keys rules by, so only
        their actions are decoded (once per distinct attribute set: 100,000 rules
        share a handful).
        """
        foreign = 0
        for name in families:
            family = FAMILIES[name]
            flowspec = name.endswith("flowspec")
            afi = name.partition("-")[0]
            request = gobgp_pb2.ListPathRequest(
                table_type=gobgp_pb2.GLOBAL, family=family, enable_only_binary=flowspec
            )
            try:
                for response in self._stub.ListPath(request, timeout=max(self.timeout, 120.0)):
                    for path in response.destination.paths:
                        if path.is_from_external or path.neighbor_ip not in ("", "<nil>"):
                            continue
                        try:
                            if flowspec:
                                key = nlri_key(afi, path.nlri_binary)
                                entry: RibEntry = (key, _actions_or_none(path.pattrs_binary))
                            else:
                                route = decode_path(path)
                                assert isinstance(route, UnicastRoute)
                                entry = (route.key, route)
                        except (DecodeError, ValueError):
                            # A path trafex cannot model (added by hand with the gobgp
                            # CLI, say): not trafex's to keep or to withdraw.
                            foreign += 1
                            continue
                        yield entry
            except grpc.RpcError as error:
                raise _error("ListPath", error) from None
        self.foreign = foreign

    def learned_flows(
        self, families: Sequence[str] = ("ipv4-flowspec", "ipv6-flowspec")
    ) -> list[LearnedFlow]:
        """The best FlowSpec path of each NLRI that peers sent (not injected ones)."""
        out: list[LearnedFlow] = []
        for name in families:
            family = Family(name.partition("-")[0])
            request = gobgp_pb2.ListPathRequest(
                table_type=gobgp_pb2.GLOBAL, family=FAMILIES[name], enable_only_binary=True
            )
            try:
                for response in self._stub.ListPath(request, timeout=max(self.timeout, 120.0)):
                    for path in response.destination.paths:
                        if path.best and path.neighbor_ip not in ("", "<nil>"):
                            out.append(_learned(family, path))
            except grpc.RpcError as error:
                raise _error("ListPath", error) from None
        return out

    def watch_best(self) -> Iterator[None]:
        """Yields each time GoBGP's best paths change, until the stream breaks (then
        raises). What changed is read again with :meth:`learned_flows`."""
        table = gobgp_pb2.WatchEventRequest.Table(
            filters=[gobgp_pb2.WatchEventRequest.Table.Filter(type="BEST", init=True)]
        )
        request = gobgp_pb2.WatchEventRequest(table=table)
        try:
            for response in self._stub.WatchEvent(request):
                if response.HasField("table"):
                    yield None
        except grpc.RpcError as error:
            raise _error("WatchEvent", error) from None

    def peers(self) -> list[PeerInfo]:
        try:
            return [
                _peer(r.peer)
                for r in self._stub.ListPeer(
                    gobgp_pb2.ListPeerRequest(enableAdvertised=True), timeout=self.timeout
                )
            ]
        except grpc.RpcError as error:
            raise _error("ListPeer", error) from None

    def enable_peer(self, address: str) -> None:
        """Open a neighbor configured administratively down (gobgpd's EnablePeer)."""
        try:
            self._stub.EnablePeer(
                gobgp_pb2.EnablePeerRequest(address=address), timeout=self.timeout
            )
        except grpc.RpcError as error:
            raise _error("EnablePeer", error) from None

    def watch_peers(self) -> Iterator[PeerInfo]:
        """Peer state changes as they happen, until the stream breaks (then raises)."""
        request = gobgp_pb2.WatchEventRequest(peer=gobgp_pb2.WatchEventRequest.Peer())
        try:
            for response in self._stub.WatchEvent(request):
                if response.HasField("peer") and response.peer.type == 3:  # STATE
                    yield _peer(response.peer.peer)
        except grpc.RpcError as error:
            raise _error("WatchEvent", error) from None


def _learned(family: Family, path: Any) -> LearnedFlow:
    try:
        body = prefix_form.from_gobgp(family, unframe_nlri(path.nlri_binary))
    except (DecodeError, ValueError) as error:
        return LearnedFlow(f"{family.value}:{path.nlri_binary.hex()}", None, str(error), "")
    key = f"{family.value}:{body.hex()}"
    peer = path.neighbor_ip
    try:
        match = decode_nlri(family, body)
        actions = actions_from_attributes(path.pattrs_binary)
    except ValidationError as error:
        return LearnedFlow(key, None, str(error), peer)
    except DecodeError as error:
        return LearnedFlow(key, None, str(error), peer)
    return LearnedFlow(key, FlowRule(match, actions), "", peer)
