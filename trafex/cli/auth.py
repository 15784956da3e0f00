"""The options that authenticate a client to trafexd's API, shared by trafex-ctl and
``trafex detect --controller``: each an option, else its environment variable."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from trafex.api.credentials import Credentials

#: option → (environment variable, help)
OPTIONS = {
    "--tls-ca": ("TRAFEX_TLS_CA", "PEM CA that signed trafexd's certificate: use TLS"),
    "--token-file": ("TRAFEX_TOKEN_FILE", "file holding the API token"),
    "--tls-cert": ("TRAFEX_TLS_CERT", "PEM client certificate (mTLS), with --tls-key"),
    "--tls-key": ("TRAFEX_TLS_KEY", "PEM key of the client certificate"),
}


def add_auth_options(parser: argparse.ArgumentParser) -> None:
    """``--tls-ca``, ``--token-file``, ``--tls-cert``, ``--tls-key`` (and their
    ``TRAFEX_*`` environment variables)."""
    group = parser.add_argument_group("authentication (when trafexd's [api] asks for it)")
    for option, (env, help_text) in OPTIONS.items():
        default = os.environ.get(env) or None
        group.add_argument(
            option, type=Path, metavar="FILE", default=default, help=f"{help_text} (env {env})"
        )


def credentials(args: argparse.Namespace) -> Credentials:
    """The credentials the options name; a file that cannot be used is a SecurityError
    naming the option and the file."""
    return Credentials.read(
        tls_ca=args.tls_ca, token_file=args.token_file, tls_cert=args.tls_cert, tls_key=args.tls_key
    )
