"""trafex's intent model: FlowSpec rules and unicast routes as frozen dataclasses.

Pure Python, no I/O and no protobuf: the adapters (trafex's API servicer, the GoBGP
client) convert to and from these types at the edges.
"""

from trafex.model.errors import TrafexError, ValidationError
from trafex.model.flowspec import (
    BitmaskTerm,
    Family,
    FlowActions,
    FlowMatch,
    FlowPrefix,
    FlowRule,
    NumericTerm,
    RouteTarget,
    RouteTargetKind,
)
from trafex.model.intent import FlowIntent, IntentMeta, RouteIntent
from trafex.model.route import UnicastRoute

__all__ = [
    "BitmaskTerm",
    "Family",
    "FlowActions",
    "FlowIntent",
    "FlowMatch",
    "FlowPrefix",
    "FlowRule",
    "IntentMeta",
    "NumericTerm",
    "RouteIntent",
    "RouteTarget",
    "RouteTargetKind",
    "TrafexError",
    "UnicastRoute",
    "ValidationError",
]
