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

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trafex.config import Table, read_toml
from trafex.detect.detectors.base import Detector
from trafex.detect.detectors.registry import REGISTRY
from trafex.detect.flows.table import FlowTableConfig

DetectorTable = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class SensorConfig:
    """The flow table's bounds and each enabled detector's table (as TOML gives it,
    checked by :func:`parse_config`; each detector reads its own with
    :attr:`DetectorSpec.read <trafex.detect.detectors.spec.DetectorSpec.read>`)."""

    flows: FlowTableConfig = field(default_factory=FlowTableConfig)
    detectors: Mapping[str, DetectorTable] = field(default_factory=dict)

    def with_detector(self, name: str, **values: object) -> SensorConfig:
        """A copy with detector ``name`` enabled and ``values`` set in its table."""
        tables = dict(self.detectors)
        table = dict(tables.get(name, {}))
        table.update(values)
        tables[name] = table
        return SensorConfig(self.flows, tables)

    def build_detectors(self) -> list[Detector]:
        """One detector per enabled table (read strictly: a ConfigError names the key),
        or the retransmit detector with its defaults when none is."""
        tables = self.detectors or {"retransmit": {}}
        return [
            REGISTRY[name].detector(Table(table, f"detect.{name}"))
            for name, table in tables.items()
        ]


def parse_config(doc: Mapping[str, object]) -> SensorConfig:
    """The ``[detect]`` table of a parsed TOML document; raises
    :class:`~trafex.config.ConfigError` naming the key."""
    detect = Table(doc.get("detect", {}), "detect")
    tables = {name: detect.table(name).data for name in REGISTRY if name in detect}
    config = SensorConfig(detect.read(FlowTableConfig), tables)
    config.build_detectors()  # check every detector table now
    return config


def load_config(path: str | Path) -> SensorConfig:
    """Read and check the ``[detect]`` table of a TOML file."""
    return parse_config(read_toml(Path(path)))
