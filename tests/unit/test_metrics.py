"""Unit tests for trafex.control.metrics: trafexd's /metrics, scraped as Prometheus would.

A metered controller on a real store and a fake RIB (tests/unit/fakerib.py), a fake
sidecar and a list of peers; each test scrapes the registry's exposition text
(``generate_latest``), parses it back, and checks the values follow what was done.
"""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from tests.unit.fakerib import Clock, FakeRib
from trafex.bgp.client import PeerInfo, SidecarError
from trafex.control.controller import IntentOptions
from trafex.control.events import EventBus
from trafex.control.guardrails import GuardError, Guards
from trafex.control.metrics import (
    CountingClient,
    MeteredController,
    TrafexdCollector,
    trafexd_registry,
)
from trafex.control.store import Store
from trafex.model.flowspec import FlowRule
from trafex.model.grammar import parse_rule
from trafex.model.route import UnicastRoute

PROTECTED = ipaddress.ip_network("198.51.100.0/24")


@dataclass
class FakeSidecar:
    restarts: int = 0
    healthy: bool = True


@dataclass
class Trafexd:
    """The parts the collector reads, and its registry."""

    controller: MeteredController
    rib: FakeRib
    sidecar: FakeSidecar
    registry: CollectorRegistry
    peers: list[PeerInfo] = field(default_factory=list)
    peers_down: bool = False

    def list_peers(self) -> list[PeerInfo]:
        if self.peers_down:
            raise SidecarError("gobgpd is unreachable (ListPeer): fake", unavailable=True)
        return self.peers


@pytest.fixture
def trafexd(tmp_path: Path) -> Iterator[Trafexd]:
    with _trafexd(tmp_path) as made:
        yield made


@contextmanager
def _trafexd(directory: Path) -> Iterator[Trafexd]:
    """A metered controller and its registry; closed (sends finished) on the way out."""
    rib, store = FakeRib(), Store(directory / "state")
    paths = CountingClient(rib)
    guards = Guards(protected=(PROTECTED,))
    controller = MeteredController(store, paths, EventBus(), clock=Clock(), guards=guards)
    made = Trafexd(controller, rib, FakeSidecar(), CollectorRegistry())
    made.registry = trafexd_registry(
        TrafexdCollector(controller, paths, made.sidecar, made.list_peers)
    )
    try:
        yield made
    finally:
        controller.close()
        store.close()


def scrape(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape: (name, sorted labels) → value."""
    text = generate_latest(registry).decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    """One sample's value in a fresh scrape, None when there is no such sample."""
    return scrape(registry).get((name, tuple(sorted(labels.items()))))


def rule(n: int, action: str = "discard") -> FlowRule:
    return parse_rule(f"destination 10.0.0.{n}/32 {action}")


ROUTE = UnicastRoute(ipaddress.ip_network("192.0.2.1/32"))


def test_active_intents_by_kind_and_origin(trafexd: Trafexd) -> None:
    """trafex_intents counts the intents in force by kind and origin; a removal lowers
    it and an origin that holds nothing has no series."""
    ctl, reg = trafexd.controller, trafexd.registry
    ctl.add([(rule(1), IntentOptions()), (rule(2), IntentOptions())])
    ctl.add([(rule(3), IntentOptions(origin="dns")), (ROUTE, IntentOptions(origin="dns"))])
    assert value(reg, "trafex_intents", kind="flow", origin="api") == 2
    assert value(reg, "trafex_intents", kind="flow", origin="dns") == 1
    assert value(reg, "trafex_intents", kind="route", origin="dns") == 1
    ctl.remove([ctl.by_key(rule(3).key), ctl.by_key(ROUTE.key)])
    assert value(reg, "trafex_intents", kind="flow", origin="api") == 2
    assert None is value(reg, "trafex_intents", kind="flow", origin="dns")
    assert None is value(reg, "trafex_intents", kind="route", origin="dns")


def test_announcements_and_withdrawals_count_paths_gobgp_took(trafexd: Trafexd) -> None:
    """trafex_announcements_total and trafex_withdrawals_total count the paths GoBGP
    took, by kind; an update that changes nothing on the wire sends nothing."""
    ctl, reg = trafexd.controller, trafexd.registry
    assert value(reg, "trafex_announcements_total", kind="flow") == 0
    ctl.add([(rule(1), IntentOptions()), (rule(2), IntentOptions()), (ROUTE, IntentOptions())])
    ctl.add([(rule(1), IntentOptions(reason="again"))])  # same rule: nothing sent
    ctl.flush()
    assert value(reg, "trafex_announcements_total", kind="flow") == 2
    assert value(reg, "trafex_announcements_total", kind="route") == 1
    ctl.remove([ctl.by_key(rule(2).key)])
    ctl.flush()
    assert value(reg, "trafex_withdrawals_total", kind="flow") == 1
    assert value(reg, "trafex_withdrawals_total", kind="route") == 0


def test_guard_refusals_are_counted_by_guard(trafexd: Trafexd) -> None:
    """Each add a guard refuses counts once under that guard's name, and changes
    nothing in force."""
    ctl, reg = trafexd.controller, trafexd.registry
    ctl.add([(rule(1), IntentOptions())])
    with pytest.raises(GuardError):
        ctl.add([(parse_rule("destination 10.0.0.0/8 discard"), IntentOptions())])
    with pytest.raises(GuardError):
        ctl.add([(parse_rule("destination 10.1.0.0/16 rate-limit 0"), IntentOptions())])
    with pytest.raises(GuardError):
        ctl.add([(parse_rule("destination 198.51.100.7/32 discard"), IntentOptions())])
    assert value(reg, "trafex_guard_refusals_total", guard="breadth") == 2
    assert value(reg, "trafex_guard_refusals_total", guard="protected") == 1
    assert value(reg, "trafex_intents", kind="flow", origin="api") == 1


def test_reconcile_repairs_are_counted(trafexd: Trafexd) -> None:
    """What the reconciler announces (gobgpd forgot it) and withdraws (nobody asked
    for it) counts in trafex_reconcile_repairs_total, and in the paths GoBGP took."""
    ctl, rib, reg = trafexd.controller, trafexd.rib, trafexd.registry
    ctl.add([(rule(1), IntentOptions()), (rule(2), IntentOptions())])
    ctl.flush()
    rib.restart()
    rib.announce([rule(9)])  # somebody else's path, in trafex's table
    ctl.reconcile("test")
    assert value(reg, "trafex_reconcile_repairs_total", action="announce") == 2
    assert value(reg, "trafex_reconcile_repairs_total", action="withdraw") == 1
    assert value(reg, "trafex_announcements_total", kind="flow") == 4
    assert value(reg, "trafex_withdrawals_total", kind="flow") == 1
    assert ctl.last_reconcile == value(reg, "trafex_last_reconcile_timestamp_seconds")


def test_send_failures_and_queue_depth(trafexd: Trafexd) -> None:
    """A send GoBGP refused counts in trafex_send_failures_total (and not as taken);
    paths waiting for GoBGP show in trafex_send_queue_paths until it takes them."""
    ctl, rib, reg = trafexd.controller, trafexd.rib, trafexd.registry
    rib.fail = SidecarError("gobgpd said no")
    ctl.add([(rule(1), IntentOptions())])
    ctl.flush()
    assert value(reg, "trafex_send_failures_total") == 1
    assert value(reg, "trafex_announcements_total", kind="flow") == 0
    rib.fail = None
    rib.gate = threading.Event()
    ctl.add([(rule(2), IntentOptions()), (rule(3), IntentOptions())])
    assert rib.sending.wait(5)
    assert value(reg, "trafex_send_queue_paths") == 2
    rib.gate.set()
    ctl.flush()
    assert value(reg, "trafex_send_queue_paths") == 0


def test_sidecar_and_peers(trafexd: Trafexd) -> None:
    """The sidecar's health and restarts, and each peer's session (1 established, else
    0) with the paths advertised to it; with gobgpd down, no peer series and the
    scrape still answers."""
    reg, sidecar = trafexd.registry, trafexd.sidecar
    sidecar.restarts, sidecar.healthy = 2, True
    trafexd.peers = [
        PeerInfo("10.0.0.1", 65001, "established", ("ipv4-flowspec",), 0, 7, 1.0),
        PeerInfo("10.0.0.2", 65002, "active", ("ipv4-flowspec",), 0, 0, None),
    ]
    assert (value(reg, "trafex_sidecar_up"), value(reg, "trafex_sidecar_restarts_total")) == (1, 2)
    assert value(reg, "trafex_bgp_peer_established", peer="10.0.0.1") == 1
    assert value(reg, "trafex_bgp_peer_established", peer="10.0.0.2") == 0
    assert value(reg, "trafex_bgp_peer_advertised_paths", peer="10.0.0.1") == 7
    sidecar.healthy, trafexd.peers_down = False, True
    samples = scrape(reg)
    assert samples[("trafex_sidecar_up", ())] == 0
    assert [name for name, _ in samples if name.startswith("trafex_bgp_peer")] == []


def test_two_daemons_in_one_process_keep_their_own_metrics(tmp_path: Path) -> None:
    """Each trafexd has its own registry: two in one process neither collide nor mix."""
    with _trafexd(tmp_path / "a") as one, _trafexd(tmp_path / "b") as two:
        one.controller.add([(rule(1), IntentOptions())])
        assert value(one.registry, "trafex_intents", kind="flow", origin="api") == 1
        assert None is value(two.registry, "trafex_intents", kind="flow", origin="api")
        assert value(one.registry, "process_resident_memory_bytes")
