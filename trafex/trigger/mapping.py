"""Detection → intents, per detector and configured action. Pure: no state, no I/O.

Each detector says what its detections aim at (its spec's ``targets``, next to the
detector in :mod:`trafex.detect.detectors`): addresses for host routes, matches for
FlowSpec rules, each with its reason. This module adds the policy's side: a
:class:`~trafex.model.route.UnicastRoute` per address with the route action's
next-hop and communities, or a :class:`~trafex.model.flowspec.FlowRule` per match
with the flow action's actions, and the TTL and origin.

Evidence that cannot make a valid intent raises :class:`ValueError` (the model's
:class:`~trafex.model.errors.ValidationError` is one); the policy counts it and goes on.
"""

from __future__ import annotations

import ipaddress

from trafex.detect.detection import Detection
from trafex.detect.detectors.registry import REGISTRY
from trafex.detect.detectors.spec import Aim, Target
from trafex.model.flowspec import FlowMatch, FlowRule
from trafex.model.route import UnicastRoute
from trafex.trigger.config import DetectorPolicy
from trafex.trigger.intent import TriggerIntent


def intents_for(detection: Detection, policy: DetectorPolicy) -> list[TriggerIntent]:
    """The intents ``policy`` makes of ``detection`` (before hold-down and rate limit)."""
    spec = REGISTRY.get(detection.detector)
    if policy.action == "none" or spec is None:
        return []
    route = policy.action == "route"
    match = policy.flow.match if policy.flow is not None else frozenset()
    aim = Aim(route=route, match=match, both=policy.both_directions)
    return [_intent(target, policy) for target in spec.targets(detection, aim)]


def _intent(target: Target, policy: DetectorPolicy) -> TriggerIntent:
    subject = target.subject
    item: FlowRule | UnicastRoute
    if isinstance(subject, FlowMatch):
        assert policy.flow is not None
        item = FlowRule(subject, policy.flow.actions)
    else:
        action = policy.route
        assert action is not None
        item = UnicastRoute(
            prefix=ipaddress.ip_network(subject),
            next_hop=action.next_hop_for(subject.version),
            communities=action.communities,
            large_communities=action.large_communities,
            local_preference=action.local_preference,
            med=action.med,
        )
    return TriggerIntent(item, policy.ttl, target.reason, policy.detector)
