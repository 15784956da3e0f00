"""Exceptions raised by the sensor.

Every exception the sensor raises for a user's mistake derives from
:class:`DetectError`, so the CLI can print one line and exit 2 without a
traceback. Bad or truncated packets never raise: they are counted and skipped.
"""

from __future__ import annotations


class DetectError(Exception):
    """Base class of every error the sensor reports to its caller."""


class NotACaptureError(DetectError):
    """The file is not a pcap or pcapng capture (or is cut before its first header).

    ``path`` names the file and ``reason`` says what was wrong with it.
    """

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: not a pcap or pcapng capture ({reason})")
        self.path = path
        self.reason = reason


class ConfigError(DetectError):
    """The configuration is invalid; ``key`` is the dotted name of the bad key."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"config: {key}: {message}")
        self.key = key
        self.message = message


class BlocklistError(DetectError):
    """A blocklist file cannot be read or has an invalid line."""


class LiveCaptureError(DetectError):
    """A live interface cannot be opened (missing, no permission, bad BPF filter)."""
