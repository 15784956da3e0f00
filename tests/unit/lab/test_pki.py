"""The lab's PKI: made once, kept while it fits, secrets readable by their owner only."""

from __future__ import annotations

import stat
from pathlib import Path

from cryptography import x509

from trafex.lab.pki import ensure


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_ensure_makes_the_files_once(tmp_path: Path) -> None:
    """A first call makes the CA, the certificates, the keys (0600) and the token (0600);
    a second call with the same names keeps every file as it is."""
    token = tmp_path / "pki" / "token"
    files = ensure(tmp_path / "pki", ("3001:2:e10a::10",), token)
    assert _mode(files.server_key) == _mode(files.client_key) == _mode(token) == 0o600
    assert _mode(files.ca) == 0o644
    assert len(token.read_text().strip()) >= 40
    before = {p.name: p.read_bytes() for p in (tmp_path / "pki").iterdir()}
    ensure(tmp_path / "pki", ("3001:2:e10a::10",), token)
    assert {p.name: p.read_bytes() for p in (tmp_path / "pki").iterdir()} == before


def test_server_certificate_names_the_controller(tmp_path: Path) -> None:
    """The server certificate names loopback and the addresses it is made for; asking
    for another address makes a new PKI (and a new token)."""
    token = tmp_path / "token"
    files = ensure(tmp_path, ("192.0.2.10",), token)
    cert = x509.load_pem_x509_certificate(files.server_cert.read_bytes())
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    names = {str(a) for a in sans.get_values_for_type(x509.IPAddress)}
    assert {"192.0.2.10", "127.0.0.1", "::1"} <= names
    first = token.read_text()
    ensure(tmp_path, ("3001:db8::1",), token)
    assert token.read_text() != first
