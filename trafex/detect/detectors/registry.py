"""Detector names to factories: adding a detector is one module plus one line here."""

from __future__ import annotations

from collections.abc import Callable

from trafex.detect.confkeys import Table
from trafex.detect.detectors import dns, retransmit, volumetric
from trafex.detect.detectors.base import Detector

Factory = Callable[[Table], Detector]

REGISTRY: dict[str, Factory] = {
    dns.NAME: dns.from_config,
    retransmit.NAME: retransmit.from_config,
    volumetric.NAME: volumetric.from_config,
}
