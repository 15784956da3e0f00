"""gobgpd as trafexd's child: config written, process started, supervised, restarted.

With ``[gobgp] manage = false`` trafexd only watches an operator-run gobgpd's health.
Either way, ``on_up`` runs each time the sidecar (re)appears, so that trafexd can push
the store into it: GoBGP forgets injected paths when it restarts. A managed announcing
gobgpd's neighbors start administratively down and are opened after ``on_up`` (at the
first start, by trafexd after its first reconcile: :meth:`Sidecar.open_sessions`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import structlog

from trafex.bgp.client import GobgpClient, SidecarError
from trafex.bgp.config import BgpConfig, GobgpConfig
from trafex.bgp.gobgpd_config import render, restart_flags

log = structlog.get_logger("trafex.sidecar")

START_TIMEOUT = 20.0
POLL_INTERVAL = 0.1
MAX_BACKOFF = 5.0


def environment(gobgp: GobgpConfig, inherited: Mapping[str, str]) -> dict[str, str]:
    """A managed gobgpd's environment: trafexd's, with ``[gobgp] memory_limit`` as Go's
    GOMEMLIMIT when set (Go then collects harder as the heap nears it, instead of
    letting it reach twice the live data)."""
    env = dict(inherited)
    if gobgp.memory_limit:
        env["GOMEMLIMIT"] = gobgp.memory_limit
    return env


class Sidecar:
    """One gobgpd, managed (started and restarted by us) or external (only watched)."""

    def __init__(
        self,
        gobgp: GobgpConfig,
        bgp: BgpConfig,
        workdir: Path,
        client: GobgpClient,
        *,
        on_up: Callable[[], None],
        on_down: Callable[[str], None],
        learn: bool = False,
    ) -> None:
        self.gobgp = gobgp
        self.bgp = bgp
        self.workdir = workdir
        self.client = client
        self.on_up = on_up
        self.on_down = on_down
        self.learn = learn  # accept peers' paths, announce nothing (trafex enforce)
        self.config_path = workdir / "gobgpd.toml"
        self.pid_path = workdir / "gobgpd.pid"
        self.log_path = workdir / "gobgpd.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.restarts = 0
        self.healthy = False
        self.error = ""
        self.version = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    # -- starting -----------------------------------------------------------------------

    def _binary(self) -> str:
        binary = shutil.which(self.gobgp.binary)
        if binary is None:
            raise SidecarError(
                f"gobgpd not found ({self.gobgp.binary!r}): install the Debian package "
                "'gobgpd' (apt-get install gobgpd) or set [gobgp] binary"
            )
        return binary

    def _spawn(self) -> None:
        binary = self._binary()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(render(self.bgp, learn=self.learn))
        if not self.version:
            try:
                out = subprocess.run(
                    [binary, "--version"], capture_output=True, text=True, timeout=5, check=False
                )
                self.version = out.stdout.strip().rpartition(" ")[2]
            except (OSError, subprocess.TimeoutExpired):
                self.version = "unknown"
            if self.version and not self.version.startswith("3."):
                log.warning("sidecar.version", version=self.version, supported="3.x")
        with self.log_path.open("ab") as logfile:
            self.process = subprocess.Popen(
                [
                    binary,
                    "-f",
                    str(self.config_path),
                    "-t",
                    "toml",
                    "--api-hosts",
                    self.gobgp.api,
                    "--pprof-disable",
                    "-p",
                    "-l",
                    self.gobgp.log_level,
                    *restart_flags(self.bgp, learn=self.learn),
                ],
                stdin=subprocess.DEVNULL,
                stdout=logfile,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a backgrounded gobgpd without it stops at once
                env=environment(self.gobgp, os.environ),
            )
        self.pid_path.write_text(f"{self.process.pid}\n")
        log.info("sidecar.started", pid=self.process.pid, api=self.gobgp.api)

    def open_sessions(self) -> None:
        """Enable the neighbors (rendered administratively down): call once the store
        is announced, so that a router's first UPDATEs from this gobgpd hold every
        path, then End-of-RIB, which ends the router's stale period without a gap. A
        failure is logged: a gobgpd that cannot take it is restarted anyway."""
        if self.learn or not self.gobgp.manage:
            return
        for neighbor in self.bgp.neighbors:
            try:
                self.client.enable_peer(str(neighbor.address))
            except SidecarError as error:
                log.error("sidecar.enable_failed", peer=str(neighbor.address), error=str(error))

    def _log_tail(self, lines: int = 5) -> str:
        try:
            text = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return " | ".join(text[-lines:])

    def _wait_api(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise SidecarError(
                    f"gobgpd exited with {self.process.returncode} at start: {self._log_tail()}"
                )
            try:
                self.client.info()
                return
            except SidecarError as error:
                last = str(error)
            time.sleep(POLL_INTERVAL)
        raise SidecarError(f"gobgpd's API at {self.gobgp.api} did not answer in time: {last}")

    def start(self) -> None:
        """Start (or find) the sidecar and wait for its API; then supervise it."""
        if self.gobgp.manage:
            self._stop_stale()
            self._check_api_port_free()
            self._spawn()
            try:
                self._wait_api(START_TIMEOUT)
            except SidecarError:
                self._terminate()
                raise
        else:
            self._wait_api(START_TIMEOUT)
        self.healthy = True
        self._thread = threading.Thread(target=self._supervise, name="sidecar", daemon=True)
        self._thread.start()

    def _stop_stale(self) -> None:
        """End a gobgpd that a killed owner left running on this workdir's config (it
        runs in its own session, so it outlives its parent): the PID file names it, and
        its command line must name our config file, so nobody else's gobgpd is touched."""
        try:
            pid = int(self.pid_path.read_text())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            return
        if str(self.config_path).encode() not in cmdline:
            return
        log.warning("sidecar.stale", pid=pid, action="stopping it")
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        for _ in range(50):
            if not Path(f"/proc/{pid}").exists():
                return
            time.sleep(0.1)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)

    def _check_api_port_free(self) -> None:
        try:
            info = self.client.info()
        except SidecarError:
            return
        raise SidecarError(
            f"another gobgpd (AS {info.asn}) already answers on {self.gobgp.api}: stop it, "
            "or set [gobgp] manage = false to use it, or another [gobgp] api address"
        )

    # -- supervising --------------------------------------------------------------------

    def _supervise(self) -> None:
        backoff = 0.2
        while not self._stop.is_set():
            if self.gobgp.manage:
                assert self.process is not None
                if self.process.poll() is None:
                    self._stop.wait(POLL_INTERVAL)
                    continue
                self._went_down(f"gobgpd exited with {self.process.returncode}")
                if self._stop.wait(backoff):
                    return
                try:
                    self._spawn()
                    self._wait_api(START_TIMEOUT)
                except SidecarError as error:
                    self.error = str(error)
                    log.error("sidecar.restart_failed", error=self.error)
                    backoff = min(backoff * 2, MAX_BACKOFF)
                    continue
                self.restarts += 1
                backoff = 0.2
                self._came_up()
            else:
                try:
                    self.client.info()
                except SidecarError as error:
                    if self.healthy:
                        self._went_down(str(error))
                    self._stop.wait(1.0)
                    continue
                if not self.healthy:
                    self._came_up()
                self._stop.wait(1.0)

    def _went_down(self, why: str) -> None:
        self.healthy = False
        self.error = why
        log.warning("sidecar.down", reason=why, log_tail=self._log_tail(3))
        self.on_down(why)

    def _came_up(self) -> None:
        self.healthy = True
        self.error = ""
        log.info("sidecar.up", pid=self.pid, restarts=self.restarts)
        try:
            self.on_up()
        except Exception as error:
            log.error("sidecar.on_up_failed", error=str(error))
        self.open_sessions()

    # -- stopping -----------------------------------------------------------------------

    def _terminate(self) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=5)

    def stop(self) -> None:
        """Stop supervising; a managed gobgpd is stopped (its peers see the withdraw)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self.gobgp.manage:
            self._terminate()
            self.pid_path.unlink(missing_ok=True)
            log.info("sidecar.stopped", pid=self.pid)
