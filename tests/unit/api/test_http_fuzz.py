"""Fuzzing trafex.api.http: random bodies, random commands and random bytes on the wire,
against the real endpoint over a real controller, store and fake RIB. None may get a 500
or stop the server, and the rules in force change only when the answer says ok."""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.unit.fakerib import Rig, rig
from trafex.api.http import HttpServer
from trafex.control.config import HttpConfig
from trafex.model.flowspec import FlowRule
from trafex.model.grammar import render_rule
from trafex.model.intent import FlowIntent, Intent
from trafex.model.route import UnicastRoute, route_text

FUZZ = settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MAX_BODY = 4096


class Target:
    """The endpoint and what is in force behind it."""

    def __init__(self, made: Rig, server: HttpServer) -> None:
        self.rig = made
        self.server = server

    def in_force(self) -> set[tuple[str, str, str]]:
        """Every intent as (id, key, text): an update changes its text."""
        ctl = self.rig.controller
        intents: list[Intent] = [*ctl.flows(), *ctl.routes()]
        return {
            (i.meta.id, i.key, i.text if isinstance(i, FlowIntent) else route_text(i.route))
            for i in intents
        }

    def post(self, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, object]]:
        connection = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=15)
        try:
            connection.request("POST", "/command", body, headers)
            response = connection.getresponse()
            return response.status, json.loads(response.read())
        finally:
            connection.close()

    def check(self, body: bytes, headers: dict[str, str]) -> None:
        """Post; the answer is JSON without a 5xx, and nothing changed unless ok."""
        before = self.in_force()
        status, reply = self.post(body, headers)
        event(f"status {status}")  # shown by pytest --hypothesis-show-statistics
        assert status < 500, reply
        assert isinstance(reply.get("ok"), bool)
        assert (status == 200) == reply["ok"], (status, reply)
        if not reply["ok"]:
            assert self.in_force() == before, reply


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    directory: Path = tmp_path_factory.mktemp("http-fuzz")
    with rig(directory / "state") as made:
        server = HttpServer(
            made.controller, HttpConfig(max_body_bytes=MAX_BODY), address=("127.0.0.1", 0)
        ).start()
        try:
            yield Target(made, server)
        finally:
            server.stop()


CONTENT_TYPES = st.sampled_from(
    [
        None,
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=XyZ",
        "multipart/form-data",
        'multipart/form-data; boundary="a b"',
        "text/plain",
        "multipart/form-data; boundary=XyZ; charset=utf-16",
    ]
)
PART = st.builds(
    lambda name, value, extra: (
        f'--XyZ\r\nContent-Disposition: form-data; name="{name}"\r\n{extra}\r\n'.encode()
        + value
        + b"\r\n"
    ),
    st.sampled_from(["command", "c", "command\x00", ""]),
    st.binary(max_size=200),
    st.sampled_from(
        ["", "Content-Transfer-Encoding: base64\r\n", "Content-Type: text/plain; charset=x\r\n"]
    ),
)
MULTIPART_BODIES = st.builds(
    lambda parts, end: b"".join(parts) + end,
    st.lists(PART, max_size=3),
    st.sampled_from([b"--XyZ--\r\n", b"", b"--XyZ", b"--XyZ--"]),
)


@FUZZ
@given(CONTENT_TYPES, st.one_of(st.binary(max_size=MAX_BODY), MULTIPART_BODIES))
def test_random_bodies(target: Target, content_type: str | None, body: bytes) -> None:
    """Random bytes and broken multipart bodies under each content type."""
    headers = {} if content_type is None else {"Content-Type": content_type}
    target.check(body, headers)


WORDS = st.sampled_from(
    [
        "announce", "withdraw", "route", "flow", "next-hop", "self", "community",
        "large-community", "local-preference", "med", "[", "]", "{", "}", ";", "match",
        "then", "192.0.2.1/32", "10.0.0.0/8", "3001:4:b::10/128", "::/0", "0.0.0.0/0",
        "192.0.2.1", "3001::1", "65000:666", "65010:1:2", "no-export", "5", "4294967296",
        "-1", "destination", "source", "protocol", "=tcp", "udp", "port", ">=1024&<=2048",
        "tcp-flags", "=S&!A", "fragment", "is-fragment", "discard", "rate-limit", "0",
        "9600", "redirect", "6:302", "mark", "46", "action", "sample", "as-path", "\n",
    ]
)  # fmt: skip
# Well-formed commands (random valid rules and routes, both verbs): the ok answers.
VALID = st.one_of(
    st.builds(
        lambda verb, route: f"{verb} route {route_text(route)}",
        st.sampled_from(["announce", "withdraw"]),
        st.from_type(UnicastRoute),
    ),
    st.builds(
        lambda verb, rule: f"{verb} flow route {render_rule(rule)}",
        st.sampled_from(["announce", "withdraw"]),
        st.from_type(FlowRule),
    ),
)
COMMANDS = st.one_of(
    VALID,
    st.text(max_size=300),
    st.builds(
        lambda verb, kind, words: " ".join([verb, kind, *words]),
        st.sampled_from(["announce", "withdraw", "neighbor", ""]),
        st.sampled_from(["route", "flow route", "flow", ""]),
        st.lists(WORDS, max_size=12),
    ),
)


@FUZZ
@given(COMMANDS, st.booleans())
def test_random_commands(target: Target, command: str, multipart: bool) -> None:
    """Random text and soups of the grammar's words, as either form."""
    if multipart:
        body = (
            '--XyZ\r\nContent-Disposition: form-data; name="command"\r\n\r\n'
            f"{command}\r\n--XyZ--\r\n"
        ).encode()
        target.check(body, {"Content-Type": "multipart/form-data; boundary=XyZ"})
    else:
        target.check(urlencode({"command": command}).encode(), {})


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=600))
def test_random_bytes_on_the_wire(target: Target, data: bytes) -> None:
    """Whatever bytes a client sends (then closes its side), the server answers with
    JSON or closes, changes nothing, and serves the next request."""
    before = target.in_force()
    with socket.create_connection(("127.0.0.1", target.server.port), timeout=15) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    if answer:
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 "), answer[:80]
        assert int(head.split()[1]) < 500 or int(head.split()[1]) == 501, head
        assert json.loads(body)["ok"] is False
    assert target.in_force() == before
    status, _ = target.post(b"command=", {})
    assert status == 400  # still serving
