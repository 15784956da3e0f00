"""A snapshot of trafexd's state, as ``trafex-ctl status`` shows it.

The daemon builds it (:meth:`trafex.cli.trafexd.Daemon.status`) from the sidecar, the
controller and gobgpd's peers; the API's servicer only translates it, and the typed
client hands the same dataclasses back to its caller.
"""

from __future__ import annotations

from dataclasses import dataclass

from trafex.bgp.client import PeerInfo

__all__ = ["PeerInfo", "SidecarStatus", "Status"]


@dataclass(frozen=True, slots=True)
class SidecarStatus:
    healthy: bool
    api: str  # gobgpd's API, HOST:PORT
    version: str
    managed: bool  # started and restarted by trafexd (else only watched)
    pid: int | None
    restarts: int
    error: str  # why it is not healthy ("" when it is)
    send_failures: int  # sends that failed after their change was stored
    last_send_error: str
    queued_paths: int  # accepted and queued for gobgpd, not yet taken


@dataclass(frozen=True, slots=True)
class Status:
    version: str  # trafexd's
    asn: int
    router_id: str
    flows: int
    routes: int
    last_reconcile: float | None  # UNIX seconds; None: never
    sidecar: SidecarStatus
    peers: tuple[PeerInfo, ...]
