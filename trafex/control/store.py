"""Durable intents: SQLite in the state directory. The store is the truth.

GoBGP keeps injected paths in memory only; after a sidecar restart or a trafexd
restart, what is here is announced again. Rules are stored as their canonical text
(readable with the ``sqlite3`` shell), routes as JSON.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from trafex.model.errors import TrafexError, ValidationError
from trafex.model.grammar import parse_rule
from trafex.model.intent import FlowIntent, Intent, IntentMeta, RouteIntent
from trafex.model.route import UnicastRoute, format_community, route_dict, route_from_dict

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS intents (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('flow', 'route')),
    key TEXT NOT NULL UNIQUE,
    body TEXT NOT NULL,
    reason TEXT NOT NULL,
    origin TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    expires_at REAL
);
"""


class StoreError(TrafexError):
    """The state directory or its database cannot be used."""


def route_to_json(route: UnicastRoute) -> str:
    """A route as the store keeps it: the model's JSON of it (:func:`route_dict`)."""
    return json.dumps(route_dict(route), separators=(",", ":"))


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _json_kind(value: object) -> str:
    kinds = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    return kinds.get(type(value), "a number")


def route_from_json(text: str) -> UnicastRoute:
    """The inverse of :func:`route_to_json`; it also reads the rows earlier versions
    wrote (communities as integers, large communities as ``[a, b, c]``).

    A body of the wrong shape raises a ValidationError naming the bad field; text that
    is not JSON raises ValueError.
    """
    data: Any = json.loads(text)
    if not isinstance(data, dict):
        raise ValidationError(f"a route is a JSON object, not {_json_kind(data)}")
    communities = data.get("communities")
    if isinstance(communities, list) and communities and all(map(_is_int, communities)):
        data["communities"] = [format_community(c) for c in communities]
    large = data.get("large_communities")
    if isinstance(large, list) and large and all(isinstance(t, list) for t in large):
        data["large_communities"] = [":".join(map(str, t)) for t in large]
    return route_from_dict(data)


class Store:
    """Intents in SQLite (WAL). Every write is one transaction.

    Opening refuses, with a :class:`StoreError` that names the file, anything that is
    not a trafex store: a file that is not SQLite or is damaged, an empty file, a
    directory in its place, another program's database, another schema version. A
    daemon that started on an empty store instead would withdraw every rule in force.
    """

    def __init__(self, directory: Path) -> None:
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise StoreError(f"cannot open the store in {directory}: {error}") from None
        self.path = directory / "trafex.db"
        existed = self._check_file(self.path)
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        except sqlite3.Error as error:
            raise self._refused(f"cannot be opened: {error}") from None
        try:
            self._open(existed)
        except StoreError:
            self._db.close()
            raise
        except sqlite3.Error as error:
            self._db.close()
            raise self._refused(f"not a trafex store ({error})") from None

    def _refused(self, why: str) -> StoreError:
        return StoreError(f"store {self.path}: {why}")

    def _check_file(self, path: Path) -> bool:
        """Whether the database file exists; refuse one that cannot be a store."""
        try:
            info = path.stat()
        except FileNotFoundError:
            return False
        except OSError as error:
            raise self._refused(f"cannot be opened: {error.strerror}") from None
        if path.is_dir():
            raise self._refused("not a trafex store (a directory)")
        if not os.access(path, os.R_OK | os.W_OK):
            raise self._refused("cannot be opened: permission denied (it needs read and write)")
        if info.st_size == 0:
            raise self._refused("not a trafex store (an empty file; delete it to start anew)")
        return True

    def _open(self, existed: bool) -> None:
        """Check an existing store (header, pages, table, version); create a new one."""
        db = self._db
        if existed:
            check = db.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                raise self._refused(f"not a trafex store (damaged: {check})")
            table = db.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'intents'"
            ).fetchone()
            if table is None:
                raise self._refused("not a trafex store (no intents table)")
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version == 0 and not existed:
            db.executescript(_SCHEMA)
            db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        elif version != SCHEMA_VERSION:
            raise self._refused(f"schema version {version}, expected {SCHEMA_VERSION}")

    def close(self) -> None:
        self._db.close()

    def load(self) -> tuple[list[Intent], list[str]]:
        """Every stored intent, and a message for each row that no longer parses.
        Raises :class:`StoreError` when the table cannot be read at all."""
        intents: list[Intent] = []
        problems: list[str] = []
        try:
            rows = self._db.execute(
                "SELECT id, kind, body, reason, origin, created_at, updated_at, expires_at "
                "FROM intents ORDER BY created_at"
            ).fetchall()
        except sqlite3.Error as error:
            raise self._refused(f"cannot be read ({error})") from None
        for ident, kind, body, reason, origin, created, updated, expires in rows:
            meta = IntentMeta(ident, reason, origin, created, updated, expires)
            if not isinstance(body, str):
                problems.append(f"intent {ident}: the body is {type(body).__name__}, not text")
                continue
            try:
                if kind == "flow":
                    intents.append(FlowIntent(meta, parse_rule(body)))
                else:
                    intents.append(RouteIntent(meta, route_from_json(body)))
            except (ValidationError, ValueError, KeyError, TypeError) as error:
                # TypeError too: one row edited behind trafex's back must never stop
                # the other intents from loading.
                problems.append(f"intent {ident}: {error}")
        return intents, problems

    @staticmethod
    def _row(intent: Intent) -> tuple[object, ...]:
        m = intent.meta
        if isinstance(intent, FlowIntent):
            kind, body = "flow", intent.text
        else:
            kind, body = "route", route_to_json(intent.route)
        return (
            m.id,
            kind,
            intent.key,
            body,
            m.reason,
            m.origin,
            m.created_at,
            m.updated_at,
            m.expires_at,
        )

    def upsert(self, intents: Sequence[Intent]) -> None:
        if not intents:
            return
        try:
            with self._transaction():
                self._db.executemany(
                    "INSERT INTO intents (id, kind, key, body, reason, origin, created_at, "
                    "updated_at, expires_at) VALUES (?,?,?,?,?,?,?,?,?) "
                    "ON CONFLICT(id) DO UPDATE SET body=excluded.body, reason=excluded.reason, "
                    "origin=excluded.origin, updated_at=excluded.updated_at, "
                    "expires_at=excluded.expires_at",
                    [self._row(i) for i in intents],
                )
        except sqlite3.Error as error:
            raise StoreError(f"cannot write the store: {error}") from None

    def delete(self, ids: Iterable[str]) -> None:
        try:
            with self._transaction():
                self._db.executemany("DELETE FROM intents WHERE id = ?", [(i,) for i in ids])
        except sqlite3.Error as error:
            raise StoreError(f"cannot write the store: {error}") from None

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN")

    def __exit__(self, kind: object, value: object, traceback: object) -> None:
        self.db.execute("COMMIT" if kind is None else "ROLLBACK")
