"""Serve a Prometheus registry at ``http://HOST:PORT/metrics`` (trafexd and the sensor).

Each program builds its own :class:`~prometheus_client.CollectorRegistry`, never the
library's global one, so two in one process (the tests) do not collide. The registry
also gets the standard ``process_*`` metrics (CPU seconds, resident memory, open file
descriptors). The server runs in a daemon thread; :meth:`Exporter.stop` ends it and
frees the port.
"""

from __future__ import annotations

import threading
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, ProcessCollector, start_http_server

from trafex.config import split_host_port
from trafex.model.errors import TrafexError


class ExporterError(TrafexError):
    """The metrics endpoint cannot listen on its address (in use, not this host's)."""


def new_registry() -> CollectorRegistry:
    """A registry of one's own, with the ``process_*`` metrics already in it."""
    registry = CollectorRegistry(auto_describe=True)
    ProcessCollector(registry=registry)
    return registry


class Exporter:
    """A running ``/metrics`` endpoint."""

    def __init__(self, server: WSGIServer, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread

    @property
    def port(self) -> int:
        """The port it listens on."""
        port: int = self._server.server_address[1]
        return port

    def stop(self) -> None:
        """Stop serving and close the socket (a scrape under way finishes first)."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def serve_metrics(listen: str, registry: CollectorRegistry) -> Exporter:
    """Serve ``registry`` on ``listen`` (``HOST:PORT``, ``[v6]:PORT``); raises
    :class:`ExporterError` naming the address when it cannot listen there."""
    try:
        host, port = split_host_port(listen)
    except ValueError as error:
        raise ExporterError(f"metrics: {error}") from None
    try:
        server, thread = start_http_server(port, host, registry=registry)
    except OSError as error:
        reason = error.strerror or str(error)
        raise ExporterError(f"metrics: cannot listen on {listen}: {reason}") from None
    return Exporter(server, thread)
