"""trafex's intent model: FlowSpec rules and unicast routes as frozen dataclasses.

Pure Python, no I/O and no protobuf: the adapters (trafex's API servicer, the GoBGP
client) convert to and from these types at the edges. A FlowSpec rule is built from
:mod:`~trafex.model.components` (the one component table), :mod:`~trafex.model.terms`
and :mod:`~trafex.model.actions` into :mod:`~trafex.model.flowspec`'s ``FlowRule``;
:mod:`~trafex.model.grammar` writes and reads it as text, :mod:`~trafex.model.nlri` as
NLRI bytes. :mod:`~trafex.model.route` holds unicast routes and their text and JSON,
:mod:`~trafex.model.protocols` protocol and TCP flag names, :mod:`~trafex.model.duration`
the duration parser, :mod:`~trafex.model.intent` intents and ``MAX_TTL``.
"""

from trafex.model.actions import FlowActions, RouteTarget, RouteTargetKind
from trafex.model.components import Family
from trafex.model.errors import TrafexError, ValidationError
from trafex.model.flowspec import FlowMatch, FlowPrefix, FlowRule
from trafex.model.intent import FlowIntent, IntentMeta, RouteIntent
from trafex.model.route import UnicastRoute
from trafex.model.terms import BitmaskTerm, NumericTerm

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
