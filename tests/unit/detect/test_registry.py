"""The registry: every detector is built from its table and named after it, and its
spec's trigger defaults are consistent."""

from __future__ import annotations

import pytest

from trafex.config import ConfigError, Table
from trafex.detect.detectors.registry import REGISTRY


def test_every_detector_builds_from_a_minimal_table() -> None:
    """Each spec accepts an empty table (its defaults) and builds a detector that
    reports the spec's name."""
    for name, spec in REGISTRY.items():
        detector = spec.detector(Table({}, f"detect.{name}"))
        assert detector.name == name == spec.name


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_unknown_key_names_detector_table(name: str) -> None:
    """A misspelt key in ``[detect.NAME]`` is a ConfigError naming it with its table."""
    with pytest.raises(ConfigError, match=rf"^detect\.{name}\.nope: unknown key"):
        REGISTRY[name].detector(Table({"nope": 1}, f"detect.{name}"))


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_trigger_defaults_are_within_their_choices(name: str) -> None:
    """A spec's default match components are among those its rules may take, and its
    default action applies both_directions only where the spec says it may."""
    defaults = REGISTRY[name].trigger
    assert set(defaults.match) <= defaults.match_choices
    assert defaults.action in ("route", "flowspec", "none")
    assert defaults.both_with <= {"route", "flowspec"}
    if defaults.both_directions:
        assert defaults.action in defaults.both_with
