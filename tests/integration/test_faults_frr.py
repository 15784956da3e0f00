"""Faults survived, and restarts without flaps: a real trafexd (with its real gobgpd)
and a real FRR bgpd with ``bgp graceful-restart``, read back with ``vtysh ... json``.

During each event a watcher reads FRR's four tables every ~50 ms and records, per rule
and route, how long it was absent; each test prints that and its recovery time (the
numbers are printed, not asserted). What is asserted is behaviour: the unicast routes
are never absent across a gobgpd crash or a planned restart (graceful restart keeps
them as stale until trafex's End-of-RIB), every intent is back exactly once, the due
one is withdrawn, a bad store stops trafexd before it can withdraw anything.

FRR 8.4 does not keep FlowSpec rules under graceful restart (its restarter and helper
support IPv4/IPv6 unicast, EVPN: it drops FlowSpec at the session's end); the tests
show that as an xfail with the measured gap, and as soon as FRR keeps them, they pass.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from frr import FrrCommandError, FrrRouter, decode_json_stream
from peered import peered, skip_unless_possible
from trafexd import Trafexd, wait_for

from trafex.api.stubs import trafex_pb2 as pb

pytestmark = pytest.mark.integration

TABLES = ("ipv4 unicast", "ipv6 unicast", "ipv4 flowspec", "ipv6 flowspec")
FLOWS = [f"destination 10.5.5.{i}/32 protocol =udp discard" for i in range(1, 6)] + [
    f"destination 3001:4:b::{i:x}/128 rate-limit {1000 + i}" for i in range(1, 6)
]
ROUTES = ["192.0.2.66/32", "192.0.2.67/32", "3001:10:66::5/128", "3001:10:66::6/128"]
Sample = dict[str, bool]  # key ("ipv4 unicast 192.0.2.66/32") -> stale


def read_tables(router: FrrRouter) -> tuple[Sample, dict[str, int]]:
    """FRR's four tables in one vtysh call: each valid key with whether it is stale,
    and each key's number of paths."""
    text = router.vtysh(*(f"show bgp {table} json" for table in TABLES))
    present: Sample = {}
    paths: dict[str, int] = {}
    for table, doc in zip(TABLES, decode_json_stream(text), strict=True):
        for key, entries in (doc.get("routes") or {}).items():
            live = [p for p in entries if p.get("valid") and not p.get("removed")]
            paths[f"{table} {key}"] = len(live)
            if live:
                present[f"{table} {key}"] = any(p.get("stale") for p in live)
    return present, paths


@dataclass
class Watch:
    """FRR's tables sampled every ``interval`` on a thread while in a ``with`` block,
    for the keys present when it was entered."""

    router: FrrRouter
    interval: float = 0.05
    keys: frozenset[str] = frozenset()
    samples: list[tuple[float, Sample]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> Watch:
        self.keys = frozenset(read_tables(self.router)[0])
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                sample, _ = read_tables(self.router)
                self.samples.append((time.monotonic(), sample))
            except FrrCommandError:  # FRR is going away with the test: no sample
                pass
            self._stop.wait(self.interval)

    def __exit__(self, *exc: object) -> None:
        """Half a second more of samples (after a success), then stop the thread."""
        if exc[0] is None:
            time.sleep(0.5)
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def longest_absence(self, kind: str) -> float:
        """The longest time a key of this kind ("unicast", "flowspec") was missing."""
        return max((absence(self.samples, k) for k in self.keys if kind in k), default=0.0)

    def recovered_at(self) -> float | None:
        """When every key was first back and fresh (not stale) after being otherwise."""
        disturbed = False
        for when, sample in self.samples:
            whole = all(k in sample and not sample[k] for k in self.keys)
            disturbed = disturbed or not whole
            if disturbed and whole:
                return when
        return None


def absence(samples: list[tuple[float, Sample]], key: str) -> float:
    """The longest run of samples without ``key``: from its first missing sample to
    the next sample that has it (or the last sample)."""
    longest, missing_since = 0.0, None
    for when, sample in samples:
        if key not in sample and missing_since is None:
            missing_since = when
        elif key in sample and missing_since is not None:
            longest, missing_since = max(longest, when - missing_since), None
    if missing_since is not None:
        longest = max(longest, samples[-1][0] - missing_since)
    return longest


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[FrrRouter, Trafexd]]:
    skip_unless_possible()
    with peered(tmp_path, graceful_restart=True) as both:
        yield both


def add_all(router: FrrRouter, trafexd: Trafexd, ttl_flow: str | None = None) -> Any:
    """The flows and routes above (and one flow with a 3 s TTL); wait until FRR has
    them all."""
    for text in FLOWS:
        trafexd.stub.AddFlow(pb.AddFlowRequest(flow=pb.FlowSpec(text=text)), timeout=10)
    for prefix in ROUTES:
        trafexd.stub.AddRoute(pb.AddRouteRequest(route=pb.RouteSpec(prefix=prefix)), timeout=10)
    due = None
    if ttl_flow is not None:
        options = pb.IntentOptions(ttl_seconds=3)
        request = pb.AddFlowRequest(flow=pb.FlowSpec(text=ttl_flow), options=options)
        due = trafexd.stub.AddFlow(request, timeout=10)
    wait_all_once(router, trafexd)
    return due


def stored(trafexd: Trafexd) -> int:
    flows = list(trafexd.stub.ListFlows(pb.ListFlowsRequest(), timeout=10))
    routes = list(trafexd.stub.ListRoutes(pb.ListRoutesRequest(), timeout=10))
    return len(flows) + len(routes)


def wait_all_once(router: FrrRouter, trafexd: Trafexd, timeout: float = 30) -> dict[str, int]:
    """Wait until FRR holds as many keys as trafexd stores, each with one fresh path."""
    count = stored(trafexd)

    def settled() -> dict[str, int] | None:
        present, paths = read_tables(router)
        fresh = not any(present.values())
        return paths if len(present) == count and fresh and set(paths.values()) == {1} else None

    return wait_for(settled, timeout, f"{count} fresh keys on FRR, once each", trafexd.logs)


def wait_stale(router: FrrRouter, trafexd: Trafexd, keys: set[str]) -> None:
    """Wait until FRR holds every one of ``keys`` as stale (its peer went away and
    graceful restart keeps them); a withdrawn key never becomes stale."""

    def stale() -> bool | None:
        present, _ = read_tables(router)
        return all(present.get(k) for k in keys) or None

    wait_for(stale, 10, f"{len(keys)} stale keys on FRR", trafexd.logs)


def report(what: str, watch: Watch, event: float) -> None:
    recovered = watch.recovered_at()
    back = f"{recovered - event:.2f} s" if recovered is not None else "never"
    print(
        f"\n{what}: longest absence on FRR: unicast {watch.longest_absence('unicast'):.2f} s, "
        f"flowspec {watch.longest_absence('flowspec'):.2f} s; all back and fresh after {back} "
        f"({len(watch.samples)} samples)"
    )


def flowspec_kept(watch: Watch) -> None:
    """xfail, with the gap, when FRR dropped FlowSpec rules during the event."""
    gap = watch.longest_absence("flowspec")
    if gap > 0:
        pytest.xfail(f"FRR 8.4 does not keep FlowSpec under graceful restart: absent {gap:.2f} s")


def test_gobgpd_sigkill_keeps_routes_and_brings_every_rule_back_once(
    pair: tuple[FrrRouter, Trafexd],
) -> None:
    """gobgpd killed with SIGKILL: trafexd restarts it and announces the store again;
    FRR keeps the unicast routes (stale) throughout, and ends with every rule and route
    once, as many as are stored."""
    router, trafexd = pair
    add_all(router, trafexd)
    old = trafexd.sidecar_pid()
    with Watch(router) as watch:
        event = time.monotonic()
        os.kill(old, signal.SIGKILL)
        wait_for(lambda: trafexd.sidecar_pid() not in (0, old) or None, 20, "gobgpd", trafexd.logs)
        paths = wait_all_once(router, trafexd)
    report("gobgpd SIGKILL", watch, event)
    assert len(paths) == stored(trafexd) == len(FLOWS) + len(ROUTES)
    assert watch.longest_absence("unicast") == 0.0
    flowspec_kept(watch)


def test_planned_restart_keeps_routes(pair: tuple[FrrRouter, Trafexd]) -> None:
    """on_shutdown "keep" (the default): trafexd stopped with SIGTERM withdraws nothing
    (gobgpd's NOTIFICATION carries RFC 8538's N bit, so graceful restart applies): FRR
    keeps the unicast routes as stale until the new trafexd has announced the store and
    sent End-of-RIB, never absent; then each is there once, fresh."""
    router, trafexd = pair
    add_all(router, trafexd)
    with Watch(router) as watch:
        event = time.monotonic()
        trafexd.stop()
        wait_stale(router, trafexd, {k for k in watch.keys if "unicast" in k})
        trafexd.start()
        router.wait_established(timeout=30)
        wait_all_once(router, trafexd)
    report("planned restart (keep)", watch, event)
    assert watch.longest_absence("unicast") == 0.0
    flowspec_kept(watch)


def test_trafexd_sigkill_restart_expires_the_due_and_sends_each_once(
    pair: tuple[FrrRouter, Trafexd],
) -> None:
    """trafexd killed with SIGKILL (its gobgpd too) and started again: the same intents
    from the store, with the same ids; the one whose TTL passed meanwhile is withdrawn;
    FRR has each remaining rule and route once."""
    router, trafexd = pair
    due = add_all(router, trafexd, ttl_flow="destination 10.5.6.1/32 discard")
    before = {r.rule.meta.id for r in trafexd.stub.ListFlows(pb.ListFlowsRequest())}
    trafexd.stop(signal.SIGKILL)
    time.sleep(3.5)  # the TTL passes while trafexd is down
    event = time.monotonic()
    trafexd.start()
    paths = wait_all_once(router, trafexd)
    print(f"\ntrafexd SIGKILL: all back, once each, {time.monotonic() - event:.2f} s after start")
    after = {r.rule.meta.id for r in trafexd.stub.ListFlows(pb.ListFlowsRequest())}
    assert after == before - {due.rule.meta.id}
    assert len(paths) == len(FLOWS) + len(ROUTES)
    assert not any("10.5.6.1" in key for key in paths)


def test_clear_bgp_readvertises_everything(pair: tuple[FrrRouter, Trafexd]) -> None:
    """``clear bgp *`` on FRR resets the sessions: once they are back, every rule and
    route is on FRR again, once each."""
    router, trafexd = pair
    add_all(router, trafexd)
    with Watch(router) as watch:
        event = time.monotonic()
        router.vtysh("clear bgp *")
        router.wait_established(timeout=30)
        paths = wait_all_once(router, trafexd)
    report("clear bgp *", watch, event)
    assert len(paths) == len(FLOWS) + len(ROUTES)


def _garbage(path: Path) -> None:
    path.write_bytes(b"\x00garbage, not SQLite\xff" * 512)


def _empty(path: Path) -> None:
    path.write_bytes(b"")


def _directory(path: Path) -> None:
    path.unlink()
    path.mkdir()


@pytest.mark.parametrize("damage", [_garbage, _empty, _directory], ids=lambda f: f.__name__[1:])
def test_bad_store_refuses_to_start_and_withdraws_nothing(
    pair: tuple[FrrRouter, Trafexd], damage: Any
) -> None:
    """A store that is garbage, empty or a directory: trafexd exits 2 with one line
    naming the file, before starting gobgpd, so the routes FRR holds (stale, after the
    previous trafexd was killed) stay; with the store back, all is announced again."""
    router, trafexd = pair
    add_all(router, trafexd)
    routes = {k for k in read_tables(router)[0] if "unicast" in k}
    trafexd.stop(signal.SIGKILL)
    wait_stale(router, trafexd, routes)
    db = trafexd.state_dir / "trafex.db"
    backup = trafexd.workdir / "backup"
    backup.mkdir()
    for part in db.parent.glob("trafex.db*"):
        shutil.move(part, backup / part.name)
    shutil.copy(backup / "trafex.db", db)
    damage(db)
    run = subprocess.run(
        [sys.executable, "-m", "trafex.cli.trafexd", "--config", str(trafexd.config_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 2
    assert run.stderr.splitlines() == [run.stderr.strip()]
    assert run.stderr.startswith(f"trafexd: store {db}: not a trafex store (")
    present, _ = read_tables(router)
    assert {k for k in present if "unicast" in k} == routes
    assert all(present[k] for k in routes)  # stale: nobody withdrew them
    assert router.neighbor_state(router.host_v4) != "Established"  # no gobgpd was started
    if db.is_dir():
        db.rmdir()
    else:
        db.unlink()
    for part in backup.iterdir():
        shutil.move(part, db.parent / part.name)
    trafexd.start()
    assert len(wait_all_once(router, trafexd)) == len(FLOWS) + len(ROUTES)


def test_on_shutdown_withdraw_empties_frr_and_keeps_the_store(tmp_path: Path) -> None:
    """on_shutdown = "withdraw": SIGTERM withdraws every rule and route before trafexd
    stops (FRR's tables empty, nothing stale); the intents stay stored and are
    announced again at the next start."""
    skip_unless_possible()
    with peered(tmp_path, graceful_restart=True, extra='on_shutdown = "withdraw"') as both:
        router, trafexd = both
        add_all(router, trafexd)
        event = time.monotonic()
        trafexd.stop()
        stopped = time.monotonic() - event
        empty = wait_for(
            lambda: read_tables(router)[0] == {} or None, 10, "FRR's tables empty", trafexd.logs
        )
        print(f"\non_shutdown withdraw: trafexd stopped in {stopped:.2f} s, FRR empty after")
        assert empty
        trafexd.start()
        assert len(wait_all_once(router, trafexd)) == len(FLOWS) + len(ROUTES)
