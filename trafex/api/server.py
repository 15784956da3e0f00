"""The gRPC server that runs trafex's servicer (trafexd's API; the tests' in-process one)."""

from __future__ import annotations

from concurrent import futures

import grpc

from trafex.api.security import ApiSecurity
from trafex.api.servicer import TrafexServicer
from trafex.api.stubs import trafex_pb2_grpc
from trafex.model.errors import TrafexError


class ListenError(TrafexError):
    """The API cannot listen on its address (in use, or not an address of this host)."""


class ApiServer:
    """``servicer`` served on ``listen`` (``HOST:PORT``; port 0: any free port, see
    :attr:`port`), protected and bounded by ``security`` (default: plaintext, no token).
    Bound when built, serving after :meth:`start`.

    At most ``security.max_streams`` calls run at once (one more is refused
    RESOURCE_EXHAUSTED), each on its own thread (``workers``: fewer threads, for tests).
    """

    def __init__(
        self,
        servicer: TrafexServicer,
        listen: str,
        *,
        security: ApiSecurity | None = None,
        workers: int | None = None,
    ) -> None:
        security = security or ApiSecurity()
        self.security = security
        self._server = grpc.server(
            futures.ThreadPoolExecutor(
                max_workers=workers or security.max_streams, thread_name_prefix="api"
            ),
            interceptors=security.interceptors(),
            options=security.options(),
            maximum_concurrent_rpcs=security.max_streams,
        )
        trafex_pb2_grpc.add_TrafexServicer_to_server(servicer, self._server)
        credentials = security.credentials()
        try:
            if credentials is None:
                port = self._server.add_insecure_port(listen)
            else:
                port = self._server.add_secure_port(listen, credentials)
        except RuntimeError as error:
            raise ListenError(f"cannot listen on {listen}: {error}") from None
        if not port:  # some gRPC versions answer 0 instead of raising
            raise ListenError(f"cannot listen on {listen}")
        self.port: int = port

    def start(self) -> ApiServer:
        self._server.start()
        return self

    def stop(self, grace: float | None = 2.0) -> None:
        """Stop taking calls; those under way get ``grace`` seconds to finish."""
        self._server.stop(grace).wait()
