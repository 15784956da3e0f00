"""trafex sensor: read packets, track flows, flag the ones that matter.

Entry points: :class:`~trafex.detect.sensor.Sensor` (``run(source, on_detection)``),
:class:`~trafex.detect.pcapfile.CaptureFile` and
:class:`~trafex.detect.live.LiveInterface` (sources),
:class:`~trafex.detect.detection.Detection` (what comes out) and the
:class:`~trafex.detect.detector.Detector` protocol (the plug-in point).
"""

from trafex.detect.config import SensorConfig, load_config, parse_config
from trafex.detect.detection import Detection, FlowDirection
from trafex.detect.detector import Detector, DetectorBase, Interests
from trafex.detect.errors import (
    BlocklistError,
    ConfigError,
    DetectError,
    LiveCaptureError,
    NotACaptureError,
)
from trafex.detect.pcapfile import CaptureFile
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
    "load_config",
    "parse_config",
]
