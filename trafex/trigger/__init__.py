"""trafex's trigger policy: detections in, intents (routes, FlowSpec rules) to trafexd out.

:class:`~trafex.trigger.policy.Policy` is pure (detector → action mapping, hold-down,
global rate limit; time is a parameter); :mod:`trafex.trigger.config` reads the
``[trigger]`` table; :class:`~trafex.trigger.sender.BackgroundSender` is the I/O edge
that calls trafexd's API off the packet loop.
"""

from trafex.trigger.config import (
    DetectorPolicy,
    FlowAction,
    RouteAction,
    TriggerConfig,
    default_config,
    load_trigger_config,
    parse_trigger,
)
from trafex.trigger.intent import TriggerIntent
from trafex.trigger.mapping import intents_for
from trafex.trigger.policy import Decision, Policy, PolicyStats, TokenBucket

__all__ = [
    "Decision",
    "DetectorPolicy",
    "FlowAction",
    "Policy",
    "PolicyStats",
    "RouteAction",
    "TokenBucket",
    "TriggerConfig",
    "TriggerIntent",
    "default_config",
    "intents_for",
    "load_trigger_config",
    "parse_trigger",
]
