"""trafex.v1's generated gRPC stubs, imported with a clear error when they were not built.

Generated at build time (``make stubs`` runs ``gobgp/gen_stubs.py``) from
``proto/trafex/v1/``. Only :mod:`trafex.api` imports them: everything else speaks the
model, through :mod:`trafex.api.client` and :mod:`trafex.api.servicer`.
"""

from __future__ import annotations

from trafex.bgp.stubs import StubsMissingError

try:
    from trafex._gen.trafex.v1 import trafex_pb2, trafex_pb2_grpc
except ImportError as error:  # pragma: no cover - exercised only on a broken install
    raise StubsMissingError(
        "trafex's API stubs are not generated: run 'make stubs' (after a change to "
        f"proto/trafex/v1/, too) [{error}]"
    ) from error

__all__ = ["trafex_pb2", "trafex_pb2_grpc"]
