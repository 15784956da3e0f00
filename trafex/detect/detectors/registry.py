"""The detectors trafex knows, by name: adding a detector is one module plus its line here.

Each entry is the module's :class:`~trafex.detect.detectors.spec.DetectorSpec`, which
states the detector's config, defaults and trigger mapping next to the detector.
"""

from __future__ import annotations

from trafex.detect.detectors import dns, retransmit, volumetric
from trafex.detect.detectors.spec import DetectorSpec

REGISTRY: dict[str, DetectorSpec] = {
    spec.name: spec for spec in (dns.SPEC, retransmit.SPEC, volumetric.SPEC)
}
