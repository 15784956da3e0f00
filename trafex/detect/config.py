"""The sensor's configuration: the ``[detect]`` table of a TOML file, read strictly.

```toml
[detect]
max_flows = 1000000      # TCP conversations tracked at once
idle_timeout = 120.0     # seconds without a packet before a flow is evicted
closed_timeout = 10.0    # seconds a flow is kept after FIN both ways or RST
sweep_interval = 5.0     # seconds of packet time between eviction sweeps

[detect.retransmit]      # a detector is on when its table is present
threshold = 3
repeat_after = 60.0      # report a direction again while it retransmits; 0: once

[detect.dns]
blocklist = "/etc/trafex/blocklist.txt"

[detect.volumetric]
window = 10.0
[detect.volumetric.default]
pps = 100000
[[detect.volumetric.groups]]
name = "web"
prefixes = ["3001:4:b::/64"]
syn_pps = 5000
```

Other top-level tables of the file belong to other parts of trafex and are
ignored here; inside ``[detect]`` an unknown key is an error that names it.
With no detector table at all, the retransmit detector runs with its defaults.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from trafex.detect.confkeys import Table, check_keys, get_float, get_int
from trafex.detect.detectors.base import Detector
from trafex.detect.detectors.registry import REGISTRY
from trafex.detect.errors import ConfigError
from trafex.detect.flows.table import FlowTableConfig

_TOP_KEYS = {"max_flows", "idle_timeout", "closed_timeout", "sweep_interval"}


@dataclass(frozen=True, slots=True)
class SensorConfig:
    flows: FlowTableConfig = field(default_factory=FlowTableConfig)
    detectors: Mapping[str, Table] = field(default_factory=dict)

    def with_detector(self, name: str, **values: object) -> SensorConfig:
        """A copy with detector ``name`` enabled and ``values`` set in its table."""
        tables = dict(self.detectors)
        table = dict(tables.get(name, {}))
        table.update(values)
        tables[name] = table
        return SensorConfig(self.flows, tables)

    def build_detectors(self) -> list[Detector]:
        """One detector per enabled table (validated strictly), or the default set."""
        tables = self.detectors or {"retransmit": {}}
        return [REGISTRY[name](table) for name, table in tables.items()]


def parse_config(doc: Mapping[str, object]) -> SensorConfig:
    detect = doc.get("detect", {})
    if not isinstance(detect, Mapping):
        raise ConfigError("detect", "expected a table")
    check_keys(detect, _TOP_KEYS | set(REGISTRY), "detect")
    flows = FlowTableConfig(
        max_flows=get_int(detect, "max_flows", "detect", 1_000_000, minimum=2),
        idle_timeout=get_float(detect, "idle_timeout", "detect", 120.0),
        closed_timeout=get_float(detect, "closed_timeout", "detect", 10.0),
        sweep_interval=get_float(detect, "sweep_interval", "detect", 5.0),
    )
    tables: dict[str, Table] = {}
    for name in REGISTRY:
        if name in detect:
            table = detect[name]
            if not isinstance(table, Mapping):
                raise ConfigError(f"detect.{name}", "expected a table")
            tables[name] = table
    config = SensorConfig(flows, tables)
    config.build_detectors()  # validate every detector table now
    return config


def load_config(path: str | Path) -> SensorConfig:
    try:
        with open(path, "rb") as f:
            doc = tomllib.load(f)
    except OSError as exc:
        raise ConfigError(str(path), f"cannot read ({exc.strerror})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), f"not valid TOML ({exc})") from exc
    return parse_config(doc)
