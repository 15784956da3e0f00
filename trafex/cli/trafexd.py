"""trafexd: the controller. Keeps the stored intents announced through the GoBGP sidecar.

trafexd                          embedded default: sidecar on loopback, no neighbors
trafexd --config trafex.toml     with routers to peer with
trafexd --check-config FILE      check a config file and exit (non-zero on error)
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

import structlog

from trafex import __version__, allocator, logs
from trafex.api.http import HttpSecurity, HttpServer
from trafex.api.security import ApiSecurity, SecurityError
from trafex.api.server import ApiServer, ListenError
from trafex.api.servicer import TrafexServicer
from trafex.bgp.client import GobgpClient, SidecarError
from trafex.bgp.sidecar import Sidecar
from trafex.control.config import Config, ConfigError, guards_of, load_config
from trafex.control.events import Event, EventBus, EventKind
from trafex.control.metrics import (
    CountingClient,
    MeteredController,
    TrafexdCollector,
    serve_trafexd_metrics,
)
from trafex.control.status import SidecarStatus, Status
from trafex.control.store import Store, StoreError
from trafex.exporter import Exporter, ExporterError
from trafex.stopping import stop_event

log = structlog.get_logger("trafexd")

# A fresh gobgpd's sessions open once the store is in it: the reconcile before that is
# tried this often, waiting OPEN_RETRY_WAIT s (then twice that, ...) in between.
OPEN_ATTEMPTS = 3
OPEN_RETRY_WAIT = 1.0

EXAMPLE = """example:
  trafexd                            # sidecar on loopback, AS 65010, API on 127.0.0.1:50061
  trafexd --config /etc/trafex/trafex.toml
  trafexd --check-config trafex.toml
"""


class Daemon:
    """Wires the parts together and runs the background loops."""

    def __init__(self, config: Config) -> None:
        self.config = config
        # The API's certificates and token, read first: a bad file stops trafexd at once.
        self.api_security = ApiSecurity.from_config(config.api)
        self.http_security = (
            HttpSecurity.from_config(config.http) if config.http.listen is not None else None
        )
        self.stop_event = threading.Event()
        self.events = EventBus()
        self.store = Store(config.state.dir)
        self.client = GobgpClient(config.gobgp.api)
        self.paths = CountingClient(self.client)  # counts what GoBGP took, for /metrics
        self.controller = MeteredController(
            self.store,
            self.paths,
            self.events,
            batch_size=config.controller.batch_size,
            max_terms=config.controller.max_terms_per_component,
            guards=guards_of(config),
            sidecar_up=lambda: self.sidecar.healthy,
        )
        self.sidecar = Sidecar(
            config.gobgp,
            config.bgp,
            config.state.dir / "gobgpd",
            self.client,
            on_up=self._sidecar_up,
            on_down=self._sidecar_down,
        )
        self.server: ApiServer | None = None
        self.http: HttpServer | None = None  # [http]: the ExaBGP-style POST /command
        self.metrics: Exporter | None = None
        self._threads: list[threading.Thread] = []

    # -- callbacks ----------------------------------------------------------------------

    def _sidecar_up(self) -> None:
        self.events.publish(Event(EventKind.SIDECAR_UP, subject=self.config.gobgp.api))
        self._announce_store("sidecar-up")  # the sidecar opens the sessions next

    def _sidecar_down(self, why: str) -> None:
        self.events.publish(
            Event(EventKind.SIDECAR_DOWN, subject=self.config.gobgp.api, detail=why)
        )

    def _reconcile(self, reason: str, **context: object) -> bool:
        try:
            self.controller.reconcile(reason)
        except SidecarError as error:
            log.warning("reconcile.failed", reason=reason, error=str(error), **context)
            return False
        return True

    def _announce_store(self, reason: str) -> bool:
        """Put the whole store into a fresh gobgpd before its sessions open: the first
        UPDATEs a router gets then hold every path, and the End-of-RIB that follows
        ends its stale period (graceful restart) with nothing missing. A failed
        reconcile is retried (``OPEN_ATTEMPTS``); if it still fails, the sessions open
        anyway, said loudly: a router drops the stale paths when its restart timer
        runs out whatever trafexd does, and the reconciler keeps repairing."""
        for attempt in range(1, OPEN_ATTEMPTS + 1):
            if self._reconcile(reason, attempt=attempt):
                return True
            if attempt < OPEN_ATTEMPTS and self.stop_event.wait(OPEN_RETRY_WAIT * attempt):
                return False
        log.error(
            "sessions.open_unreconciled",
            reason=reason,
            attempts=OPEN_ATTEMPTS,
            note="sessions open on a partial table; the reconciler retries",
        )
        return False

    # -- loops --------------------------------------------------------------------------

    def _loop(self, interval: float, action: str) -> None:
        while not self.stop_event.wait(interval):
            try:
                if action == "expire":
                    self.controller.expire()
                elif self.sidecar.healthy:
                    self._reconcile("timer")
            except SidecarError as error:
                log.warning(f"{action}.failed", error=str(error))
            except StoreError as error:
                log.error(f"{action}.failed", error=str(error))

    def _watch_peers(self) -> None:
        established: set[str] = set()
        while not self.stop_event.is_set():
            try:
                for peer in self.client.watch_peers():
                    if peer.state == "established" and peer.address not in established:
                        established.add(peer.address)
                        log.info("peer.up", peer=peer.address, peer_as=peer.peer_as)
                        self.events.publish(Event(EventKind.PEER_UP, subject=peer.address))
                        self._reconcile("peer-up")
                    elif peer.state != "established" and peer.address in established:
                        established.discard(peer.address)
                        log.warning("peer.down", peer=peer.address, state=peer.state)
                        self.events.publish(
                            Event(EventKind.PEER_DOWN, subject=peer.address, detail=peer.state)
                        )
                    if self.stop_event.is_set():
                        return
            except SidecarError:
                for address in established:
                    self.events.publish(
                        Event(EventKind.PEER_DOWN, subject=address, detail="sidecar down")
                    )
                established.clear()
            self.stop_event.wait(0.5)

    def _thread(self, target: object, *args: object, name: str) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)  # type: ignore[arg-type]
        thread.start()
        self._threads.append(thread)

    # -- life cycle ---------------------------------------------------------------------

    def start(self) -> None:
        problems = self.controller.load()
        for problem in problems:
            log.error("store.skipped", problem=problem)
        flows, routes = self.controller.counts()
        log.info("store.loaded", flows=flows, routes=routes, path=str(self.store.path))
        self._serve_metrics()  # before gobgpd: a port in use stops trafexd at once
        self.sidecar.start()
        try:
            self.controller.expire()  # what expired while trafexd was down
        except SidecarError as error:
            log.warning("expire.failed", error=str(error))
        self._announce_store("start")
        self.sidecar.open_sessions()  # the store is announced: now the routers may see it
        servicer = TrafexServicer(self.controller, self.events, self.status)
        self.server = ApiServer(
            servicer, self.config.api.listen, security=self.api_security
        ).start()
        if self.config.http.listen is not None:
            self.http = HttpServer(
                self.controller, self.config.http, security=self.http_security
            ).start()
        ctl = self.config.controller
        self._thread(self._loop, ctl.expiry_interval, "expire", name="expiry")
        self._thread(self._loop, ctl.reconcile_interval, "reconcile", name="reconciler")
        self._thread(self._watch_peers, name="peers")
        log.info(
            "trafexd.ready",
            api=self.config.api.listen,
            api_security=self.api_security.describe(),
            metrics=self.config.metrics.listen,
            gobgp=self.config.gobgp.api,
            asn=self.config.bgp.asn,
            neighbors=len(self.config.bgp.neighbors),
        )

    def _serve_metrics(self) -> None:
        """Serve ``/metrics`` when ``[metrics] listen`` is set (ExporterError if not free)."""
        listen = self.config.metrics.listen
        if listen is not None:
            peers = self.client.peers
            collector = TrafexdCollector(self.controller, self.paths, self.sidecar, peers)
            self.metrics = serve_trafexd_metrics(listen, collector)

    def _withdraw_all(self, timeout: float = 5.0) -> None:
        """Withdraw everything and wait (bounded) until gobgpd has sent the withdrawals:
        no path left advertised to an established peer (gobgpd counts the End-of-RIB
        it sent for each family as advertised)."""
        try:
            self.controller.withdraw_all()
            deadline = time.monotonic() + timeout
            while any(
                p.advertised > len(p.families)
                for p in self.client.peers()
                if p.state == "established"
            ):
                if time.monotonic() > deadline:
                    log.warning("shutdown.withdraw_unconfirmed", timeout=timeout)
                    return
                time.sleep(0.05)
        except SidecarError as error:
            log.warning("shutdown.withdraw_failed", error=str(error))

    def status(self) -> Status:
        """A snapshot of trafexd for the API's GetStatus: the sidecar, the controller's
        counts, and gobgpd's peers (read now, so their counters are current)."""
        sidecar, config = self.sidecar, self.config
        healthy, error = sidecar.healthy, sidecar.error
        try:
            peers = tuple(self.client.peers())
        except SidecarError as failure:
            peers, healthy, error = (), False, str(failure)
        flows, routes = self.controller.counts()
        return Status(
            version=__version__,
            asn=config.bgp.asn,
            router_id=str(config.bgp.router_id),
            flows=flows,
            routes=routes,
            last_reconcile=self.controller.last_reconcile,
            sidecar=SidecarStatus(
                healthy=healthy,
                api=config.gobgp.api,
                version=sidecar.version,
                managed=config.gobgp.manage,
                pid=sidecar.pid,
                restarts=sidecar.restarts,
                error=error,
                send_failures=self.controller.send_failures,
                last_send_error=self.controller.last_send_error,
                queued_paths=self.controller.queued_paths,
            ),
            peers=peers,
        )

    def stop(self) -> None:
        """Stop the API, then (``on_shutdown = "withdraw"``) withdraw every intent from
        the routers, keeping it stored; then the sidecar. With ``"keep"`` nothing is
        withdrawn: with graceful restart the routers keep the unicast routes as stale
        until trafexd is back (FRR 8.4 drops FlowSpec rules at the session's end)."""
        self.stop_event.set()
        if self.server is not None:
            self.server.stop(grace=2)
        if self.http is not None:
            self.http.stop()
        if self.config.controller.on_shutdown == "withdraw":
            self._withdraw_all()
        if self.metrics is not None:
            self.metrics.stop()
        self.events.close()
        self.controller.close()
        self.sidecar.stop()
        self.client.close()
        self.store.close()
        log.info("trafexd.stopped")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="trafexd",
        description="trafex controller: keeps FlowSpec rules and routes announced via gobgpd",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", type=Path, help="TOML config (default: embedded)")
    parser.add_argument("--check-config", type=Path, metavar="FILE", help="check FILE and exit")
    parser.add_argument("--log-level", choices=logs.LEVELS, default="info")
    parser.add_argument("--log-format", choices=("auto", "json", "console"), default="auto")
    args = parser.parse_args(argv)
    logs.configure(args.log_level, args.log_format)

    if args.check_config is not None:
        try:
            config = load_config(args.check_config)
            ApiSecurity.from_config(config.api)  # its files can be read, and are PEM
            if config.http.listen is not None:
                HttpSecurity.from_config(config.http)  # and the HTTP endpoint's
        except (ConfigError, SecurityError, ListenError) as error:
            print(f"trafexd: {error}", file=sys.stderr)
            return 2
        print(
            f"{args.check_config}: ok (AS {config.bgp.asn}, "
            f"{len(config.bgp.neighbors)} neighbor(s), API {config.api.listen})"
        )
        return 0

    allocator.fix_mmap_threshold()  # large short-lived tables go back to the system
    try:
        config = load_config(args.config)
        daemon = Daemon(config)
    except (ConfigError, StoreError, SecurityError, ListenError) as error:
        print(f"trafexd: {error}", file=sys.stderr)
        return 2

    done = stop_event("trafexd")
    try:
        daemon.start()
    except StoreError as error:  # a store that opened but cannot be read: nothing sent
        print(f"trafexd: {error}", file=sys.stderr)
        daemon.stop()
        return 2
    except (SidecarError, ListenError, ExporterError) as error:
        print(f"trafexd: {error}", file=sys.stderr)
        daemon.stop()
        return 1
    done.wait()
    daemon.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
