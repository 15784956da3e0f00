"""The exceptions of trafex's model: narrow, and each names the bad part."""

from __future__ import annotations


class TrafexError(Exception):
    """Base of every error trafex raises on purpose."""


class ValidationError(TrafexError, ValueError):
    """An intent, a rule or a value that trafex refuses, with the part that is wrong.

    ``field`` names the offending part (``destination-port``, ``redirect``, ...) so that
    an API client can point at it; ``str(error)`` is one readable line.
    """

    def __init__(self, message: str, field: str | None = None) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}" if field else message)
