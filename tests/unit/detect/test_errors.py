"""Narrow exceptions: all DetectErrors, each carrying what the CLI's one line needs."""

from __future__ import annotations

from trafex.detect.errors import (
    BlocklistError,
    DetectError,
    LiveCaptureError,
    NotACaptureError,
)


def test_all_derive_from_detect_error() -> None:
    """The CLI catches DetectError and prints one line for each kind."""
    for exc in (
        NotACaptureError("f.pcap", "bad magic"),
        BlocklistError("b"),
        LiveCaptureError("l"),
    ):
        assert isinstance(exc, DetectError)
    err = NotACaptureError("f.pcap", "bad magic")
    assert (err.path, err.reason) == ("f.pcap", "bad magic")
    assert str(err) == "f.pcap: not a pcap or pcapng capture (bad magic)"
