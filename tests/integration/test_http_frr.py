"""The talk's curl line against a real trafexd's ``[http]`` endpoint, read back on a
real FRR peer: ``curl --form "command=announce flow route …" http://[::1]:PORT/command``
puts the rule on FRR, and the withdraw removes it."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest
from peered import peered, skip_unless_possible
from trafexd import free_port, wait_for

from trafex.api.stubs import trafex_pb2 as pb

pytestmark = pytest.mark.integration

RULE = "source 3001:1:a::10/128 destination 3001:4:b::10/128 redirect 6:302"


def curl_form(url: str, command: str) -> dict[str, Any]:
    """``curl --form "command=…" URL``, as the talk runs it; its JSON answer."""
    out = subprocess.run(
        ["curl", "--silent", "--show-error", "--form", f"command={command}", url],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    reply: dict[str, Any] = json.loads(out.stdout)
    return reply


def _listening(port: int) -> bool | None:
    try:
        with socket.create_connection(("::1", port), timeout=1):
            return True
    except OSError:
        return None


def test_the_talks_curl_line_reaches_frr_and_withdraw_removes_it(tmp_path: Path) -> None:
    """The talk's exact curl command (multipart form) stores the redirect rule with
    origin http and FRR receives it with its source, destination and route-target; the
    same line with ``withdraw`` takes it off FRR, and FRR's daemons are still alive."""
    skip_unless_possible()
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    port = free_port()
    http = f'[http]\nlisten = "[::1]:{port}"'
    with peered(tmp_path, versions=(6,), extra=http) as (router, trafexd):
        wait_for(lambda: _listening(port), 10, "trafexd's HTTP endpoint", trafexd.logs)
        url = f"http://[::1]:{port}/command"
        added = curl_form(url, f"announce flow route {RULE}")
        assert (added["ok"], added["new"]) == (True, True), added
        (entry,) = router.wait_flowspec("ipv6", 1)
        assert (entry.source, entry.destination, entry.redirect) == (
            "3001:1:a::10/128",
            "3001:4:b::10/128",
            "6:302",
        )
        (listed,) = trafexd.stub.ListFlows(pb.ListFlowsRequest(), timeout=10)
        assert (listed.rule.meta.id, listed.rule.meta.origin) == (added["id"], "http")

        removed = curl_form(url, f"withdraw flow route {RULE}")
        assert (removed["ok"], removed["id"]) == (True, added["id"]), removed
        router.wait_flowspec("ipv6", 0)
        assert list(trafexd.stub.ListFlows(pb.ListFlowsRequest(), timeout=10)) == []
        assert all(router.alive().values())
