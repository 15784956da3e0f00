"""Who may call trafexd's gRPC API, and how much: TLS, mTLS, a bearer token, limits.

:class:`ApiSecurity` is read once, at start, from ``[api]``
(:meth:`ApiSecurity.from_config`): the PEM files and the token file are read then, and
a file that cannot be read, is empty or is not PEM is a :class:`SecurityError` whose
one line names the key and the file. The server takes from it:

- its credentials: TLS with ``tls_cert``/``tls_key``; mTLS (a client certificate signed
  by ``tls_client_ca`` required) when that is set; none (plaintext) otherwise;
- its interceptors: with a token, a call without metadata
  ``authorization: Bearer <token>`` is refused UNAUTHENTICATED ``missing or wrong
  token`` before it reaches the servicer (compared in constant time); WatchEvents
  streams are bounded separately (:attr:`ApiSecurity.watchers`, half of
  ``max_concurrent_streams``), so idle watchers can never hold every call slot: one
  more is refused RESOURCE_EXHAUSTED ``too many watchers (limit N)``;
- its options: ``max_message_bytes`` each way (a larger request is refused
  RESOURCE_EXHAUSTED by gRPC before it is read), ``max_concurrent_streams`` per
  connection and in total (``maximum_concurrent_rpcs``: one call more is refused
  RESOURCE_EXHAUSTED).

The client's side (:func:`read_pem`, :func:`read_token`) reads the same kinds of files
for ``trafex-ctl`` and the sensor's sender.
"""

from __future__ import annotations

import hmac
import ipaddress
import stat
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
import structlog

from trafex.api.rpc import MAX_MESSAGE
from trafex.config import split_host_port
from trafex.control.config import ApiConfig
from trafex.model.errors import TrafexError

__all__ = [
    "AUTHORIZATION",
    "WATCH_METHOD",
    "ApiSecurity",
    "SecurityError",
    "bearer",
    "channel_credentials",
    "loopback_target",
    "read_pem",
    "read_token",
]

log = structlog.get_logger("trafex.api")

AUTHORIZATION = "authorization"  # the metadata key of the bearer token
WATCH_METHOD = "/trafex.v1.Trafex/WatchEvents"
WRONG_TOKEN = "missing or wrong token"
DEFAULT_STREAMS = ApiConfig.max_concurrent_streams


class SecurityError(TrafexError):
    """A key, certificate or token file cannot be used; the message names it."""


def bearer(token: str) -> str:
    """The value of the ``authorization`` metadata that carries ``token``."""
    return f"Bearer {token}"


def _read(path: Path, name: str) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as error:
        raise SecurityError(f"{name} {path}: cannot read: {error.strerror or error}") from None
    if not data.strip():
        raise SecurityError(f"{name} {path}: is empty")
    return data


def read_pem(path: Path, name: str, *, key: bool = False) -> bytes:
    """The PEM file at ``path``: certificates (a chain, a CA bundle), or with ``key`` a
    private key. ``name`` (``api.tls_cert``, ``--tls-ca``) starts the message of a
    :class:`SecurityError`."""
    data = _read(path, name)
    if key and b"PRIVATE KEY-----" not in data:
        raise SecurityError(f"{name} {path}: no PEM private key in it")
    if not key and b"-----BEGIN CERTIFICATE-----" not in data:
        raise SecurityError(f"{name} {path}: no PEM certificate in it")
    return data


def read_token(path: Path, name: str) -> str:
    """The token in the file at ``path``, surrounding whitespace removed."""
    data = _read(path, name)
    try:
        token = data.decode().strip()
    except UnicodeDecodeError:
        raise SecurityError(f"{name} {path}: not text") from None
    if any(c.isspace() or not c.isprintable() for c in token):
        raise SecurityError(f"{name} {path}: the token has spaces or control characters")
    return token


def _warn_if_shared(path: Path, name: str) -> None:
    """Log ``api.token_file_readable`` when others than the owner may read the token."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning("api.token_file_readable", key=name, path=str(path), mode=oct(mode & 0o777))


def loopback_target(target: str) -> bool:
    """Whether a ``HOST:PORT`` target is this host's loopback (``localhost`` is)."""
    try:
        host, _ = split_host_port(target)
    except ValueError:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def channel_credentials(
    target: str,
    *,
    tls_ca: bytes | None = None,
    token: str | None = None,
    client_cert: bytes | None = None,
    client_key: bytes | None = None,
) -> grpc.ChannelCredentials | None:
    """A client's credentials for ``target``; None: plaintext, no token.

    TLS when a CA (PEM; the server's certificate must be signed by it) or a client
    certificate (mTLS; with its key) is given. A token rides every call as
    ``authorization: Bearer <token>`` (gRPC's access-token call credentials): over
    TLS, or in plaintext to a loopback target only (gRPC's local credentials, which
    connect to loopback addresses only); a token for any other target without TLS is a
    :class:`SecurityError`: it would cross the network in the clear.
    """
    if (client_cert is None) != (client_key is None):
        raise SecurityError("a client certificate and its key go together")
    if tls_ca is not None or client_cert is not None:
        channel = grpc.ssl_channel_credentials(tls_ca, client_key, client_cert)
    elif token is None:
        return None
    elif loopback_target(target):
        channel = grpc.local_channel_credentials(grpc.LocalConnectionType.LOCAL_TCP)
    else:
        raise SecurityError(
            f"{target} is not loopback: a token is only sent over TLS (give the CA)"
        )
    if token is None:
        return channel
    return grpc.composite_channel_credentials(channel, grpc.access_token_call_credentials(token))


# -- interceptors -----------------------------------------------------------------------

Behaviour = Callable[[Any, grpc.ServicerContext], Any]
if TYPE_CHECKING:  # generic only in grpc-stubs
    Handler = grpc.RpcMethodHandler[Any, Any]
    Interceptor = grpc.ServerInterceptor[Any, Any]
else:
    Handler = grpc.RpcMethodHandler
    Interceptor = grpc.ServerInterceptor


def _refusing(handler: Handler, code: grpc.StatusCode, message: str) -> Handler:
    """A handler of ``handler``'s kind that refuses every call (its request unread)."""

    def refuse(request: Any, context: grpc.ServicerContext) -> Any:
        context.abort(code, message)

    if handler.request_streaming and handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(refuse)
    if handler.request_streaming:
        return grpc.stream_unary_rpc_method_handler(refuse)
    if handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(refuse)
    return grpc.unary_unary_rpc_method_handler(refuse)


class TokenCheck(Interceptor):
    """Refuses (UNAUTHENTICATED) every call whose ``authorization`` metadata is not
    ``Bearer <token>``; the token is compared in constant time."""

    def __init__(self, token: str) -> None:
        self._token = token.encode()

    def accepts(self, metadata: Sequence[tuple[str, str | bytes]] | None) -> bool:
        values = [v for k, v in metadata or () if k == AUTHORIZATION]
        if len(values) != 1:
            return False
        value = values[0] if isinstance(values[0], str) else values[0].decode(errors="replace")
        scheme, _, presented = value.partition(" ")
        valid = hmac.compare_digest(presented.strip().encode(), self._token)
        return scheme.lower() == "bearer" and valid

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Handler | None],
        details: grpc.HandlerCallDetails,
    ) -> Handler | None:
        handler = continuation(details)
        if handler is None or self.accepts(details.invocation_metadata):
            return handler
        log.warning("api.unauthenticated", method=details.method)
        return _refusing(handler, grpc.StatusCode.UNAUTHENTICATED, WRONG_TOKEN)


class StreamBound(Interceptor):
    """At most ``limit`` calls of ``method`` (a server-streaming RPC) at once; one more
    is refused RESOURCE_EXHAUSTED ``too many watchers (limit N)``."""

    def __init__(self, method: str, limit: int) -> None:
        self.method = method
        self.limit = limit
        self._slots = threading.BoundedSemaphore(limit)

    def _bounded(self, behaviour: Behaviour) -> Behaviour:
        def stream(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            if not self._slots.acquire(blocking=False):
                context.abort(
                    grpc.StatusCode.RESOURCE_EXHAUSTED, f"too many watchers (limit {self.limit})"
                )
            try:
                yield from behaviour(request, context)
            finally:
                self._slots.release()

        return stream

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Handler | None],
        details: grpc.HandlerCallDetails,
    ) -> Handler | None:
        handler = continuation(details)
        if handler is None or details.method != self.method or handler.unary_stream is None:
            return handler
        return grpc.unary_stream_rpc_method_handler(
            self._bounded(handler.unary_stream),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


# -- the server's side ------------------------------------------------------------------


@dataclass(frozen=True)
class ApiSecurity:
    """The API's TLS material, token and limits, as read at start. The default:
    plaintext, no token, :data:`~trafex.api.rpc.MAX_MESSAGE`, 64 calls at once."""

    certificate: bytes | None = field(default=None, repr=False)  # PEM chain
    private_key: bytes | None = field(default=None, repr=False)  # PEM
    client_ca: bytes | None = field(default=None, repr=False)  # PEM: mTLS when set
    token: str | None = field(default=None, repr=False)
    max_message_bytes: int = MAX_MESSAGE
    max_streams: int = DEFAULT_STREAMS

    @classmethod
    def from_config(cls, api: ApiConfig) -> ApiSecurity:
        """Read ``[api]``'s files now; :class:`SecurityError` names a file that cannot
        be used; a token file others may read is logged (``api.token_file_readable``).
        (Which combinations are allowed is checked when the config is loaded.)"""

        def pem(path: Path | None, name: str, key: bool = False) -> bytes | None:
            return None if path is None else read_pem(path, f"api.{name}", key=key)

        token = None
        if api.token_file is not None:
            token = read_token(api.token_file, "api.token_file")
            _warn_if_shared(api.token_file, "api.token_file")

        return cls(
            certificate=pem(api.tls_cert, "tls_cert"),
            private_key=pem(api.tls_key, "tls_key", key=True),
            client_ca=pem(api.tls_client_ca, "tls_client_ca"),
            token=token,
            max_message_bytes=api.max_message_bytes,
            max_streams=api.max_concurrent_streams,
        )

    @property
    def tls(self) -> bool:
        return self.certificate is not None and self.private_key is not None

    @property
    def watchers(self) -> int:
        """WatchEvents streams allowed at once: half the calls (at least one)."""
        return max(1, self.max_streams // 2)

    def credentials(self) -> grpc.ServerCredentials | None:
        """TLS (mTLS with a client CA) credentials; None: plaintext."""
        if self.certificate is None or self.private_key is None:
            return None
        return grpc.ssl_server_credentials(
            [(self.private_key, self.certificate)],
            root_certificates=self.client_ca,
            require_client_auth=self.client_ca is not None,
        )

    def options(self) -> list[tuple[str, Any]]:
        return [
            ("grpc.max_receive_message_length", self.max_message_bytes),
            ("grpc.max_send_message_length", self.max_message_bytes),
            ("grpc.max_concurrent_streams", self.max_streams),
        ]

    def interceptors(self) -> list[Interceptor]:
        """The token check (first: a refused call takes no watcher slot), the watchers'
        bound."""
        out: list[Interceptor] = []
        if self.token is not None:
            out.append(TokenCheck(self.token))
        out.append(StreamBound(WATCH_METHOD, self.watchers))
        return out

    def describe(self) -> str:
        """How the API is protected, for the ready line (``tls+mtls+token``)."""
        parts = ["tls" if self.tls else "plaintext"]
        if self.client_ca is not None:
            parts.append("mtls")
        if self.token is not None:
            parts.append("token")
        return "+".join(parts)
