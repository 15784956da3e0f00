"""Unit tests for trafex.api.security: TLS, mTLS, the token and the limits of trafexd's
API, with the real server and servicer in process over a fake controller, and the real
typed client (and trafex-ctl) with throwaway certificates (tests/certs.py).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from structlog.testing import capture_logs

from tests.certs import Pki, PkiFiles, make_pki
from tests.unit.fakeapi import STATUS, FakeController
from trafex.api.client import (
    ExhaustedError,
    IntentOptions,
    TrafexClient,
    UnauthenticatedError,
    UnreachableError,
)
from trafex.api.security import ApiSecurity, SecurityError
from trafex.api.server import ApiServer
from trafex.api.servicer import TrafexServicer
from trafex.api.stubs import trafex_pb2 as pb
from trafex.api.stubs import trafex_pb2_grpc
from trafex.cli import ctl
from trafex.control.config import ApiConfig
from trafex.control.events import Event, EventBus, EventKind
from trafex.model.grammar import parse_rule

RULE = parse_rule("destination 10.0.0.1/32 protocol tcp discard")
TOKEN = "0123456789abcdef-trafex"


@pytest.fixture(scope="module")
def pki() -> Pki:
    return make_pki()


@pytest.fixture(scope="module")
def other_pki() -> Pki:
    return make_pki("another CA")


class CountingBus(EventBus):
    """An event bus that counts its subscribers (a watcher admitted: one release)."""

    def __init__(self) -> None:
        super().__init__()
        self.subscribed = threading.Semaphore(0)

    def subscribe(self) -> queue.Queue[Event | None]:
        subscriber = super().subscribe()
        self.subscribed.release()
        return subscriber


@dataclass
class Running:
    controller: FakeController
    events: CountingBus
    port: int

    @property
    def target(self) -> str:
        return f"localhost:{self.port}"


@contextmanager
def serving(security: ApiSecurity) -> Iterator[Running]:
    """The real server and servicer over a fake controller, on a free loopback port."""
    controller, events = FakeController(), CountingBus()
    servicer = TrafexServicer(controller, events, lambda: STATUS)
    server = ApiServer(servicer, "127.0.0.1:0", security=security).start()
    try:
        yield Running(controller, events, server.port)
    finally:
        events.close()
        server.stop(None)


def tls(pki: Pki, **kwargs: Any) -> ApiSecurity:
    return ApiSecurity(certificate=pki.server_cert, private_key=pki.server_key, **kwargs)


# ---------------------------------------------------------------------------------------
# TLS and mTLS


def test_tls_client_with_the_ca_adds_a_flow(pki: Pki) -> None:
    """Over TLS, a client that trusts the server's CA adds a rule: it is stored."""
    with serving(tls(pki)) as api, TrafexClient(api.target, timeout=5, tls_ca=pki.ca) as client:
        added = client.add_flow(RULE)
        assert (added.intent.rule, [c[0] for c in api.controller.changes]) == (RULE, ["add"])


def test_tls_client_with_another_ca_is_refused(pki: Pki, other_pki: Pki) -> None:
    """A client that trusts another CA does not complete the handshake: its call fails
    UNAVAILABLE and nothing is stored; a plaintext client fails the same way."""
    with serving(tls(pki)) as api:
        for client in (
            TrafexClient(api.target, timeout=5, tls_ca=other_pki.ca),
            TrafexClient(api.target, timeout=5),
        ):
            with client, pytest.raises(UnreachableError):
                client.add_flow(RULE)
        assert api.controller.changes == []


def test_mtls_needs_a_client_certificate_from_its_ca(pki: Pki, other_pki: Pki) -> None:
    """With a client CA (mTLS), a client without a certificate, or with one another CA
    signed, is refused in the handshake (nothing stored); one with a certificate from
    the client CA adds a rule."""
    with serving(tls(pki, client_ca=pki.ca)) as api:
        refused = [
            TrafexClient(api.target, timeout=5, tls_ca=pki.ca),
            TrafexClient(
                api.target,
                timeout=5,
                tls_ca=pki.ca,
                client_cert=other_pki.client_cert,
                client_key=other_pki.client_key,
            ),
        ]
        for client in refused:
            with client, pytest.raises(UnreachableError):
                client.add_flow(RULE)
        assert api.controller.changes == []
        with TrafexClient(
            api.target,
            timeout=5,
            tls_ca=pki.ca,
            client_cert=pki.client_cert,
            client_key=pki.client_key,
        ) as client:
            assert client.add_flow(RULE).created


# ---------------------------------------------------------------------------------------
# The token


@pytest.mark.parametrize("token", [None, "wrong", TOKEN + "x", TOKEN[:-1]])
def test_missing_or_wrong_token_is_unauthenticated(pki: Pki, token: str | None) -> None:
    """Without the token, or with another, every kind of call (a change, a list, a
    watch) is refused UNAUTHENTICATED "missing or wrong token"; nothing is stored."""
    with (
        serving(tls(pki, token=TOKEN)) as api,
        TrafexClient(api.target, timeout=5, tls_ca=pki.ca, token=token) as client,
    ):
        for call in (
            lambda: client.add_flow(RULE),
            client.list_flows,
            lambda: next(client.watch_events()),
        ):
            with pytest.raises(UnauthenticatedError) as info:
                call()
            assert (info.value.code, info.value.details) == (
                "UNAUTHENTICATED",
                "missing or wrong token",
            )
        assert api.controller.changes == []


def test_the_token_over_tls_and_over_loopback(pki: Pki) -> None:
    """The right token is accepted over TLS, and in plaintext to a loopback target
    (127.0.0.1, ::1 is not listened on here, localhost)."""
    with (
        serving(tls(pki, token=TOKEN)) as api,
        TrafexClient(api.target, timeout=5, tls_ca=pki.ca, token=TOKEN) as client,
    ):
        assert client.add_flow(RULE).created
    with serving(ApiSecurity(token=TOKEN)) as api:
        for target in (f"127.0.0.1:{api.port}", f"localhost:{api.port}"):
            with TrafexClient(target, timeout=5, token=TOKEN) as client:
                assert client.status() == STATUS


def test_a_bearer_scheme_in_any_case_and_raw_metadata(pki: Pki) -> None:
    """The token check reads the ``authorization`` metadata itself: ``bearer`` in any
    case is accepted; two ``authorization`` values are refused."""
    with (
        serving(ApiSecurity(token=TOKEN)) as api,
        grpc.insecure_channel(f"127.0.0.1:{api.port}") as channel,
    ):
        stub: Any = trafex_pb2_grpc.TrafexStub(channel)
        request = pb.GetStatusRequest()
        assert stub.GetStatus(request, metadata=[("authorization", f"bEaReR {TOKEN}")], timeout=5)
        with pytest.raises(grpc.RpcError) as info:
            stub.GetStatus(
                request,
                metadata=[("authorization", f"Bearer {TOKEN}"), ("authorization", "Bearer x")],
                timeout=5,
            )
        assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_a_token_is_never_sent_in_the_clear_off_loopback() -> None:
    """A token for a target that is not loopback, without TLS, is refused before any
    connection; so is a client certificate without its key."""
    with pytest.raises(SecurityError, match=r"192\.0\.2\.1:50061 is not loopback"):
        TrafexClient("192.0.2.1:50061", token=TOKEN)
    with pytest.raises(SecurityError, match="go together"):
        TrafexClient("127.0.0.1:50061", tls_ca=b"x", client_cert=b"x")


# ---------------------------------------------------------------------------------------
# Limits


def test_a_message_over_the_limit_is_resource_exhausted() -> None:
    """A request larger than max_message_bytes is refused RESOURCE_EXHAUSTED before it
    is read: nothing is stored; a small one still passes."""
    many = [
        (parse_rule(f"destination 10.0.{i // 256}.{i % 256}/32 discard"), IntentOptions())
        for i in range(200)
    ]
    with (
        serving(ApiSecurity(max_message_bytes=2048)) as api,
        TrafexClient(f"127.0.0.1:{api.port}", timeout=5) as client,
    ):
        with pytest.raises(ExhaustedError) as info:
            client.add_flows(many)
        assert info.value.code == "RESOURCE_EXHAUSTED"
        assert api.controller.changes == []
        assert client.add_flows(many[:1])[0].created


def _watch(channel: grpc.Channel) -> Any:
    stub: Any = trafex_pb2_grpc.TrafexStub(channel)
    return stub.WatchEvents(pb.WatchEventsRequest())


def _admitted(api: Running, channel: grpc.Channel) -> bool:
    """Whether a new watcher is admitted within 5 s (a cancelled one's slot is freed
    when the servicer notices the cancel, within half a second). Each try is cancelled."""
    for _ in range(25):
        watcher = _watch(channel)
        subscribed = api.events.subscribed.acquire(timeout=0.2)
        watcher.cancel()
        if subscribed:
            return True
    return False


def test_watchers_beyond_their_bound_are_refused_and_add_flow_still_works() -> None:
    """With max 4 calls, 2 watchers may stream at once; a third is refused
    RESOURCE_EXHAUSTED "too many watchers (limit 2)" while AddFlow is still served;
    when a watcher ends, its slot is free again."""
    security = ApiSecurity(max_streams=4)
    assert security.watchers == 2
    with serving(security) as api, grpc.insecure_channel(f"127.0.0.1:{api.port}") as channel:
        watchers = [_watch(channel), _watch(channel)]
        assert all(api.events.subscribed.acquire(timeout=5) for _ in watchers)
        with pytest.raises(grpc.RpcError) as info:
            next(_watch(channel))
        error: Any = info.value
        assert (error.code(), error.details()) == (
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            "too many watchers (limit 2)",
        )
        with TrafexClient(f"127.0.0.1:{api.port}", timeout=5) as client:
            assert client.add_flow(RULE).created
        api.events.publish(Event(EventKind.SIDECAR_UP, subject="gobgpd"))
        assert [next(w).event.subject for w in watchers] == ["gobgpd", "gobgpd"]
        watchers[0].cancel()
        assert _admitted(api, channel)
        watchers[1].cancel()


def test_calls_beyond_max_streams_are_resource_exhausted() -> None:
    """With max 2 calls at once, a watcher and an AddFlow held in the controller fill
    them: one call more is refused RESOURCE_EXHAUSTED; when the AddFlow is done,
    calls are served again."""
    with (
        serving(ApiSecurity(max_streams=2)) as api,
        grpc.insecure_channel(f"127.0.0.1:{api.port}") as channel,
        TrafexClient(f"127.0.0.1:{api.port}", timeout=10) as client,
    ):
        watcher = _watch(channel)
        assert api.events.subscribed.acquire(timeout=5)
        api.controller.gate = threading.Event()
        held = threading.Thread(target=client.add_flow, args=(RULE,))
        held.start()
        assert api.controller.entered.wait(5)
        with pytest.raises(ExhaustedError):
            client.status()
        api.controller.gate.set()
        held.join(10)
        assert client.status() == STATUS
        watcher.cancel()


# ---------------------------------------------------------------------------------------
# Reading [api]'s files


def test_from_config_reads_the_files(pki: Pki, tmp_path: Path) -> None:
    """ApiSecurity.from_config reads the PEM files and the token (whitespace stripped)
    once, and takes the limits from [api]."""
    files = pki.write(tmp_path)
    token_file = tmp_path / "token"
    token_file.write_text(f"  {TOKEN}\n")
    token_file.chmod(0o600)
    config = ApiConfig(
        listen="[::]:50061",
        tls_cert=files.server_cert,
        tls_key=files.server_key,
        tls_client_ca=files.ca,
        token_file=token_file,
        max_message_bytes=4096,
        max_concurrent_streams=10,
    )
    security = ApiSecurity.from_config(config)
    assert security == ApiSecurity(pki.server_cert, pki.server_key, pki.ca, TOKEN, 4096, 10)
    assert (security.describe(), security.watchers) == ("tls+mtls+token", 5)
    assert TOKEN not in repr(security)


def _files(pki: Pki, tmp_path: Path) -> tuple[PkiFiles, Path]:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    token_file.chmod(0o600)
    return pki.write(tmp_path), token_file


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ("token_missing", "api.token_file {token}: cannot read: No such file or directory"),
        ("token_empty", "api.token_file {token}: is empty"),
        ("token_spaces", "api.token_file {token}: the token has spaces or control characters"),
        ("cert_not_pem", "api.tls_cert {cert}: no PEM certificate in it"),
        ("key_is_a_cert", "api.tls_key {key}: no PEM private key in it"),
        ("key_missing", "api.tls_key {key}: cannot read: No such file or directory"),
    ],
)
def test_a_file_that_cannot_be_used_is_one_line(
    pki: Pki, tmp_path: Path, change: str, expected: str
) -> None:
    """A token or PEM file that is missing, empty or not what it should be is a
    SecurityError of one line naming the key and the file."""
    files, token = _files(pki, tmp_path)
    if change == "token_missing":
        token.unlink()
    elif change == "token_empty":
        token.write_text(" \n")
    elif change == "token_spaces":
        token.write_text("two words\n")
    elif change == "cert_not_pem":
        files.server_cert.write_text("hello\n")
    elif change == "key_is_a_cert":
        files.server_key.write_bytes(pki.server_cert)
    else:
        files.server_key.unlink()
    config = ApiConfig(tls_cert=files.server_cert, tls_key=files.server_key, token_file=token)
    with pytest.raises(SecurityError) as info:
        ApiSecurity.from_config(config)
    message = expected.format(token=token, cert=files.server_cert, key=files.server_key)
    assert str(info.value) == message


def test_a_token_file_others_can_read_is_logged(pki: Pki, tmp_path: Path) -> None:
    """A token file group- or world-readable is used, and logged as
    ``api.token_file_readable``; a private one is not."""
    _, token = _files(pki, tmp_path)
    with capture_logs() as private:
        ApiSecurity.from_config(ApiConfig(token_file=token))
    token.chmod(0o644)
    with capture_logs() as shared:
        assert ApiSecurity.from_config(ApiConfig(token_file=token)).token == TOKEN
    assert [e["event"] for e in private] == []
    assert [(e["event"], e["mode"]) for e in shared] == [("api.token_file_readable", "0o644")]


# ---------------------------------------------------------------------------------------
# trafex-ctl's options


def test_ctl_with_tls_ca_and_token_file(
    pki: Pki, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """trafex-ctl --tls-ca --token-file adds a rule; the same from TRAFEX_TLS_CA and
    TRAFEX_TOKEN_FILE; without the token it says trafexd refused the token, exit 1,
    nothing stored."""
    files, token = _files(pki, tmp_path)
    with serving(tls(pki, token=TOKEN)) as api:
        base = ["--target", api.target, "--timeout", "5"]
        auth = ["--tls-ca", str(files.ca), "--token-file", str(token)]
        assert ctl.main([*base, *auth, "add-flow", "destination 10.0.0.1/32 discard"]) == 0
        assert len(api.controller.changes) == 1
        assert ctl.main([*base, "--tls-ca", str(files.ca), "list-flows"]) == 1
        err = capsys.readouterr().err
        assert err.startswith("trafex-ctl: trafexd refused the token: missing or wrong token")
        assert "[UNAUTHENTICATED]" in err
        monkeypatch.setenv("TRAFEX_TLS_CA", str(files.ca))
        monkeypatch.setenv("TRAFEX_TOKEN_FILE", str(token))
        assert ctl.main([*base, "add-flow", "destination 10.0.0.2/32 discard"]) == 0
        assert len(api.controller.changes) == 2


def test_ctl_with_mtls(pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """trafex-ctl --tls-cert/--tls-key (or TRAFEX_TLS_CERT/TRAFEX_TLS_KEY) present a
    client certificate to an mTLS trafexd."""
    files = pki.write(tmp_path)
    with serving(tls(pki, client_ca=pki.ca)) as api:
        args = ["--target", api.target, "--timeout", "5", "--tls-ca", str(files.ca)]
        mtls = ["--tls-cert", str(files.client_cert), "--tls-key", str(files.client_key)]
        assert ctl.main([*args, *mtls, "add-flow", "destination 10.0.0.1/32 discard"]) == 0
        assert ctl.main([*args, "list-flows"]) == 1  # no client certificate: refused
        monkeypatch.setenv("TRAFEX_TLS_CERT", str(files.client_cert))
        monkeypatch.setenv("TRAFEX_TLS_KEY", str(files.client_key))
        assert ctl.main([*args, "list-flows"]) == 0


@pytest.mark.parametrize(
    ("option", "expected"),
    [
        ("--tls-ca", "trafex-ctl: --tls-ca {path}: cannot read: No such file or directory"),
        ("--token-file", "trafex-ctl: --token-file {path}: cannot read: No such file or directory"),
        ("--tls-cert", "trafex-ctl: --tls-cert {path}: cannot read: No such file or directory"),
    ],
)
def test_ctl_missing_file_is_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str, expected: str
) -> None:
    """A missing --tls-ca or --token-file is one line and exit 2; nothing is sent."""
    path = tmp_path / "nope"
    assert ctl.main(["--target", "127.0.0.1:1", option, str(path), "list-flows"]) == 2
    assert capsys.readouterr().err == expected.format(path=path) + "\n"


def test_ctl_token_off_loopback_without_tls_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A token for a target off loopback without --tls-ca is refused before sending."""
    token = tmp_path / "token"
    token.write_text(TOKEN)
    argv = ["--target", "192.0.2.1:50061", "--token-file", str(token), "list-flows"]
    assert ctl.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("trafex-ctl: 192.0.2.1:50061 is not loopback")
    assert err.count("\n") == 1
