"""trafex sensor: read packets, track flows, flag the ones that matter.

The pipeline flows one way, one sub-package per stage:
:mod:`~trafex.detect.capture` (pcap, pcapng, live: chunks of frames) →
:mod:`~trafex.detect.decode` (frames → flow table and detector calls) →
:mod:`~trafex.detect.flows` (TCP conversations, Wireshark's sequence analysis) →
:mod:`~trafex.detect.detectors` (the Detector protocol, the registry, the
detectors) → :class:`~trafex.detect.detection.Detection`.
:class:`~trafex.detect.sensor.Sensor` wires them (``run(source, on_detection)``).

Entry points: :class:`Sensor`, the sources :class:`CaptureFile` and
:class:`~trafex.detect.capture.live.LiveInterface`, :class:`Detection` (what comes
out) and the :class:`Detector` protocol (the plug-in point).
"""

from trafex.config import ConfigError
from trafex.detect.capture.file import CaptureFile
from trafex.detect.capture.source import Source
from trafex.detect.config import SensorConfig, load_config, parse_config
from trafex.detect.detection import Detection, FlowDirection
from trafex.detect.detectors.base import Detector, DetectorBase, Interests
from trafex.detect.errors import (
    BlocklistError,
    DetectError,
    LiveCaptureError,
    NotACaptureError,
)
from trafex.detect.sensor import Sensor, SensorStats

__all__ = [
    "BlocklistError",
    "CaptureFile",
    "ConfigError",
    "DetectError",
    "Detection",
    "Detector",
    "DetectorBase",
    "FlowDirection",
    "Interests",
    "LiveCaptureError",
    "NotACaptureError",
    "Sensor",
    "SensorConfig",
    "SensorStats",
    "Source",
    "load_config",
    "parse_config",
]
