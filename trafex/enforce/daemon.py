"""``trafex enforce run``: FlowSpec learned over BGP, kept compiled into nftables.

The enforcer's own gobgpd (managed like trafexd's sidecar, but accepting what its
peers send and announcing nothing) is the only input. Each time GoBGP's best paths
change, and on a timer, the enforcer reads every FlowSpec path it holds, compiles the
whole set (:mod:`trafex.enforce.compile`, RFC 8955 §5.1 order) and replaces its
nftables table in one transaction. BGP is the truth: a withdraw removes exactly its
rule, a restart starts from an empty table and rebuilds from what the peers send, and
stopping removes the table and the policy routing, as a router that loses its FlowSpec
session drops the rules.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import structlog

from trafex.bgp.client import GobgpClient, LearnedFlow, SidecarError
from trafex.bgp.sidecar import Sidecar
from trafex.enforce import nftables, routing
from trafex.enforce.compile import Compiled, CompileOptions, compile_rules
from trafex.enforce.config import EnforceConfig
from trafex.model.errors import TrafexError

log = structlog.get_logger("trafex.enforce")

RESYNC_INTERVAL = 30.0  # s: a full read and rebuild even without events
SETTLE = 0.02  # s: events that arrive together are applied together
STATE_FILE = "enforce-state.json"


def options_of(config: EnforceConfig) -> CompileOptions:
    settings = config.enforce
    return CompileOptions(
        table=settings.table,
        interfaces=settings.interfaces,
        priority=settings.priority,
        marks={r.target: r.mark for r in settings.redirects},
        max_branches=settings.max_branches,
    )


def state_path(config: EnforceConfig) -> Path:
    return config.state.dir / STATE_FILE


class Enforcer:
    def __init__(self, config: EnforceConfig) -> None:
        self.config = config
        self.options = options_of(config)
        self.client = GobgpClient(config.gobgp.api)
        self.sidecar = Sidecar(
            config.gobgp,
            config.bgp,
            config.state.dir,
            self.client,
            on_up=self.wake,
            on_down=lambda why: self.wake(),
            learn=True,
        )
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._refused: dict[str, str] = {}  # logged once per rule and reason
        self.applied = 0

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        """Empty table and policy routing first (no stale rule survives a restart), then
        the sidecar and the event watcher."""
        self.config.state.dir.mkdir(parents=True, exist_ok=True)
        routing.sync(self.config.enforce.redirects, self.config.enforce.rule_priority)
        self._apply([])
        self.sidecar.start()
        threading.Thread(target=self._watch, name="watch", daemon=True).start()
        log.info(
            "enforce.started",
            table=self.options.table,
            interfaces=list(self.options.interfaces) or "all",
            peers=[str(n.address) for n in self.config.bgp.neighbors],
        )

    def _watch(self) -> None:
        while not self._stop.is_set():
            try:
                for _ in self.client.watch_best():
                    self._wake.set()
                    if self._stop.is_set():
                        return
            except SidecarError as error:
                log.debug("enforce.watch_broken", error=str(error))
            self._stop.wait(0.5)

    def run(self) -> None:
        """Apply what BGP holds on every change, until :meth:`stop`."""
        next_resync = time.monotonic()
        while not self._stop.is_set():
            woken = self._wake.wait(max(0.0, next_resync - time.monotonic()))
            if self._stop.is_set():
                return
            if woken:
                self._stop.wait(SETTLE)
            self._wake.clear()
            try:
                self.sync()
            except TrafexError as error:
                log.error("enforce.apply_failed", error=str(error))
            next_resync = time.monotonic() + RESYNC_INTERVAL

    def sync(self) -> Compiled:
        """Read every learned FlowSpec path and rebuild the table from them."""
        learned = self.client.learned_flows() if self.sidecar.healthy else []
        return self._apply(learned)

    def _apply(self, learned: list[LearnedFlow]) -> Compiled:
        rules = [flow.rule for flow in learned if flow.rule is not None]
        existing = nftables.read_existing(self.options.table)
        compiled = compile_rules(rules, self.options, existing)
        nftables.apply(compiled.document)
        self.applied += 1
        self._report(learned, compiled)
        return compiled

    def _report(self, learned: list[LearnedFlow], compiled: Compiled) -> None:
        refused = {r.key: f"{r.text}: {r.refused}" for r in compiled.results if r.refused}
        refused |= {f.key: f"undecodable from {f.peer}: {f.error}" for f in learned if not f.rule}
        for key, why in refused.items():
            if self._refused.get(key) != why:
                log.warning("enforce.rule_refused", key=key, reason=why)
        self._refused = refused
        installed = [r for r in compiled.results if not r.refused]
        log.info("enforce.applied", installed=len(installed), refused=len(refused))
        state = {
            "pid": os.getpid(),
            "table": self.options.table,
            "updated": time.time(),
            "rules": [asdict(r) for r in compiled.results],
            "undecodable": [
                {"key": f.key, "peer": f.peer, "error": f.error} for f in learned if not f.rule
            ],
        }
        path = state_path(self.config)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=1))
        tmp.replace(path)

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self.sidecar.stop()
        problems: list[str] = []
        try:
            nftables.delete_table(self.options.table)
        except TrafexError as error:
            problems.append(str(error))
        try:
            routing.clear()
        except TrafexError as error:
            problems.append(str(error))
        state_path(self.config).unlink(missing_ok=True)
        log.info("enforce.stopped", problems=problems or None)


def read_state(config: EnforceConfig) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads(state_path(config).read_text())
    except (OSError, ValueError):
        return None
    return data
