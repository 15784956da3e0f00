"""The nft edge, against a fake ``nft``: commands, JSON reading, errors on one line.
(tests/integration/test_enforce_nft.py runs the real one.)"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from typing import Any

import pytest

from trafex.enforce import nftables
from trafex.enforce.compile import Existing


class FakeNft:
    """Answers ``nft`` command lines from a table of canned replies; records them."""

    def __init__(self, replies: dict[str, tuple[int, str, str]]) -> None:
        self.replies = replies
        self.calls: list[tuple[list[str], str | None]] = []

    def __call__(self, command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        self.calls.append((command, kwargs.get("input")))
        args = command[command.index("/usr/sbin/nft") + 1 :]
        code, out, err = self.replies.get(" ".join(args), (0, "", ""))
        return subprocess.CompletedProcess(command, code, out, err)


def listing(*items: dict[str, Any]) -> str:
    return json.dumps({"nftables": [{"metainfo": {"json_schema_version": 1}}, *items]})


TABLES = listing({"table": {"family": "inet", "name": "trafex", "handle": 1}})


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Callable[[dict[str, tuple[int, str, str]]], FakeNft]:
    monkeypatch.setattr(nftables, "_binary", lambda name: f"/usr/sbin/{name}")

    def install(replies: dict[str, tuple[int, str, str]]) -> FakeNft:
        runner = FakeNft(replies)
        monkeypatch.setattr(subprocess, "run", runner)
        return runner

    return install


def test_read_existing(fake: Callable[[dict[str, tuple[int, str, str]]], FakeNft]) -> None:
    """Chains, counters and the base chain's priority, from ``nft -j list table``."""
    table = listing(
        {"table": {"family": "inet", "name": "trafex"}},
        {
            "counter": {
                "family": "inet",
                "table": "trafex",
                "name": "fs_1",
                "packets": 3,
                "bytes": 9,
            }
        },
        {
            "chain": {
                "family": "inet",
                "table": "trafex",
                "name": "prerouting",
                "type": "filter",
                "hook": "prerouting",
                "prio": -150,
                "policy": "accept",
            }
        },
        {"chain": {"family": "inet", "table": "trafex", "name": "m_fs_1"}},
        {"rule": {"family": "inet", "table": "trafex", "chain": "m_fs_1", "expr": []}},
    )
    runner = fake(
        {"-j list tables inet": (0, TABLES, ""), "-j list table inet trafex": (0, table, "")}
    )
    assert nftables.read_existing("trafex", netns="ns1") == Existing(
        frozenset({"prerouting", "m_fs_1"}), frozenset({"fs_1"}), True, -150
    )
    assert runner.calls[0][0] == [
        "/usr/sbin/ip",
        "netns",
        "exec",
        "ns1",
        "/usr/sbin/nft",
        "-j",
        "list",
        "tables",
        "inet",
    ]


def test_read_existing_without_table(
    fake: Callable[[dict[str, tuple[int, str, str]]], FakeNft],
) -> None:
    """No table: nothing exists (and the table is not listed)."""
    runner = fake({"-j list tables inet": (0, listing(), "")})
    assert nftables.read_existing("trafex") == Existing()
    assert len(runner.calls) == 1


def test_counters(fake: Callable[[dict[str, tuple[int, str, str]]], FakeNft]) -> None:
    """(packets, bytes) per counter name; an absent table has no counters."""
    counters = listing(
        {"counter": {"family": "inet", "table": "trafex", "name": "fs_1", "packets": 3, "bytes": 9}}
    )
    fake({"-j list counters table inet trafex": (0, counters, "")})
    assert nftables.counters("trafex") == {"fs_1": (3, 9)}
    fake(
        {
            "-j list counters table inet trafex": (1, "", "Error: No such file or directory"),
            "-j list tables inet": (0, listing(), ""),
        }
    )
    assert nftables.counters("trafex") == {}


def test_apply_sends_json_and_reports_errors_on_one_line(
    fake: Callable[[dict[str, tuple[int, str, str]]], FakeNft],
) -> None:
    """The document goes to ``nft -j -f -``; a failure raises NftError with nft's
    message on one line, without the caret lines."""
    stderr = "internal:0:0-0: Error: Could not process rule: No such file or directory\n    ^^^^\n"
    runner = fake({"-j -f -": (1, "", stderr)})
    document = {"nftables": [{"add": {"table": {"family": "inet", "name": "t"}}}]}
    with pytest.raises(nftables.NftError) as raised:
        nftables.apply(document)
    assert str(raised.value) == (
        "nft -j -f - failed: internal:0:0-0: Error: Could not process rule: "
        "No such file or directory"
    )
    assert json.loads(runner.calls[0][1] or "") == document


def test_check_uses_check_mode(fake: Callable[[dict[str, tuple[int, str, str]]], FakeNft]) -> None:
    """``check`` runs ``nft -c``: the kernel validates, nothing is applied."""
    runner = fake({})
    nftables.check({"nftables": []})
    assert runner.calls[0][0][1:] == ["-c", "-j", "-f", "-"]


def test_delete_table(fake: Callable[[dict[str, tuple[int, str, str]]], FakeNft]) -> None:
    """An existing table is deleted in one transaction; an absent one is left alone."""
    runner = fake({"-j list tables inet": (0, TABLES, "")})
    nftables.delete_table("trafex")
    assert json.loads(runner.calls[1][1] or "")["nftables"][1] == {
        "delete": {"table": {"family": "inet", "name": "trafex"}}
    }
    runner = fake({"-j list tables inet": (0, listing(), "")})
    nftables.delete_table("trafex")
    assert len(runner.calls) == 1


def test_answer_that_is_not_json(
    fake: Callable[[dict[str, tuple[int, str, str]]], FakeNft],
) -> None:
    """Output that is not nft's JSON is an NftError, not a traceback from json."""
    fake({"-j list tables inet": (0, "table inet trafex {", "")})
    with pytest.raises(nftables.NftError, match="not its JSON"):
        nftables.read_existing("trafex")


def test_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    """An nft that hangs is an NftError after the timeout."""
    monkeypatch.setattr(nftables, "_binary", lambda name: f"/usr/sbin/{name}")

    def hang(command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        raise subprocess.TimeoutExpired(command, 30)

    monkeypatch.setattr(subprocess, "run", hang)
    with pytest.raises(nftables.NftError, match="no answer within 30 s"):
        nftables.counters("trafex")
