"""A throwaway PKI for trafexd's API: a CA, a server and a client certificate, a token.

``trafex lab up`` makes one for the lab (:func:`ensure`: once, in
``lab/controller/pki/``; trafexd's API there is off loopback, so it needs TLS and a
token) and the tests make their own with :func:`make_pki`. EC P-256 keys, SHA-256
signatures, the server certificate naming ``localhost``, ``127.0.0.1``, ``::1`` and
the addresses it is given. For a lab and tests, never for a production network:
the CA's key is thrown away, so nothing else can ever be signed by it.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

#: The names a server certificate always has: trafexd on loopback.
SERVER_NAMES = ("localhost", "127.0.0.1", "::1")
TOKEN_BYTES = 32


@dataclass(frozen=True)
class PkiFiles:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


@dataclass(frozen=True)
class Pki:
    """PEM bytes of a CA and of the server and client certificates it signed."""

    ca: bytes
    server_cert: bytes
    server_key: bytes
    client_cert: bytes
    client_key: bytes

    def write(self, directory: Path) -> PkiFiles:
        """Write each as ``NAME.pem`` in ``directory``; keys with mode 0600."""
        directory.mkdir(parents=True, exist_ok=True)
        paths = {name: directory / f"{name}.pem" for name in PEM_NAMES}
        for name, path in paths.items():
            _write(path, getattr(self, name), secret=name.endswith("_key"))
        return PkiFiles(**paths)


def _write(path: Path, data: bytes, *, secret: bool) -> None:
    """``data`` into ``path``; a secret created with mode 0600, never readable by
    others, even briefly."""
    mode = 0o600 if secret else 0o644
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(descriptor, "wb") as out:
        out.write(data)
    path.chmod(mode)


PEM_NAMES = ("ca", "server_cert", "server_key", "client_cert", "client_key")


def ensure(
    directory: Path, server_names: tuple[str, ...], token: Path, days: int = 365
) -> PkiFiles:
    """The PKI in ``directory`` and an API token in ``token``, made when a file is
    missing, or the server certificate does not name all of ``server_names`` or
    expires within a day: ``trafex lab up`` makes them once and reuses them."""
    files = PkiFiles(**{name: directory / f"{name}.pem" for name in PEM_NAMES})
    if not (token.is_file() and _usable(files, server_names)):
        make_pki("trafex lab CA", server_names=server_names, days=days).write(directory)
        token.parent.mkdir(parents=True, exist_ok=True)
        _write(token, secrets.token_urlsafe(TOKEN_BYTES).encode() + b"\n", secret=True)
    return files


def _usable(files: PkiFiles, server_names: tuple[str, ...]) -> bool:
    if not all(getattr(files, name).is_file() for name in PEM_NAMES):
        return False
    try:
        cert = x509.load_pem_x509_certificate(files.server_cert.read_bytes())
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, x509.ExtensionNotFound):
        return False
    named = {str(v) for v in sans.get_values_for_type(x509.IPAddress)}
    named |= set(sans.get_values_for_type(x509.DNSName))
    wanted = {str(ipaddress.ip_address(n)) if _is_address(n) else n for n in server_names}
    soon = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=1)
    return wanted <= named and cert.not_valid_after_utc > soon


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _builder(
    subject: str, issuer: x509.Name, key: ec.EllipticCurvePrivateKey, days: int
) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
    )


def _leaf(
    subject: str,
    usage: x509.ObjectIdentifier,
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    names: tuple[str, ...] = (),
    days: int = 1,
) -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = _builder(subject, ca_cert.subject, key, days)
    builder = builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
    builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), False)
    if names:
        sans: list[x509.GeneralName] = []
        for name in names:
            try:
                sans.append(x509.IPAddress(ipaddress.ip_address(name)))
            except ValueError:
                sans.append(x509.DNSName(name))
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), False)
    cert = builder.sign(ca_key, hashes.SHA256())
    return cert.public_bytes(serialization.Encoding.PEM), _key_pem(key)


def make_pki(
    name: str = "trafex test CA", *, server_names: tuple[str, ...] = (), days: int = 1
) -> Pki:
    """A fresh CA named ``name`` and a server and a client certificate it signed, valid
    for ``days``; the server's for :data:`SERVER_NAMES` and ``server_names``."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        _builder(name, _name(name), ca_key, days)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    names = tuple(dict.fromkeys((*SERVER_NAMES, *server_names)))
    server = ExtendedKeyUsageOID.SERVER_AUTH
    server_cert, server_key = _leaf("trafexd", server, ca_cert, ca_key, names, days)
    client = ExtendedKeyUsageOID.CLIENT_AUTH
    client_cert, client_key = _leaf("trafex-ctl", client, ca_cert, ca_key, days=days)
    return Pki(
        ca=ca_cert.public_bytes(serialization.Encoding.PEM),
        server_cert=server_cert,
        server_key=server_key,
        client_cert=client_cert,
        client_key=client_key,
    )
