"""The [detect] configuration: strict keys, defaults, CLI-style overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from trafex.detect import ConfigError, SensorConfig, load_config, parse_config
from trafex.detect.detectors.retransmit import RetransmitDetector


def test_full_file_loads(tmp_path: Path) -> None:
    """A file with every table loads; other top-level tables are left to other parts."""
    bl = tmp_path / "bl.txt"
    bl.write_text("badhacks.com\n")
    path = tmp_path / "t.toml"
    path.write_text(f"""
[controller]
listen = "x"
[detect]
max_flows = 1000
idle_timeout = 30
[detect.retransmit]
threshold = 5
[detect.dns]
blocklist = "{bl}"
[detect.volumetric]
window = 5.0
[detect.volumetric.default]
pps = 1000
""")
    config = load_config(path)
    assert config.flows.max_flows == 1000
    names = [d.name for d in config.build_detectors()]
    assert sorted(names) == ["dns", "retransmit", "volumetric"]


@pytest.mark.parametrize(
    ("doc", "key"),
    [
        ({"detect": {"max_flow": 1}}, "detect.max_flow"),
        ({"detect": {"retransmit": {"threshold": 0}}}, "detect.retransmit.threshold"),
        ({"detect": {"retransmit": {"treshold": 3}}}, "detect.retransmit.treshold"),
        ({"detect": {"ttl": {}}}, "detect.ttl"),
        ({"detect": {"idle_timeout": "long"}}, "detect.idle_timeout"),
    ],
)
def test_bad_keys_are_named(doc: dict[str, object], key: str) -> None:
    """Unknown keys, wrong types and out-of-range values raise ConfigError naming the key."""
    with pytest.raises(ConfigError) as err:
        parse_config(doc)
    assert err.value.key == key


def test_no_detector_table_means_retransmit_defaults() -> None:
    """With no detector table the retransmit detector runs with threshold 3."""
    [detector] = SensorConfig().build_detectors()
    assert isinstance(detector, RetransmitDetector)
    assert detector.config.threshold == 3


def test_with_detector_overrides_one_key() -> None:
    """with_detector sets one key and keeps the others of that table."""
    config = parse_config({"detect": {"dns": {"ports": [53, 5353]}}})
    config = config.with_detector("dns", names=["x.test"])
    assert dict(config.detectors["dns"]) == {"ports": [53, 5353], "names": ["x.test"]}


def test_invalid_toml_is_a_config_error(tmp_path: Path) -> None:
    """A file that is not TOML is a ConfigError naming the file."""
    path = tmp_path / "bad.toml"
    path.write_text("[detect\n")
    with pytest.raises(ConfigError, match=r"bad\.toml"):
        load_config(path)
