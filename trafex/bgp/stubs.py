"""GoBGP's generated gRPC stubs, imported with a clear error when they were not built.

The stubs are generated at build time (``make setup`` runs ``gobgp/gen_stubs.py``) from
the protos of Debian's ``golang-github-osrg-gobgp-dev``. trafex's own API stubs are in
:mod:`trafex.api.stubs`.
"""

from __future__ import annotations

from trafex.model.errors import TrafexError


class StubsMissingError(TrafexError):
    """The generated stubs are not there: the package was installed without its build step."""


try:
    from trafex._gen.gobgp import attribute_pb2, gobgp_pb2, gobgp_pb2_grpc
except ImportError as error:  # pragma: no cover - exercised only on a broken install
    raise StubsMissingError(
        "trafex's gRPC stubs are not generated: run 'make setup' (it needs the Debian "
        f"package golang-github-osrg-gobgp-dev for GoBGP's protos) [{error}]"
    ) from error

__all__ = ["StubsMissingError", "attribute_pb2", "gobgp_pb2", "gobgp_pb2_grpc"]
