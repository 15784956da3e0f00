"""trafexd's Prometheus metrics (``[metrics] listen``), read from its parts when scraped.

Nothing is counted twice: the collector reads the controller's table (active intents
by kind and origin), the sender's counters (send failures, queued paths), the
sidecar's restarts and health, and gobgpd's peers (asked at scrape time, as
``GetStatus`` does). Three counts have no other home and are kept at the one place
each event passes:

- :class:`CountingClient`, between the controller and GoBGP: the paths GoBGP took,
  announced and withdrawn (a call that fails counts nothing: the reconciler sends
  those again);
- :class:`MeteredController`: the requests a guard refused, by guard (every add,
  whatever its origin, goes through :meth:`Controller.add`), and what the reconciler
  repaired (its :class:`~trafex.control.reconcile.ReconcileResult`).

The decisions (:mod:`trafex.control.changes`) stay pure: neither sees these counts.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Protocol

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from trafex.bgp.client import PeerInfo, SidecarError, Withdrawable
from trafex.control.controller import Controller, IntentOptions
from trafex.control.executor import PathClient
from trafex.control.guardrails import GuardError
from trafex.control.reconcile import Announceable, ReconcileResult, Signature
from trafex.exporter import Exporter, new_registry, serve_metrics
from trafex.model.intent import Intent
from trafex.model.route import UnicastRoute

ANNOUNCE, WITHDRAW = "announce", "withdraw"
FLOW, ROUTE = "flow", "route"


def _kinds(items: Sequence[Withdrawable]) -> Counter[str]:
    routes = sum(1 for item in items if isinstance(item, UnicastRoute))
    return Counter({FLOW: len(items) - routes, ROUTE: routes})


class CountingClient:
    """A :class:`~trafex.control.executor.PathClient` that counts the paths GoBGP took,
    by action and kind; everything else is the wrapped client's."""

    def __init__(self, client: PathClient) -> None:
        self._client = client
        self._lock = threading.Lock()
        self._taken: Counter[tuple[str, str]] = Counter()  # (action, kind) → paths

    @property
    def foreign(self) -> int:
        return self._client.foreign

    def announce(self, items: Iterable[Announceable], *, batch_size: int = 1000) -> None:
        paths = list(items)
        self._client.announce(paths, batch_size=batch_size)
        self._count(ANNOUNCE, paths)

    def withdraw(self, items: Iterable[Withdrawable], *, batch_size: int = 1000) -> None:
        paths = list(items)
        self._client.withdraw(paths, batch_size=batch_size)
        self._count(WITHDRAW, paths)

    def walk_rib(self) -> Iterator[tuple[str, Signature]]:
        return self._client.walk_rib()

    def _count(self, action: str, paths: Sequence[Withdrawable]) -> None:
        kinds = _kinds(paths)
        with self._lock:
            for kind, count in kinds.items():
                self._taken[(action, kind)] += count

    def taken(self) -> dict[tuple[str, str], int]:
        """Paths GoBGP took so far: ``(announce|withdraw, flow|route)`` → count."""
        with self._lock:
            return dict(self._taken)


class MeteredController(Controller):
    """A :class:`Controller` that counts guard refusals and the reconciler's repairs.

    Built with the controller's own arguments; its counts are made on first use (under
    a lock all instances share: it is held only for an increment or a copy)."""

    _counts_lock = threading.Lock()
    _refusals: Counter[str] | None = None  # guard → requests refused
    _repairs: Counter[str] | None = None  # announce|withdraw → paths the reconciler sent

    def add(self, items: Sequence[tuple[Announceable, IntentOptions]]) -> list[tuple[Intent, bool]]:
        try:
            return super().add(items)
        except GuardError as error:
            with self._counts_lock:
                self._refusals = self._refusals or Counter()
                self._refusals[error.guard] += 1
            raise

    def reconcile(self, reason: str) -> ReconcileResult:
        result = super().reconcile(reason)
        with self._counts_lock:
            self._repairs = self._repairs or Counter()
            self._repairs[ANNOUNCE] += result.announced
            self._repairs[WITHDRAW] += result.withdrawn
        return result

    def refusals(self) -> dict[str, int]:
        """Requests refused so far, by the guard that refused them."""
        with self._counts_lock:
            return dict(self._refusals or {})

    def repairs(self) -> dict[str, int]:
        """Paths the reconciler announced and withdrew so far (``announce|withdraw``)."""
        with self._counts_lock:
            repairs = self._repairs or Counter()
            return {ANNOUNCE: repairs[ANNOUNCE], WITHDRAW: repairs[WITHDRAW]}


class SidecarState(Protocol):
    """What the metrics read of the sidecar (:class:`~trafex.bgp.sidecar.Sidecar`)."""

    @property
    def restarts(self) -> int: ...

    @property
    def healthy(self) -> bool: ...


def active_intents(controller: Controller) -> Counter[tuple[str, str]]:
    """The intents in force by ``(flow|route, origin)``, from the counts the table
    keeps (a scrape scans no intents)."""
    labels = {"rule": FLOW, "route": ROUTE}
    return Counter(
        {(labels[kind], origin): count for (kind, origin), count in controller.by_origin().items()}
    )


class TrafexdCollector:
    """trafexd's metrics, read from its parts at each scrape (see the module's doc)."""

    def __init__(
        self,
        controller: MeteredController,
        client: CountingClient,
        sidecar: SidecarState,
        peers: Callable[[], Iterable[PeerInfo]],
    ) -> None:
        self._controller = controller
        self._client = client
        self._sidecar = sidecar
        self._peers = peers

    def collect(self) -> Iterator[Metric]:
        yield from self._intents()
        yield from self._sends()
        yield from self._sidecar_metrics()

    def _intents(self) -> Iterator[Metric]:
        controller = self._controller
        intents = GaugeMetricFamily(
            "trafex_intents", "Intents in force, by kind and origin", labels=["kind", "origin"]
        )
        for (kind, origin), count in sorted(active_intents(controller).items()):
            intents.add_metric([kind, origin], count)
        yield intents
        refused = CounterMetricFamily(
            "trafex_guard_refusals", "Add requests a guard refused, by guard", labels=["guard"]
        )
        for guard, count in sorted(controller.refusals().items()):
            refused.add_metric([guard], count)
        yield refused

    def _sends(self) -> Iterator[Metric]:
        controller = self._controller
        taken = self._client.taken()
        for action, name, what in (
            (ANNOUNCE, "trafex_announcements", "announced"),
            (WITHDRAW, "trafex_withdrawals", "withdrawn"),
        ):
            family = CounterMetricFamily(
                name, f"Paths GoBGP took, {what} (reconciler's included)", labels=["kind"]
            )
            for kind in (FLOW, ROUTE):
                family.add_metric([kind], taken.get((action, kind), 0))
            yield family
        repairs = CounterMetricFamily(
            "trafex_reconcile_repairs",
            "Paths the reconciler sent to make GoBGP's RIB equal the store",
            labels=["action"],
        )
        for action, count in controller.repairs().items():
            repairs.add_metric([action], count)
        yield repairs
        if controller.last_reconcile is not None:
            yield GaugeMetricFamily(
                "trafex_last_reconcile_timestamp_seconds",
                "When the last reconcile finished (Unix time)",
                value=controller.last_reconcile,
            )
        yield CounterMetricFamily(
            "trafex_send_failures",
            "Queued sends to GoBGP that failed after their change was stored",
            value=controller.send_failures,
        )
        yield GaugeMetricFamily(
            "trafex_send_queue_paths",
            "Paths accepted and queued for GoBGP, not yet taken",
            value=controller.queued_paths,
        )

    def _sidecar_metrics(self) -> Iterator[Metric]:
        sidecar = self._sidecar
        yield GaugeMetricFamily(
            "trafex_sidecar_up", "1 while gobgpd answers, else 0", value=int(sidecar.healthy)
        )
        yield CounterMetricFamily(
            "trafex_sidecar_restarts", "Times trafexd restarted gobgpd", value=sidecar.restarts
        )
        established = GaugeMetricFamily(
            "trafex_bgp_peer_established",
            "1 while the BGP session with the peer is established, else 0",
            labels=["peer"],
        )
        advertised = GaugeMetricFamily(
            "trafex_bgp_peer_advertised_paths",
            "Paths gobgpd advertises to the peer",
            labels=["peer"],
        )
        try:
            peers = sorted(self._peers(), key=lambda peer: peer.address)
        except SidecarError:
            peers = []  # gobgpd down: trafex_sidecar_up says so
        for peer in peers:
            established.add_metric([peer.address], int(peer.state == "established"))
            advertised.add_metric([peer.address], peer.advertised)
        yield established
        yield advertised


def trafexd_registry(collector: TrafexdCollector) -> CollectorRegistry:
    """trafexd's own registry: its collector and the ``process_*`` metrics."""
    registry = new_registry()
    registry.register(collector)
    return registry


def serve_trafexd_metrics(listen: str, collector: TrafexdCollector) -> Exporter:
    """Serve trafexd's metrics on ``listen`` (raises
    :class:`~trafex.exporter.ExporterError`)."""
    return serve_metrics(listen, trafexd_registry(collector))
