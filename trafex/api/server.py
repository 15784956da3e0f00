"""The gRPC server that runs trafex's servicer (trafexd's API; the tests' in-process one)."""

from __future__ import annotations

from concurrent import futures

import grpc

from trafex.api.rpc import MAX_MESSAGE
from trafex.api.servicer import TrafexServicer
from trafex.api.stubs import trafex_pb2_grpc
from trafex.model.errors import TrafexError


class ListenError(TrafexError):
    """The API cannot listen on its address (in use, or not an address of this host)."""


class ApiServer:
    """``servicer`` served on ``listen`` (``HOST:PORT``; port 0: any free port, see
    :attr:`port`). Bound when built, serving after :meth:`start`."""

    def __init__(self, servicer: TrafexServicer, listen: str, *, workers: int = 16) -> None:
        self._server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="api"),
            options=[
                ("grpc.max_receive_message_length", MAX_MESSAGE),
                ("grpc.max_send_message_length", MAX_MESSAGE),
            ],
        )
        trafex_pb2_grpc.add_TrafexServicer_to_server(servicer, self._server)
        try:
            port = self._server.add_insecure_port(listen)
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
