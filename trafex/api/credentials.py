"""What a client of trafexd's API presents: TLS trust, a client certificate, a token.

Read from files by :meth:`Credentials.read` (each failure a
:class:`~trafex.api.security.SecurityError` naming the option and the file), and given
to :class:`~trafex.api.client.TrafexClient` by :meth:`Credentials.client`. trafex-ctl
and the sensor's sender (``trafex detect --controller``) both take them from the same
options and environment variables (:mod:`trafex.cli.auth`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from trafex.api.client import TrafexClient
from trafex.api.security import read_pem, read_token


@dataclass(frozen=True, slots=True)
class Credentials:
    """PEM bytes of the CA that signed trafexd's certificate (TLS when set), of a
    client certificate and key (mTLS), and the API token; None: not used."""

    tls_ca: bytes | None = None
    token: str | None = None
    client_cert: bytes | None = None
    client_key: bytes | None = None

    @classmethod
    def read(
        cls,
        *,
        tls_ca: Path | None = None,
        token_file: Path | None = None,
        tls_cert: Path | None = None,
        tls_key: Path | None = None,
    ) -> Credentials:
        """The credentials in these files (the names in errors are the CLI's options)."""
        return cls(
            tls_ca=None if tls_ca is None else read_pem(tls_ca, "--tls-ca"),
            token=None if token_file is None else read_token(token_file, "--token-file"),
            client_cert=None if tls_cert is None else read_pem(tls_cert, "--tls-cert"),
            client_key=None if tls_key is None else read_pem(tls_key, "--tls-key", key=True),
        )

    @property
    def tls(self) -> bool:
        return self.tls_ca is not None or self.client_cert is not None

    def client(self, target: str, *, timeout: float | None) -> TrafexClient:
        """A client of ``target`` presenting these credentials."""
        return TrafexClient(
            target,
            timeout=timeout,
            tls_ca=self.tls_ca,
            token=self.token,
            client_cert=self.client_cert,
            client_key=self.client_key,
        )
