"""Throwaway certificates for the tests of trafexd's TLS and mTLS (never for real use).

:func:`make_pki` makes a CA (EC P-256, valid for a day), a server certificate for
``localhost``, ``127.0.0.1`` and ``::1``, and a client certificate, all signed by that
CA; another call makes an unrelated CA (the "wrong CA" of a test). :meth:`Pki.write`
puts them in a directory as PEM files (keys readable by their owner only).

Imported as ``tests.certs``: run pytest from the repository's root with
``python -m pytest`` (as ``make test`` does).
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

SERVER_NAMES = ("localhost", "127.0.0.1", "::1")


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
        paths = {}
        for name in ("ca", "server_cert", "server_key", "client_cert", "client_key"):
            path = directory / f"{name}.pem"
            path.write_bytes(getattr(self, name))
            if name.endswith("_key"):
                path.chmod(0o600)
            paths[name] = path
        return PkiFiles(**paths)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _builder(
    subject: str, issuer: x509.Name, key: ec.EllipticCurvePrivateKey
) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
    )


def _leaf(
    subject: str,
    usage: x509.ObjectIdentifier,
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    names: tuple[str, ...] = (),
) -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = _builder(subject, ca_cert.subject, key)
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


def make_pki(name: str = "trafex test CA") -> Pki:
    """A fresh CA named ``name`` and a server and a client certificate it signed."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        _builder(name, _name(name), ca_key)
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
    server_cert, server_key = _leaf(
        "trafexd", ExtendedKeyUsageOID.SERVER_AUTH, ca_cert, ca_key, SERVER_NAMES
    )
    client_cert, client_key = _leaf("trafex-ctl", ExtendedKeyUsageOID.CLIENT_AUTH, ca_cert, ca_key)
    return Pki(
        ca=ca_cert.public_bytes(serialization.Encoding.PEM),
        server_cert=server_cert,
        server_key=server_key,
        client_cert=client_cert,
        client_key=client_key,
    )
