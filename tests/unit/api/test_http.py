"""Unit tests for trafex.api.http: the ExaBGP-style ``POST /command`` endpoint, served in
process over a real controller, store and fake RIB (tests/unit/fakerib.py)."""

from __future__ import annotations

import http.client
import ipaddress
import json
import socket
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from structlog.testing import capture_logs

from tests.certs import make_pki
from tests.unit.fakerib import Rig, rig
from trafex.api.http import HttpServer
from trafex.api.server import ListenError
from trafex.control.config import HttpConfig
from trafex.control.guardrails import Guards
from trafex.model.grammar import parse_rule
from trafex.model.intent import Intent

TALK = "announce flow route source 3001:1:a::10/128 destination 3001:4:b::10/128 redirect 6:302"
TALK_WITHDRAW = (
    "withdraw flow route source 3001:1:a::10/128 destination 3001:4:b::10/128 redirect 6:302"
)
TOKEN = "s3cret-token-for-the-tests"


@dataclass
class Endpoint:
    rig: Rig
    server: HttpServer
    tls: ssl.SSLContext | None = None

    def connection(self) -> http.client.HTTPConnection:
        if self.tls is not None:
            return http.client.HTTPSConnection(
                "localhost", self.server.port, timeout=10, context=self.tls
            )
        return http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=10)

    def request(
        self,
        body: bytes,
        headers: dict[str, str] | None = None,
        *,
        method: str = "POST",
        path: str = "/command",
    ) -> tuple[int, dict[str, Any], http.client.HTTPResponse]:
        connection = self.connection()
        try:
            connection.request(method, path, body, headers or {})
            response = connection.getresponse()
            data = response.read()
        finally:
            connection.close()
        return response.status, (json.loads(data) if data else {}), response

    def post(self, command: str, **headers: str) -> tuple[int, dict[str, Any]]:
        """The command urlencoded, as ``curl --data-urlencode`` sends it."""
        body = urlencode({"command": command}).encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded", **headers}
        status, reply, _ = self.request(body, headers)
        return status, reply

    def keys(self) -> set[tuple[str, str]]:
        ctl = self.rig.controller
        intents: list[Intent] = [*ctl.flows(), *ctl.routes()]
        return {(i.meta.id, i.key) for i in intents}


BOUNDARY = "------------------------d74496d66958873e"  # as curl writes one


def multipart(fields: dict[str, str], boundary: str = BOUNDARY) -> tuple[str, bytes]:
    """A form as ``curl --form`` sends it: its Content-Type and body."""
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        for name, value in fields.items()
    ]
    body = "".join(parts) + f"--{boundary}--\r\n"
    return f"multipart/form-data; boundary={boundary}", body.encode()


@contextmanager
def endpoint(
    directory: Path, config: HttpConfig | None = None, **options: Any
) -> Iterator[Endpoint]:
    """The endpoint on a free loopback port over a controller (``options``: its own)."""
    with rig(directory / "state", **options) as made:
        server = HttpServer(made.controller, config or HttpConfig(), address=("127.0.0.1", 0))
        server.start()
        try:
            yield Endpoint(made, server)
        finally:
            server.stop()


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Endpoint]:
    with endpoint(tmp_path) as made:
        yield made


def test_the_talks_command_urlencoded_stores_and_announces(api: Endpoint) -> None:
    """The talk's rule, urlencoded: 200 with its new id; stored, and in GoBGP's RIB;
    asked again, the same id and not new."""
    status, reply = api.post(TALK)
    assert (status, reply["ok"], reply["new"], reply["verb"]) == (200, True, True, "announce")
    assert reply["id"].startswith("fs-")
    (intent,) = api.rig.controller.flows()
    assert (intent.meta.id, intent.meta.origin) == (reply["id"], "http")
    assert intent.rule == parse_rule(TALK.split("route", 1)[1])
    api.rig.controller.flush()
    assert list(api.rig.rib.paths) == [intent.key]
    status, again = api.post(TALK)
    assert (status, again["id"], again["new"]) == (200, reply["id"], False)


def test_the_talks_command_as_curl_form_sends_it(api: Endpoint) -> None:
    """multipart/form-data, as ``curl --form "command=…"`` sends it, works the same."""
    content_type, body = multipart({"other": "ignored", "command": TALK})
    status, reply, _ = api.request(body, {"Content-Type": content_type})
    assert (status, reply["ok"], reply["new"]) == (200, True, True)
    assert [i.meta.id for i in api.rig.controller.flows()] == [reply["id"]]


def test_the_talks_route_without_a_content_type(api: Endpoint) -> None:
    """The talk's sensor posts ``urlencode({"command": …})`` with HTTPConnection, which
    sends no Content-Type: read as urlencoded; next-hop self is next-hop-self."""
    body = urlencode({"command": "announce route 3001:10:66::5/128 next-hop self"}).encode()
    status, reply, _ = api.request(body)
    assert (status, reply["ok"], reply["id"][:3]) == (200, True, "rt-")
    (route,) = api.rig.controller.routes()
    assert (str(route.route.prefix), route.route.next_hop) == ("3001:10:66::5/128", None)
    assert reply["text"] == "3001:10:66::5/128 next-hop self"


def test_withdraw_removes_the_rule_and_then_finds_none(api: Endpoint) -> None:
    """A withdraw by the rule's text removes it (and its path from GoBGP), answering its
    id; a second withdraw is 404 NOT_FOUND and changes nothing."""
    _, added = api.post(TALK)
    status, reply = api.post(TALK_WITHDRAW)
    assert (status, reply["ok"], reply["verb"], reply["id"]) == (200, True, "withdraw", added["id"])
    api.rig.controller.flush()
    assert (api.rig.controller.flows(), api.rig.rib.paths) == ([], {})
    status, reply = api.post(TALK_WITHDRAW)
    assert (status, reply["ok"], reply["code"]) == (404, False, "NOT_FOUND")


def test_withdraw_route_by_prefix(api: Endpoint) -> None:
    """``withdraw route PREFIX next-hop self`` removes the route at that prefix."""
    api.post("announce route 192.0.2.7/32 next-hop self community 65000:666")
    status, reply = api.post("withdraw route 192.0.2.7/32 next-hop self")
    assert (status, reply["ok"]) == (200, True)
    assert api.rig.controller.routes() == []


def test_a_bad_command_is_400_naming_the_part_and_changes_nothing(api: Endpoint) -> None:
    """A command the parser refuses is 400 INVALID_ARGUMENT naming the bad part."""
    api.post(TALK)
    before = api.keys()
    for command, part in (
        ("announce route 192.0.2.0/24 as-path [ 65000 ]", "as-path"),
        ("announce flow route source 3001:1:a::10/129 destination x redirect 6:302", "source"),
        ("shutdown", "command"),
    ):
        status, reply = api.post(command)
        assert (status, reply["ok"], reply["code"]) == (400, False, "INVALID_ARGUMENT")
        assert reply["error"].startswith(f"{part}: ")
    assert api.keys() == before


def test_a_guard_refusal_is_409_naming_the_guard(tmp_path: Path) -> None:
    """The guards apply to HTTP as to gRPC: a discard broader than /24, or towards a
    protected prefix, is 409 FAILED_PRECONDITION naming the guard; nothing stored."""
    guards = Guards(protected=(ipaddress.ip_network("198.51.100.0/24"),))
    with endpoint(tmp_path, guards=guards) as api:
        for command, guard in (
            ("announce flow route destination 10.0.0.0/8 discard", "guard breadth"),
            ("announce flow route protocol udp discard", "guard "),
            ("announce flow route destination 198.51.100.1/32 discard", "guard protected"),
        ):
            status, reply = api.post(command)
            assert (status, reply["code"]) == (409, "FAILED_PRECONDITION"), reply
            assert reply["error"].startswith(guard)
        assert api.keys() == set()


def test_a_dry_run_stores_nothing(tmp_path: Path) -> None:
    """With ``[guard] dry_run``, the answer is ok with ``dry_run`` and nothing is stored."""
    with endpoint(tmp_path, guards=Guards(dry_run=True)) as api:
        status, reply = api.post(TALK)
        assert (status, reply["ok"], reply.get("dry_run")) == (200, True, True)
        assert api.keys() == set()


def test_stored_but_not_announced_is_503_and_says_stored(tmp_path: Path) -> None:
    """gobgpd down: the change is stored, the answer 503 UNAVAILABLE with ``stored``."""
    with endpoint(tmp_path, sidecar_up=lambda: False) as api:
        status, reply = api.post(TALK)
        assert (status, reply["code"], reply["stored"]) == (503, "UNAVAILABLE", True)
        assert reply["error"].startswith("stored, not yet announced")
        assert len(api.rig.controller.flows()) == 1


@pytest.fixture
def secured(tmp_path: Path) -> Iterator[Endpoint]:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    with endpoint(tmp_path, HttpConfig(token_file=token_file)) as made:
        yield made


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer wrong", f"Basic {TOKEN}", f"Bearer {TOKEN}x", TOKEN],
)
def test_without_the_token_401_and_nothing_stored(
    secured: Endpoint, authorization: str | None
) -> None:
    """With token_file set, a missing or wrong ``Authorization: Bearer`` is 401
    UNAUTHENTICATED with a challenge, and the command is not run."""
    headers = {} if authorization is None else {"Authorization": authorization}
    body = urlencode({"command": TALK}).encode()
    status, reply, response = secured.request(body, headers)
    assert (status, reply["code"]) == (401, "UNAUTHENTICATED")
    assert response.getheader("WWW-Authenticate", "").startswith("Bearer")
    assert secured.keys() == set()


def test_with_the_token_the_command_runs(secured: Endpoint) -> None:
    """The right token (scheme in any case) lets the command through."""
    status, reply = secured.post(TALK, Authorization=f"bearer {TOKEN}")
    assert (status, reply["ok"]) == (200, True)


def test_an_oversize_body_is_413_and_not_run(tmp_path: Path) -> None:
    """A body over max_body_bytes is 413 (read no further); nothing stored. With
    ``Expect: 100-continue`` the refusal comes before the body is sent."""
    with endpoint(tmp_path, HttpConfig(max_body_bytes=256)) as api:
        command = TALK + " " * 300
        status, reply = api.post(command)
        assert (status, reply["code"]) == (413, "RESOURCE_EXHAUSTED")
        connection = api.connection()
        connection.putrequest("POST", "/command")
        connection.putheader("Content-Length", "100000")
        connection.putheader("Expect", "100-continue")
        connection.endheaders()
        response = connection.getresponse()  # answered without the body
        assert response.status == 413
        connection.close()
        assert api.keys() == set()


def test_expect_100_continue_is_answered(api: Endpoint) -> None:
    """A client that asks ``Expect: 100-continue`` (curl, for a large body) gets
    ``100 Continue`` and then the answer to its command."""
    body = urlencode({"command": TALK}).encode()
    with socket.create_connection(("127.0.0.1", api.server.port), timeout=10) as sock:
        sock.sendall(
            b"POST /command HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
        )
        assert sock.recv(1024).startswith(b"HTTP/1.1 100 Continue\r\n")
        sock.sendall(body)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200 ")
    assert json.loads(answer.partition(b"\r\n\r\n")[2])["ok"] is True


@pytest.mark.parametrize(
    ("method", "path", "body", "headers", "status", "code"),
    [
        ("GET", "/command", b"", {}, 405, "UNIMPLEMENTED"),
        ("PUT", "/command", b"command=x", {}, 405, "UNIMPLEMENTED"),
        ("POST", "/", b"", {}, 404, "NOT_FOUND"),
        ("GET", "/metrics", b"", {}, 404, "NOT_FOUND"),
        ("BREW", "/command", b"", {}, 501, "UNIMPLEMENTED"),
        ("POST", "/command", b"{}", {"Content-Type": "application/json"}, 415, "INVALID_ARGUMENT"),
        ("POST", "/command", b"cmd=x", {}, 400, "INVALID_ARGUMENT"),
        ("POST", "/command", b"command=a&command=b", {}, 400, "INVALID_ARGUMENT"),
        ("POST", "/command", b"command=%ff", {}, 400, "INVALID_ARGUMENT"),
        (
            "POST",
            "/command",
            b"junk",
            {"Content-Type": "multipart/form-data; boundary=abc"},
            400,
            "INVALID_ARGUMENT",
        ),
    ],
)
def test_wrong_requests_get_a_json_refusal(
    api: Endpoint,
    method: str,
    path: str,
    body: bytes,
    headers: dict[str, str],
    status: int,
    code: str,
) -> None:
    """A wrong method, path, content type or form gets its HTTP status and a JSON body
    saying what is wrong; nothing is stored."""
    got, reply, response = api.request(body, headers, method=method, path=path)
    assert (got, reply["ok"], reply["code"]) == (status, False, code)
    assert response.getheader("Content-Type") == "application/json"
    if status == 405:
        assert response.getheader("Allow") == "POST"
    assert api.keys() == set()


def test_each_command_is_logged(api: Endpoint) -> None:
    """Each command is one ``http.command`` event: origin, verb, id, outcome."""
    with capture_logs() as logs:
        _, reply = api.post(TALK)
        api.post("announce route 192.0.2.0/24 as-path [ 1 ]")
    events = [e for e in logs if e["event"] == "http.command"]
    assert [(e["origin"], e["verb"], e["id"], e["outcome"]) for e in events] == [
        ("http", "announce", reply["id"], "ok"),
        ("http", None, None, "INVALID_ARGUMENT"),  # the command is logged, not parsed
    ]


def test_https_with_a_token(tmp_path: Path) -> None:
    """With tls_cert and tls_key the endpoint speaks HTTPS only: a client trusting the
    CA gets through; plain HTTP gets no answer and stores nothing."""
    files = make_pki().write(tmp_path / "pki")
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    config = HttpConfig(tls_cert=files.server_cert, tls_key=files.server_key, token_file=token_file)
    with endpoint(tmp_path, config) as api:
        plain = http.client.HTTPConnection("127.0.0.1", api.server.port, timeout=10)
        with pytest.raises((http.client.HTTPException, OSError)):
            plain.request("POST", "/command", urlencode({"command": TALK}).encode(), {})
            plain.getresponse().read()
        plain.close()
        assert api.keys() == set()
        api.tls = ssl.create_default_context(cafile=str(files.ca))
        status, reply = api.post(TALK, Authorization=f"Bearer {TOKEN}")
        assert (status, reply["ok"]) == (200, True)


@pytest.mark.parametrize(
    ("config", "words"),
    [
        ({"token_file": Path("/nonexistent/token")}, "http.token_file /nonexistent/token"),
        ({"tls_cert": Path("/nonexistent/c"), "tls_key": Path("/nonexistent/k")}, "tls_cert"),
    ],
)
def test_a_bad_token_or_certificate_file_is_one_line(
    tmp_path: Path, config: dict[str, Any], words: str
) -> None:
    """A token or certificate file that cannot be read stops the endpoint from starting
    with a ListenError naming it (trafexd prints it and exits)."""
    with rig(tmp_path / "state") as made, pytest.raises(ListenError, match=words):
        HttpServer(made.controller, HttpConfig(**config), address=("127.0.0.1", 0))


def test_a_certificate_and_a_key_that_do_not_match_are_named(tmp_path: Path) -> None:
    """Both files PEM, but the key is not the certificate's: one ListenError naming
    both files."""
    files = make_pki().write(tmp_path)
    config = HttpConfig(tls_cert=files.server_cert, tls_key=files.client_key)
    expected = f"http.tls_cert {files.server_cert} and http.tls_key {files.client_key}: "
    with rig(tmp_path / "state") as made, pytest.raises(ListenError) as raised:
        HttpServer(made.controller, config, address=("127.0.0.1", 0))
    assert str(raised.value).startswith(expected + "cannot be used together: ")
