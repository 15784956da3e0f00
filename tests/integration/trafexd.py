"""A real trafexd (which starts its own real gobgpd) owned by a test.

:class:`Trafexd` writes a config into the test's directory (free ports on loopback for
both APIs, the router's addresses as neighbors), starts ``trafexd`` as a child process,
waits for its API with a deadline, and stops it by PID. Failures carry trafexd's and
gobgpd's logs.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import grpc

from trafex.api.stubs import trafex_pb2 as pb
from trafex.api.stubs import trafex_pb2_grpc

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for(
    check: Callable[[], T | None], timeout: float, what: str, logs: Callable[[], str]
) -> T:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result is not None and result is not False:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{logs()}")
        time.sleep(0.1)


class Trafexd:
    """trafexd with gobgpd; ``neighbors``: (address, peer_as, local_address, families)."""

    def __init__(
        self,
        workdir: Path,
        neighbors: Sequence[tuple[str, int, str, Sequence[str]]] = (),
        *,
        asn: int = 65010,
        router_id: str = "192.0.2.10",
        listen_port: int = -1,
        listen_addresses: Sequence[str] = ("127.0.0.1",),
        reconcile_interval: float = 5,
        metrics: bool = False,
        extra: str = "",
        api_options: Sequence[str] = (),
        gobgp_options: Sequence[str] = (),
        api_credentials: grpc.ChannelCredentials | None = None,
    ) -> None:
        """``api_options``, ``gobgp_options``: more lines of ``[api]`` (``tls_cert =
        "..."``), of ``[gobgp]``;
        ``api_credentials``: what the harness's own channel (its readiness check, :attr:`stub`)
        needs then (TLS, the token)."""
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.api = f"127.0.0.1:{free_port()}"
        self.gobgp_api = f"127.0.0.1:{free_port()}"
        # [metrics] listen, when asked for: GET http://{metrics}/metrics
        self.metrics = f"127.0.0.1:{free_port()}" if metrics else None
        self.state_dir = workdir / "state"
        self.config_path = workdir / "trafex.toml"
        self.log_path = workdir / "trafexd.log"
        lines = [
            "[bgp]",
            f"asn = {asn}",
            f'router_id = "{router_id}"',
            f"listen_port = {listen_port}",
            f"listen_addresses = {list(listen_addresses)!r}".replace("'", '"'),
            "[api]",
            f'listen = "{self.api}"',
            *api_options,
            "[gobgp]",
            f'api = "{self.gobgp_api}"',
            *gobgp_options,
            "[state]",
            f'dir = "{self.state_dir}"',
            "[controller]",
            f"reconcile_interval = {reconcile_interval}",
            "expiry_interval = 0.5",
            extra,
            *(["[metrics]", f'listen = "{self.metrics}"'] if self.metrics else []),
        ]
        for address, peer_as, local, families in neighbors:
            fams = ", ".join(f'"{f}"' for f in families)
            lines += [
                "[[bgp.neighbor]]",
                f'address = "{address}"',
                f"peer_as = {peer_as}",
                f'local_address = "{local}"',
                f"families = [{fams}]",
            ]
        self.config_path.write_text("\n".join(lines) + "\n")
        self.process: subprocess.Popen[bytes] | None = None
        self.channel = (
            grpc.insecure_channel(self.api)
            if api_credentials is None
            else grpc.secure_channel(self.api, api_credentials)
        )
        self.stub: Any = trafex_pb2_grpc.TrafexStub(self.channel)

    def logs(self) -> str:
        parts = []
        for path in (self.log_path, self.state_dir / "gobgpd" / "gobgpd.log"):
            try:
                text = path.read_text(errors="replace").splitlines()[-40:]
            except OSError:
                continue
            parts.append(f"--- {path.name}\n" + "\n".join(text))
        return "\n".join(parts)

    def start(self, timeout: float = 30.0) -> Trafexd:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "trafex.cli.trafexd",
                    "--config",
                    str(self.config_path),
                    "--log-format",
                    "json",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

        def ready() -> bool | None:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(
                    f"trafexd exited with {self.process.returncode}\n{self.logs()}"
                )
            try:
                self.stub.GetStatus(pb.GetStatusRequest(), timeout=1)
                return True
            except grpc.RpcError:
                return None

        wait_for(ready, timeout, "trafexd's API", self.logs)
        return self

    def status(self) -> Any:
        return self.stub.GetStatus(pb.GetStatusRequest(), timeout=5)

    def sidecar_pid(self) -> int:
        pid: int = self.status().sidecar.pid
        return pid

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stop trafexd (SIGTERM: it stops its gobgpd too) and wait for it."""
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            os.kill(process.pid, sig)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.kill(process.pid, signal.SIGKILL)
                process.wait(timeout=5)
        self.process = None
        self._reap_sidecar()

    def _reap_sidecar(self) -> None:
        """A gobgpd this test's trafexd left (only after SIGKILL of trafexd): end it by PID."""
        pidfile = self.state_dir / "gobgpd" / "gobgpd.pid"
        try:
            pid = int(pidfile.read_text())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError):
            return
        if str(self.state_dir).encode() in cmdline:
            os.kill(pid, signal.SIGKILL)

    def close(self) -> None:
        self.stop()
        self.channel.close()
