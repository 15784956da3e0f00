"""Throwaway certificates for the tests of trafexd's TLS and mTLS: the lab's PKI maker
(:mod:`trafex.lab.pki`), imported as ``tests.certs`` by the tests."""

from trafex.lab.pki import Pki, PkiFiles, make_pki

__all__ = ["Pki", "PkiFiles", "make_pki"]
