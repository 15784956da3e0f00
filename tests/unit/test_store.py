"""Unit tests for trafex.control.store: intents in SQLite, durable across reopening."""

from __future__ import annotations

import ipaddress
import json
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trafex.control.store import Store, StoreError, route_from_json, route_to_json
from trafex.model.flowspec import FlowActions, FlowRule
from trafex.model.grammar import parse_rule
from trafex.model.intent import FlowIntent, Intent, IntentMeta, RouteIntent
from trafex.model.route import UnicastRoute

flow_v4 = FlowIntent(
    IntentMeta("fs-000000000001", "syn flood", "cli", 100.0, 100.0, 700.0),
    parse_rule("destination 10.0.0.1/32 protocol tcp tcp-flags =S rate-limit 1000"),
)
flow_v6 = FlowIntent(
    IntentMeta("fs-000000000002", "", "api", 101.0, 101.0, None),
    parse_rule("source 3001:1:a::10/128 destination 3001:4:b::/64 8 redirect 6:302"),
)
route_v6 = RouteIntent(
    IntentMeta("rt-000000000003", "blackhole", "detector", 102.0, 102.0, 160.5),
    UnicastRoute(
        ipaddress.ip_network("3001:10:66::5/128"),
        ipaddress.ip_address("3001:10::1"),
        communities=(0xFFFF029A, 65000 << 16 | 666),
        large_communities=((65000, 1, 2),),
        local_preference=200,
        med=7,
    ),
)
route_v4 = RouteIntent(
    IntentMeta("rt-000000000004", "", "cli", 103.0, 103.0, None),
    UnicastRoute(ipaddress.ip_network("192.0.2.1/32")),
)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store(tmp_path / "state")
    yield opened
    opened.close()


def query(path: Path, sql: str) -> tuple[object, ...]:
    """The first row of ``sql`` on the database file, read behind the store's back."""
    with closing(sqlite3.connect(path)) as db:
        row: tuple[object, ...] = db.execute(sql).fetchone()
    return row


def test_empty_store(store: Store) -> None:
    """A new store loads nothing and reports no problem."""
    expected: tuple[list[Intent], list[str]] = ([], [])
    assert expected == store.load()


def test_upsert_load_round_trip(store: Store) -> None:
    """Flows and routes of both families, with and without expiry, load back equal, in
    creation order."""
    store.upsert([route_v4, flow_v6, route_v6, flow_v4])
    expected: tuple[list[Intent], list[str]] = ([flow_v4, flow_v6, route_v6, route_v4], [])
    assert expected == store.load()


def test_update_in_place_keeps_one_row(store: Store) -> None:
    """Upserting an intent again (same id and key) updates its actions, reason, origin
    and times in place: still one row, the creation time kept."""
    store.upsert([flow_v4])
    new_meta = flow_v4.meta.refreshed(now=200.0, ttl=60.0, reason="again", origin="api")
    updated = FlowIntent(new_meta, FlowRule(flow_v4.rule.match, FlowActions(rate=0.0)))
    store.upsert([updated])
    expected: tuple[list[Intent], list[str]] = ([updated], [])
    assert expected == store.load()
    rows = query(store.path, "SELECT COUNT(*) FROM intents")
    expected_count = (1,)
    assert expected_count == rows


def test_another_id_for_the_same_key_is_refused(store: Store) -> None:
    """The key is unique: a second intent with the same match under another id is a
    StoreError, and the first one stays."""
    store.upsert([flow_v4])
    twin = FlowIntent(
        IntentMeta("fs-00000000000f", "", "cli", 1.0, 1.0, None),
        FlowRule(flow_v4.rule.match, FlowActions(rate=0.0)),
    )
    with pytest.raises(StoreError):
        store.upsert([twin])
    assert [flow_v4] == store.load()[0]


def test_delete(store: Store) -> None:
    """Deleted ids are gone; unknown ids are ignored; the rest stays."""
    store.upsert([flow_v4, flow_v6, route_v6])
    store.delete([flow_v4.meta.id, route_v6.meta.id, "fs-unknown"])
    assert [flow_v6] == store.load()[0]
    store.delete([])
    assert [flow_v6] == store.load()[0]


def test_upsert_nothing(store: Store) -> None:
    """Upserting an empty list writes nothing."""
    store.upsert([])
    assert not store.load()[0]


def test_reopen_from_disk(tmp_path: Path) -> None:
    """What was written is there after closing and reopening the database."""
    first = Store(tmp_path)
    first.upsert([flow_v4, route_v6])
    first.delete([route_v6.meta.id])
    first.upsert([route_v4])
    first.close()
    second = Store(tmp_path)
    try:
        expected: tuple[list[Intent], list[str]] = ([flow_v4, route_v4], [])
        assert expected == second.load()
    finally:
        second.close()


def test_rules_are_stored_as_readable_text(store: Store) -> None:
    """A rule's body is its canonical one-line text and its key column the rule's key
    (readable with the sqlite3 shell)."""
    store.upsert([flow_v4])
    row = query(store.path, "SELECT kind, key, body FROM intents")
    expected = (
        "flow",
        flow_v4.key,
        "destination 10.0.0.1/32 protocol =tcp tcp-flags =S rate-limit 1000",
    )
    assert expected == row


def insert_raw(store: Store, ident: str, kind: str, body: str) -> None:
    """Write a row behind the store's back, as a bad edit or a bug would."""
    with closing(sqlite3.connect(store.path)) as db, db:
        db.execute(
            "INSERT INTO intents VALUES (?, ?, ?, ?, '', 'cli', 1.0, 1.0, NULL)",
            (ident, kind, f"key-{ident}", body),
        )


@pytest.mark.parametrize(
    ("kind", "body"),
    [
        ("flow", "destination nowhere discard"),
        ("flow", "destination 10.0.0.1/32"),
        ("route", "not json"),
        ("route", "{}"),
        (
            "route",
            '{"prefix": "192.0.2.1/24", "next_hop": null, "communities": [], '
            '"large_communities": [], "local_preference": null, "med": null}',
        ),
        (
            "route",
            '{"prefix": "192.0.2.1/32", "next_hop": null, "communities": [], '
            '"large_communities": [[1, 2]], "local_preference": null, "med": null}',
        ),
    ],
)
def test_corrupted_row_is_reported_and_skipped(store: Store, kind: str, body: str) -> None:
    """A row that no longer parses is reported in problems (with its id) and skipped;
    the good rows still load."""
    store.upsert([flow_v4, route_v6])
    insert_raw(store, "bad-1", kind, body)
    intents, problems = store.load()
    assert [flow_v4, route_v6] == intents
    assert [problems[0]] == problems
    assert problems[0].startswith("intent bad-1: ")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("[]", "intent bad-2: a route is a JSON object, not an array"),
        ("null", "intent bad-2: a route is a JSON object, not null"),
        (
            '{"prefix": "192.0.2.1/32", "next_hop": null, "communities": 5, '
            '"large_communities": [], "local_preference": null, "med": null}',
            "intent bad-2: communities: expected a list of strings, got 5",
        ),
        (
            '{"prefix": "192.0.2.1/32", "next_hop": null, "communities": [], '
            '"large_communities": [], "local_preference": "high", "med": null}',
            "intent bad-2: local_preference: expected an integer or null, got 'high'",
        ),
        (
            '{"prefix": 5, "next_hop": null, "communities": [], '
            '"large_communities": [], "local_preference": null, "med": null}',
            "intent bad-2: prefix: expected a string, got 5",
        ),
    ],
)
def test_route_body_of_the_wrong_json_type_is_reported(
    store: Store, body: str, expected: str
) -> None:
    """A route row whose body is valid JSON of the wrong shape is a problem like any
    other corrupted row, naming the row and the bad field; a TypeError escaping load()
    would stop trafexd from loading any intent."""
    store.upsert([flow_v4])
    insert_raw(store, "bad-2", "route", body)
    intents, problems = store.load()
    assert [flow_v4] == intents
    assert [expected] == problems


def test_flow_body_that_is_not_text_is_reported(store: Store) -> None:
    """A flow row whose body is a BLOB (SQLite keeps any type in any column) is reported
    and skipped, not a TypeError out of load()."""
    store.upsert([flow_v4])
    with closing(sqlite3.connect(store.path)) as db, db:
        db.execute(
            "INSERT INTO intents VALUES ('bad-3', 'flow', 'k', ?, '', 'cli', 1.0, 1.0, NULL)",
            (b"protocol =6 discard",),
        )
    intents, problems = store.load()
    assert [flow_v4] == intents
    expected = ["intent bad-3: the body is bytes, not text"]
    assert expected == problems


def test_schema_version_mismatch(tmp_path: Path) -> None:
    """A database of another schema version is refused."""
    Store(tmp_path).close()
    with closing(sqlite3.connect(tmp_path / "trafex.db")) as db, db:
        db.execute("PRAGMA user_version=2")
    with pytest.raises(StoreError, match="schema version 2, expected 1"):
        Store(tmp_path)


def test_unusable_directory(tmp_path: Path) -> None:
    """A state directory that cannot be created is a StoreError naming it."""
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(StoreError, match="cannot open the store"):
        Store(blocker / "state")


def _refusal(directory: Path) -> str:
    with pytest.raises(StoreError) as error:
        Store(directory)
    return str(error.value)


def test_garbage_file_is_not_a_store(tmp_path: Path) -> None:
    """A file of garbage where the store was is refused, naming the file; it is left as
    it was (nothing is created over it)."""
    garbage = b"not a database at all " * 100
    (tmp_path / "trafex.db").write_bytes(garbage)
    expected = f"store {tmp_path / 'trafex.db'}: not a trafex store (file is not a database)"
    assert expected == _refusal(tmp_path)
    assert garbage == (tmp_path / "trafex.db").read_bytes()


def test_empty_file_is_not_a_store(tmp_path: Path) -> None:
    """A truncated (empty) store is refused, not taken for a new store with no intents."""
    (tmp_path / "trafex.db").write_bytes(b"")
    assert _refusal(tmp_path).endswith(
        "trafex.db: not a trafex store (an empty file; delete it to start anew)"
    )


def test_directory_in_place_of_the_file(tmp_path: Path) -> None:
    """A directory where the database file should be is refused."""
    (tmp_path / "trafex.db").mkdir()
    assert _refusal(tmp_path).endswith("trafex.db: not a trafex store (a directory)")


def test_another_programs_database_is_not_a_store(tmp_path: Path) -> None:
    """An SQLite database without trafex's table is refused and left unchanged."""
    with closing(sqlite3.connect(tmp_path / "trafex.db")) as db, db:
        db.execute("CREATE TABLE other (x INTEGER)")
    assert _refusal(tmp_path).endswith("trafex.db: not a trafex store (no intents table)")
    tables = query(tmp_path / "trafex.db", "SELECT group_concat(name) FROM sqlite_master")
    assert tables == ("other",)


def test_unreadable_file_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A store file trafexd may not read and write (chmod 000 for a non-root user;
    root passes any mode, so access() is made to say no) is refused, naming the file."""
    Store(tmp_path).close()
    monkeypatch.setattr("trafex.control.store.os.access", lambda path, mode: False)
    assert _refusal(tmp_path).endswith(
        "trafex.db: cannot be opened: permission denied (it needs read and write)"
    )


def test_damaged_pages_are_refused(tmp_path: Path) -> None:
    """A store whose header is intact but whose pages are overwritten is refused at
    opening (before any intent is loaded)."""
    store = Store(tmp_path)
    store.upsert([flow_v4, flow_v6, route_v4, route_v6])
    store.close()
    path = tmp_path / "trafex.db"
    with closing(sqlite3.connect(path)) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = bytearray(path.read_bytes())
    page = 4096
    data[page : 3 * page] = b"\xff" * (2 * page)  # the table's pages, past the header
    path.write_bytes(bytes(data))
    assert "trafex.db: not a trafex store (" in _refusal(tmp_path)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(st.from_type(UnicastRoute))
def test_route_json_round_trip(route: UnicastRoute) -> None:
    """route_from_json(route_to_json(r)) == r for random routes; and a row as earlier
    versions wrote it (communities as integers, large ones as [a, b, c]) reads the same."""
    assert route == route_from_json(route_to_json(route))
    old = {
        "prefix": str(route.prefix),
        "next_hop": str(route.next_hop) if route.next_hop else None,
        "communities": list(route.communities),
        "large_communities": [list(c) for c in route.large_communities],
        "local_preference": route.local_preference,
        "med": route.med,
    }
    assert route == route_from_json(json.dumps(old))
