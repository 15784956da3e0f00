"""Blocklists: file formats, subdomain matching, case and trailing dots, bad lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from trafex.detect.detectors.blocklist import Blocklist, parse_lines
from trafex.detect.errors import BlocklistError


def test_exact_and_subdomain_matches() -> None:
    """A name matches itself and every subdomain, not a mere suffix of a label."""
    bl = Blocklist(["badhacks.com"])
    assert bl.match("badhacks.com.") == "badhacks.com"
    assert bl.match("WWW.BadHacks.com") == "badhacks.com"
    assert bl.match("notbadhacks.com") is None
    assert bl.match("badhacks.com.evil") is None


def test_file_with_comments_and_hosts_lines(tmp_path: Path) -> None:
    """Plain names, # comments, hosts-file lines (several names) and localhost are handled."""
    path = tmp_path / "bl.txt"
    path.write_text(
        "# list\nbadhacks.com.  # the talk's\n\n0.0.0.0 a.example b.example\n"
        "127.0.0.1 localhost\n::1 ip6-localhost\nMalicious-Mail-Order.net\n"
    )
    bl = Blocklist.from_file(path)
    assert bl.names == {"badhacks.com", "a.example", "b.example", "malicious-mail-order.net"}


def test_bad_line_names_file_and_line() -> None:
    """A token that is not a domain name is an error naming the line."""
    with pytest.raises(BlocklistError, match="bl:2"):
        parse_lines(["ok.example", "bad name!"], "bl")


def test_missing_file_is_a_blocklist_error(tmp_path: Path) -> None:
    """A missing file raises BlocklistError (a DetectError), not OSError."""
    with pytest.raises(BlocklistError):
        Blocklist.from_file(tmp_path / "nope.txt")
