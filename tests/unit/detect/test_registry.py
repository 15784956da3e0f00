"""The registry: every detector is built from its table and named after it."""

from __future__ import annotations

from trafex.detect.detectors.registry import REGISTRY


def test_every_detector_builds_from_a_minimal_table() -> None:
    """Each factory accepts an empty table (its defaults) and reports its own name."""
    for name, factory in REGISTRY.items():
        detector = factory({})
        assert detector.name == name
