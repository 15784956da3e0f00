"""The detectors stage: the Detector protocol, the registry and the detectors.

A detector says what it wants (:class:`~trafex.detect.detectors.base.Interests`)
and the decoder calls it only for that; :mod:`~trafex.detect.detectors.registry`
maps a config table's name to the detector it builds.
"""

from trafex.detect.detectors.base import NOTHING, Detector, DetectorBase, Interests

__all__ = ["NOTHING", "Detector", "DetectorBase", "Interests"]
