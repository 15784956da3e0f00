"""A real trafexd (with its real gobgpd, no router) whose API asks for TLS and a token.

Needs only ``gobgpd``. ``trafex-ctl`` runs as a user would run it (a child process):
with ``--tls-ca`` and ``--token-file`` it adds a rule; without the token it is refused,
and nothing is stored. ``trafexd --check-config`` refuses an API off loopback without
TLS.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from trafexd import Trafexd

from tests.certs import PkiFiles, make_pki

TOKEN = "integration-token-7f3a"


@pytest.fixture
def secured(tmp_path: Path) -> Iterator[tuple[Trafexd, PkiFiles, Path]]:
    """trafexd with [api] TLS and a token; its certificates and token file."""
    if shutil.which("gobgpd") is None:
        pytest.skip("gobgpd is not installed (apt-get install gobgpd)")
    pki = make_pki()
    files = pki.write(tmp_path / "pki")
    token = tmp_path / "token"
    token.write_text(TOKEN + "\n")
    token.chmod(0o600)
    daemon = Trafexd(
        tmp_path / "trafexd",
        api_options=[
            f'tls_cert = "{files.server_cert}"',
            f'tls_key = "{files.server_key}"',
            f'token_file = "{token}"',
        ],
        api_credentials=grpc.composite_channel_credentials(
            grpc.ssl_channel_credentials(pki.ca), grpc.access_token_call_credentials(TOKEN)
        ),
    )
    try:
        yield daemon.start(), files, token
    finally:
        daemon.close()


def ctl(target: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "trafex.cli.ctl", "--target", target, "--timeout", "10", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_ctl_adds_a_flow_with_tls_and_the_token(
    secured: tuple[Trafexd, PkiFiles, Path],
) -> None:
    """trafex-ctl --tls-ca --token-file adds a rule to a TLS+token trafexd; without
    the token it is refused (exit 1, one line saying the token was refused) and nothing
    more is stored; in plaintext it does not get through either."""
    daemon, files, token = secured
    auth = ["--tls-ca", str(files.ca), "--token-file", str(token)]
    added = ctl(daemon.api, *auth, "add-flow", "destination 10.0.0.1/32 protocol tcp discard")
    assert (added.returncode, added.stderr) == (0, "")
    assert added.stdout.startswith("added fs-")

    no_token = ctl(
        daemon.api, "--tls-ca", str(files.ca), "add-flow", "destination 10.0.0.2/32 discard"
    )
    assert no_token.returncode == 1
    assert no_token.stderr.splitlines() == [
        "trafex-ctl: trafexd refused the token: missing or wrong token [UNAUTHENTICATED]"
        " (give --token-file or TRAFEX_TOKEN_FILE)"
    ]
    plaintext = ctl(daemon.api, "add-flow", "destination 10.0.0.3/32 discard")
    assert plaintext.returncode == 1
    assert plaintext.stderr.startswith(f"trafex-ctl: cannot reach trafexd at {daemon.api}")

    listed = ctl(daemon.api, *auth, "list-flows")
    assert listed.returncode == 0
    assert "10.0.0.1/32" in listed.stdout
    assert "10.0.0.2/32" not in listed.stdout
    assert daemon.status().flows == 1


def test_check_config_refuses_an_api_off_loopback_without_tls(tmp_path: Path) -> None:
    """trafexd --check-config on [api] listen = "[::]:50061" without TLS exits 2 with
    one line naming api.listen."""
    config = tmp_path / "trafex.toml"
    config.write_text('[api]\nlisten = "[::]:50061"\ntoken_file = "/etc/trafex/token"\n')
    done = subprocess.run(
        [sys.executable, "-m", "trafex.cli.trafexd", "--check-config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.splitlines() == [
        "trafexd: api.listen: [::]:50061 is not loopback: set tls_cert, tls_key and "
        "token_file (or tls_client_ca for mTLS)"
    ]
