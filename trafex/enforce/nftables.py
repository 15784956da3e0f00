"""The enforcer's nftables edge: the only module that runs ``nft``.

Everything goes through ``nft -j`` (JSON in, JSON out; nft's text output is for
people and is never parsed here). Each function takes ``netns``: when given, nft runs
as ``ip netns exec NETNS nft …``, so tests and the lab act inside a network namespace.
Failures raise :class:`NftError` with nft's own message on one line.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import Any

from trafex.enforce.compile import BASE_CHAIN, FAMILY, Existing
from trafex.model.errors import TrafexError

TIMEOUT = 30.0


class NftError(TrafexError):
    """``nft`` failed, timed out, is missing, or answered something that is not JSON."""


def _binary(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if found is None:
        raise NftError(f"{name} is not installed")
    return found


def _run(args: list[str], netns: str | None, stdin: str | None = None) -> str:
    """Run ``nft ARGS`` (in ``netns``) and return its stdout."""
    command = [_binary("nft"), *args]
    if netns is not None:
        command = [_binary("ip"), "netns", "exec", netns, *command]
    try:
        done = subprocess.run(
            command,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise NftError(f"{' '.join(args)}: nft gave no answer within {TIMEOUT:.0f} s") from None
    if done.returncode != 0:
        raise NftError(f"nft {' '.join(args)} failed: {_one_line(done.stderr or done.stdout)}")
    return done.stdout


def _one_line(text: str) -> str:
    """nft's error text without the caret lines that point into the input."""
    lines = [line.strip() for line in text.splitlines()]
    return " | ".join(line for line in lines if line and set(line) - {"^", "~", " "})


def _objects(output: str) -> list[dict[str, Any]]:
    try:
        items = json.loads(output)["nftables"]
    except (ValueError, KeyError, TypeError) as error:
        raise NftError(f"nft answered something that is not its JSON: {error}") from None
    return [item for item in items if isinstance(item, dict)]


def _table_exists(table: str, netns: str | None) -> bool:
    found = _objects(_run(["-j", "list", "tables", FAMILY], netns))
    return any(item.get("table", {}).get("name") == table for item in found)


def read_existing(table: str, netns: str | None = None) -> Existing:
    """The chains, counters and base chain priority of ``inet table`` (empty if absent)."""
    if not _table_exists(table, netns):
        return Existing()
    chains: set[str] = set()
    counters: set[str] = set()
    priority: int | None = None
    for item in _objects(_run(["-j", "list", "table", FAMILY, table], netns)):
        if "chain" in item:
            chain = item["chain"]
            chains.add(chain["name"])
            if (
                chain["name"] == BASE_CHAIN
                and chain.get("hook") == "prerouting"
                and chain.get("type") == "filter"
            ):
                priority = int(chain["prio"])
        elif "counter" in item:
            counters.add(item["counter"]["name"])
    return Existing(frozenset(chains), frozenset(counters), True, priority)


def apply(document: dict[str, Any], netns: str | None = None) -> None:
    """Run one transaction (``nft -j -f -``): all of it is applied, or none."""
    _run(["-j", "-f", "-"], netns, json.dumps(document))


def check(document: dict[str, Any], netns: str | None = None) -> None:
    """Have the kernel validate a transaction without applying it (``nft -c``)."""
    _run(["-c", "-j", "-f", "-"], netns, json.dumps(document))


def counters(table: str, netns: str | None = None) -> dict[str, tuple[int, int]]:
    """(packets, bytes) of each named counter in ``inet table``; {} if there is no table."""
    try:
        output = _run(["-j", "list", "counters", "table", FAMILY, table], netns)
    except NftError:
        if not _table_exists(table, netns):
            return {}
        raise
    out: dict[str, tuple[int, int]] = {}
    for item in _objects(output):
        if "counter" in item:
            counter = item["counter"]
            out[counter["name"]] = (int(counter["packets"]), int(counter["bytes"]))
    return out


def delete_table(table: str, netns: str | None = None) -> None:
    """Remove ``inet table`` and everything in it; nothing to do if it is absent."""
    if _table_exists(table, netns):
        delete = {"delete": {"table": {"family": FAMILY, "name": table}}}
        apply({"nftables": [{"metainfo": {"json_schema_version": 1}}, delete]}, netns)
