"""trafexd's ExaBGP-style HTTP endpoint: ``POST /command`` with a ``command`` form field.

The talk's sensors post ExaBGP API lines to a small web app that writes them to
ExaBGP's stdin. trafexd takes the same requests (``[http] listen``, off unless set)
and reads each line into the model (:mod:`trafex.model.exabgp`); the command goes to the
controller like a gRPC call (origin ``http``), so every guard applies, and nothing is
written to any process. The answer is JSON::

    200 {"ok": true, "verb": "announce", "id": "fs-…", "new": true, "text": "…"}
    200 {"ok": true, "verb": "withdraw", "id": "fs-…", "text": "…"}
    4xx/5xx {"ok": false, "error": "…", "code": "INVALID_ARGUMENT"}

Errors are the gRPC API's (:func:`trafex.api.servicer.status_of`), with the HTTP status
of their code (:data:`HTTP_STATUS`); ``"stored": true`` on an error means the change is
stored but not announced yet (gobgpd is down: it will be). A body over
``max_body_bytes`` is 413; with ``token_file``, a request without ``Authorization:
Bearer TOKEN`` is 401 (compared in constant time); with ``tls_cert``, HTTPS only.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import socket
import socketserver
import ssl
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import grpc
import structlog

from trafex.api.form import FormError, form_field
from trafex.api.security import SecurityError, read_pem, read_token
from trafex.api.server import ListenError
from trafex.api.servicer import IntentController, status_of
from trafex.bgp.client import SidecarError
from trafex.control.config import HttpConfig
from trafex.control.controller import DryRunError, IntentOptions, NotFoundError
from trafex.model.exabgp import Announce, Command, parse_command
from trafex.model.intent import FlowIntent, Intent
from trafex.model.route import route_text

log = structlog.get_logger("trafex.http")

ORIGIN_HTTP = "http"
PATH = "/command"
FIELD = "command"
TIMEOUT = 10.0  # seconds a client may take to send its request
MAX_CONNECTIONS = 64  # served at once; more are closed unanswered
_DRAIN = 1 << 20  # bytes of an unwanted body read (and dropped) before answering

# The HTTP status of each gRPC code the API answers with.
HTTP_STATUS: Mapping[grpc.StatusCode, int] = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.FAILED_PRECONDITION: 409,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.UNAVAILABLE: 503,
}
# The code word of an answer the HTTP layer itself gives.
_CODE_OF_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    404: "NOT_FOUND",
    405: "UNIMPLEMENTED",
    408: "DEADLINE_EXCEEDED",
    413: "RESOURCE_EXHAUSTED",
    501: "UNIMPLEMENTED",
}
_HeadersT = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Reply:
    """An answer: HTTP status, JSON body, extra headers."""

    status: int
    body: dict[str, Any]
    headers: _HeadersT = field(default=())

    @staticmethod
    def failure(status: int, message: str, headers: _HeadersT = ()) -> Reply:
        """A refusal by the HTTP layer (the command's own are :func:`_error_reply`)."""
        code = _CODE_OF_STATUS.get(status, "INVALID_ARGUMENT" if status < 500 else "INTERNAL")
        return Reply(status, {"ok": False, "error": message, "code": code}, headers)


def _text(intent: Intent) -> str:
    return intent.text if isinstance(intent, FlowIntent) else route_text(intent.route)


def _apply(controller: IntentController, command: Command, options: IntentOptions) -> Reply:
    """Hand a parsed command to the controller; its answer as a reply (raises its errors)."""
    if isinstance(command, Announce):
        dry_run = False
        try:
            ((intent, created),) = controller.add([(command.item, options)])
        except DryRunError as dry:
            ((intent, created),) = dry.answer
            dry_run = True
        body = {"ok": True, "verb": "announce", "id": intent.meta.id, "new": created}
        if dry_run:
            body["dry_run"] = True  # nothing was stored or announced
        body["text"] = _text(intent)
        return Reply(200, body)
    intent = controller.by_key(command.key)
    if not controller.remove([intent]):  # removed by another request meanwhile
        raise NotFoundError("no rule or route with that match")
    return Reply(200, {"ok": True, "verb": "withdraw", "id": intent.meta.id, "text": _text(intent)})


def _error_reply(error: Exception) -> Reply:
    """A command's error as the gRPC API would answer it, in HTTP's words."""
    status = status_of(error)
    if status is None:  # a bug: logged with its traceback, told no more than needed
        log.error("http.bug", error=repr(error), exc_info=error)
        return Reply(500, {"ok": False, "error": "internal error", "code": "INTERNAL"})
    code, message = status
    body: dict[str, Any] = {"ok": False, "error": message, "code": code.name}
    if isinstance(error, SidecarError):
        body["stored"] = True  # stored, not announced yet
    return Reply(HTTP_STATUS.get(code, 500), body)


def run_command(controller: IntentController, text: str, client: str) -> tuple[Reply, str | None]:
    """The reply to one command's text, and its verb (None when it did not parse)."""
    verb = None
    try:
        command = parse_command(text)
        verb = command.verb
        options = IntentOptions(origin=ORIGIN_HTTP, reason=f"http from {client}")
        return _apply(controller, command, options), verb
    except Exception as error:  # every error of a command ends here, as a reply
        return _error_reply(error), verb


class _Server(ThreadingHTTPServer):
    """The listening socket and what each request's handler needs."""

    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        controller: IntentController,
        config: HttpConfig,
        token: bytes | None,
    ) -> None:
        infos = socket.getaddrinfo(address[0], address[1], type=socket.SOCK_STREAM)
        self.address_family = infos[0][0]
        self.controller = controller
        self.max_body = config.max_body_bytes
        self.token_digest = hashlib.sha256(token).digest() if token is not None else None
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        """Bind, without HTTPServer's reverse DNS lookup of the address."""
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), self.server_address[1]

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            log.warning("http.busy", client=client_address[0])
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A connection that failed (TLS handshake, reset, timeout): one log line."""
        log.info("http.connection_failed", client=client_address[0])


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"  # for Expect: 100-continue; every answer closes
    timeout = TIMEOUT
    server_version = "trafexd"
    sys_version = ""

    def setup(self) -> None:
        self.request.settimeout(self.timeout)
        if isinstance(self.request, ssl.SSLSocket):
            self.request.do_handshake()  # here, in this thread, not in accept()
        super().setup()

    def log_message(self, format: str, *args: Any) -> None:
        """Access lines are not logged: each command is (``http.command``)."""

    # -- the answers --------------------------------------------------------------------

    def _send(self, reply: Reply) -> None:
        data = (json.dumps(reply.body) + "\n").encode()
        self.send_response(reply.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        for name, value in reply.headers:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        self.close_connection = True

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """The base class's own refusals (a bad request line, an unknown method), in JSON
        with a status line (the base answers an unreadable request line as HTTP/0.9)."""
        if self.request_version == self.default_request_version:
            self.request_version = self.protocol_version
        self._drain()
        self._send(Reply.failure(code, message or self.responses.get(code, ("error",))[0]))

    def _drain(self) -> None:
        """Read and drop a body we do not want (up to a limit), so that the client sees
        the answer rather than a reset connection."""
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except (AttributeError, ValueError):
            return
        if 0 < length <= _DRAIN:
            with contextlib.suppress(OSError):
                self.rfile.read(length)

    def _refuse(self, reply: Reply, verb: str | None = None) -> None:
        self._drain()
        self._log(reply, verb)
        self._send(reply)

    def _log(self, reply: Reply, verb: str | None, command: str | None = None) -> None:
        """One ``http.command`` line, written before the answer is sent: a client that
        has the answer finds the line in the log."""
        body = reply.body
        log.info(
            "http.command",
            origin=ORIGIN_HTTP,
            client=self.client_address[0],
            verb=verb,
            id=body.get("id"),
            outcome="ok" if body.get("ok") else body.get("code"),
            status=reply.status,
            error=body.get("error"),
            command=command[:200] if command else None,
        )

    # -- the checks before the body -----------------------------------------------------

    def _precheck(self) -> Reply | None:
        """What refuses the request before its body is read: path, method, token, size."""
        if urlsplit(self.path).path != PATH:
            return Reply.failure(404, f"no such path: use POST {PATH}")
        if self.command != "POST":
            return Reply.failure(405, f"use POST {PATH}", (("Allow", "POST"),))
        if not self._authorized():
            challenge = (("WWW-Authenticate", 'Bearer realm="trafexd"'),)
            return Reply.failure(401, "missing or wrong Authorization: Bearer token", challenge)
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return Reply.failure(411, "send a Content-Length, not a chunked body")
        length = self.headers.get("Content-Length")
        if length is None:
            return Reply.failure(411, "send a Content-Length")
        if not (length.isascii() and length.isdigit()):
            return Reply.failure(400, f"bad Content-Length {length[:20]!r}")
        if int(length) > self.server.max_body:
            return Reply.failure(413, f"the body is over {self.server.max_body} bytes")
        return None

    def _authorized(self) -> bool:
        expected = self.server.token_digest
        if expected is None:
            return True
        scheme, _, token = self.headers.get("Authorization", "").strip().partition(" ")
        given = hashlib.sha256(token.strip().encode("latin-1", "replace")).digest()
        return scheme.lower() == "bearer" and hmac.compare_digest(given, expected)

    def handle_expect_100(self) -> bool:
        """Refuse before the client sends a body we will not take."""
        refusal = self._precheck()
        if refusal is not None:
            self._log(refusal, None)
            self._send(refusal)
            return False
        return super().handle_expect_100()

    # -- the methods --------------------------------------------------------------------

    def do_POST(self) -> None:
        refusal = self._precheck()
        if refusal is not None:
            self._refuse(refusal)
            return
        length = int(self.headers["Content-Length"])
        try:
            body = self.rfile.read(length)
        except OSError:  # timed out or reset: nobody to answer
            self.close_connection = True
            return
        if len(body) < length:
            self.close_connection = True
            return
        try:
            text = form_field(self.headers.get("Content-Type"), body, FIELD)
        except FormError as error:
            reply = Reply.failure(error.status, str(error))
            self._log(reply, None)
            self._send(reply)
            return
        reply, verb = run_command(self.server.controller, text, self.client_address[0])
        self._log(reply, verb, text)
        self._send(reply)

    def _other(self) -> None:
        refusal = self._precheck()
        assert refusal is not None  # every method but POST is refused
        self._refuse(refusal)

    do_GET = do_HEAD = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _other  # noqa: N815


class HttpServer:
    """The endpoint on ``config.listen`` (or ``address``: the tests' port 0; see
    :attr:`port`). Bound when built (:class:`ListenError` if it cannot: the address,
    the certificate or the token file), serving after :meth:`start`."""

    def __init__(
        self,
        controller: IntentController,
        config: HttpConfig,
        *,
        address: tuple[str, int] | None = None,
        security: HttpSecurity | None = None,
    ) -> None:
        if address is None:
            if config.listen is None:
                raise ListenError("http: no listen address")
            host, _, port = config.listen.rpartition(":")
            address = (host.strip("[]"), int(port))
        security = security if security is not None else HttpSecurity.from_config(config)
        try:
            self._server = _Server(address, controller, config, security.token)
        except OSError as error:
            raise ListenError(
                f"http: cannot listen on {address[0]}:{address[1]}: {error}"
            ) from None
        if security.context is not None:
            self._server.socket = security.context.wrap_socket(
                self._server.socket, server_side=True, do_handshake_on_connect=False
            )
        self.tls = security.context is not None
        self.port: int = self._server.server_address[1]
        self._thread: threading.Thread | None = None

    def start(self) -> HttpServer:
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.2}, name="http"
        )
        self._thread.daemon = True
        self._thread.start()
        host = self._server.server_address[0]
        log.info("http.listening", address=host, port=self.port, tls=self.tls, path=PATH)
        return self

    def stop(self) -> None:
        """Stop taking requests (those under way finish on their own threads)."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.server_close()


@dataclass(frozen=True)
class HttpSecurity:
    """The endpoint's token and TLS context, read from ``[http]``'s files: by
    ``trafexd --check-config``, and by trafexd before anything starts (a missing or
    bad file stops it at once, as the gRPC API's do)."""

    token: bytes | None = None
    context: ssl.SSLContext | None = None

    @classmethod
    def from_config(cls, config: HttpConfig) -> HttpSecurity:
        """Raises :class:`ListenError` naming the file and what is wrong with it."""
        token = None
        if config.token_file is not None:
            try:
                token = read_token(config.token_file, "http.token_file").encode()
            except SecurityError as error:
                raise ListenError(str(error)) from None
        context = None
        if config.tls_cert is not None and config.tls_key is not None:
            try:  # each file named when it cannot be read or holds no PEM, as [api]'s
                read_pem(config.tls_cert, "http.tls_cert")
                read_pem(config.tls_key, "http.tls_key", key=True)
            except SecurityError as error:
                raise ListenError(str(error)) from None
            try:
                context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                context.minimum_version = ssl.TLSVersion.TLSv1_2
                context.load_cert_chain(config.tls_cert, config.tls_key)
            except (OSError, ssl.SSLError) as error:
                raise ListenError(
                    f"http.tls_cert {config.tls_cert} and http.tls_key {config.tls_key}: "
                    f"cannot be used together: {error}"
                ) from None
        return cls(token, context)
