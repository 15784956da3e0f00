"""Exceptions raised by the sensor.

Every exception the sensor raises for a user's mistake derives from
:class:`DetectError` (a bad config is trafex's one
:class:`~trafex.config.ConfigError`), so the CLI can print one line and exit 2
without a traceback. Bad or truncated packets never raise: they are counted and skipped.
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


class BlocklistError(DetectError):
    """A blocklist file cannot be read or has an invalid line."""


class LiveCaptureError(DetectError):
    """A live interface cannot be opened (missing, no permission, bad BPF filter)."""
