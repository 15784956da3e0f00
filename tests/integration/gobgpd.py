"""A bare gobgpd for the tests and benchmarks that need GoBGP's API and no peer: AS
65010, no BGP port, its log in the given folder. Started and ended by PID.

Imported as ``gobgpd`` (tests/integration is on the path, as for ``trafexd``).
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from trafexd import free_port

from trafex.bgp.client import GobgpClient, SidecarError

CONFIG = '[global.config]\n  as = 65010\n  router-id = "192.0.2.1"\n  port = -1\n'


def gobgpd_missing_reason() -> str:
    """Why no gobgpd can run here ("" when one can)."""
    return "" if shutil.which("gobgpd") else "gobgpd is not installed (apt-get install gobgpd)"


@contextmanager
def bare_gobgpd(workdir: Path, *, timeout: float = 2.0) -> Iterator[GobgpClient]:
    """A client of a gobgpd started in ``workdir``, once its API answers (RuntimeError
    with its log's tail if it does not within 10 s); the gobgpd is ended on the way out."""
    binary = shutil.which("gobgpd")
    if binary is None:
        raise RuntimeError(gobgpd_missing_reason())
    config = workdir / "gobgpd.toml"
    config.write_text(CONFIG)
    log = workdir / "gobgpd.log"
    api = f"127.0.0.1:{free_port()}"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [binary, "-f", str(config), "--api-hosts", api, "--log-plain"],
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    client = GobgpClient(api, timeout=timeout)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                client.info()
                break
            except SidecarError:
                if time.monotonic() > deadline or process.poll() is not None:
                    tail = log.read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"gobgpd did not start:\n{tail}") from None
                time.sleep(0.05)
        yield client
    finally:
        client.close()
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
