"""Unit tests for trafexd's start order: the store goes into a fresh gobgpd before its
sessions open (a reconcile, retried), so a router's first UPDATEs hold every path."""

from __future__ import annotations

from pathlib import Path

import pytest
from structlog.testing import capture_logs

from trafex.bgp.client import SidecarError
from trafex.cli import trafexd
from trafex.control.config import parse_config
from trafex.control.reconcile import ReconcileResult


class Reconciler:
    """Stands for the controller's reconcile: fails ``failures`` times, then works."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls: list[str] = []

    def reconcile(self, reason: str) -> ReconcileResult:
        self.calls.append(reason)
        if len(self.calls) <= self.failures:
            raise SidecarError("gobgpd is unreachable (ListPath): connection refused")
        return ReconcileResult(0, 0, 0)


@pytest.fixture
def daemon(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> trafexd.Daemon:
    monkeypatch.setattr(trafexd, "OPEN_RETRY_WAIT", 0.0)
    config = parse_config({"state": {"dir": str(tmp_path)}})
    return trafexd.Daemon(config)


@pytest.mark.parametrize("failures", [0, 1, trafexd.OPEN_ATTEMPTS - 1])
def test_the_store_is_in_before_the_sessions_open(daemon: trafexd.Daemon, failures: int) -> None:
    """A reconcile that fails is tried again until it works (within OPEN_ATTEMPTS)."""
    reconciler = Reconciler(failures)
    daemon.controller = reconciler  # type: ignore[assignment]
    assert daemon._announce_store("start")
    assert ["start"] * (failures + 1) == reconciler.calls


def test_the_sessions_open_anyway_after_the_last_attempt(daemon: trafexd.Daemon) -> None:
    """Still failing after OPEN_ATTEMPTS: said as an error, and the caller opens the
    sessions (the routers' restart timers would drop the stale paths anyway)."""
    reconciler = Reconciler(failures=99)
    daemon.controller = reconciler  # type: ignore[assignment]
    with capture_logs() as logs:
        assert not daemon._announce_store("sidecar-up")
    assert len(reconciler.calls) == trafexd.OPEN_ATTEMPTS
    events = [(entry["event"], entry["log_level"]) for entry in logs]
    failed = [("reconcile.failed", "warning")] * trafexd.OPEN_ATTEMPTS
    assert [*failed, ("sessions.open_unreconciled", "error")] == events


def test_a_stop_ends_the_retries(daemon: trafexd.Daemon, monkeypatch: pytest.MonkeyPatch) -> None:
    """trafexd stopping while it waits to retry: no more attempts."""
    monkeypatch.setattr(trafexd, "OPEN_RETRY_WAIT", 60.0)
    reconciler = Reconciler(failures=99)
    daemon.controller = reconciler  # type: ignore[assignment]
    daemon.stop_event.set()
    assert not daemon._announce_store("start")
    assert reconciler.calls == ["start"]
