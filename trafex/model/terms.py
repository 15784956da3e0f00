"""The operator/value terms of FlowSpec's numeric and bitmask components
(RFC 8955 §4.2.1): their operator bits, their evaluation, and the rewriting of a
numeric ``!=`` as ``<`` OR ``>``."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass, replace

from trafex.model.errors import ValidationError

# Operator byte bits (RFC 8955 §4.2.1).
OP_END = 0x80
OP_AND = 0x40
OP_LEN_MASK = 0x30
OP_LT = 0x04
OP_GT = 0x02
OP_EQ = 0x01
OP_NOT = 0x02
OP_MATCH = 0x01

_NUMERIC_OPS: dict[str, tuple[bool, bool, bool]] = {
    # text: (lt, gt, eq)
    "=": (False, False, True),
    "!=": (True, True, False),
    "<": (True, False, False),
    "<=": (True, False, True),
    ">": (False, True, False),
    ">=": (False, True, True),
    "true": (True, True, True),
    "false": (False, False, False),
}
_NUMERIC_TEXT = {bits: text for text, bits in _NUMERIC_OPS.items()}


@dataclass(frozen=True, slots=True)
class NumericTerm:
    """One ``{operator, value}`` pair of a numeric component.

    ``and_`` joins the term to the previous one (logical AND); otherwise the term starts
    a new OR branch. ``>=1024&<=2048`` is ``(GE 1024), (LE 2048, and_)``.
    """

    lt: bool
    gt: bool
    eq: bool
    value: int
    and_: bool = False

    @classmethod
    def of(cls, op: str, value: int = 0, *, and_: bool = False) -> NumericTerm:
        """Build from an operator's text: ``= == != < <= > >= true false``."""
        bits = _NUMERIC_OPS.get("=" if op == "==" else op)
        if bits is None:
            raise ValidationError(f"unknown numeric operator {op!r}")
        return cls(*bits, value=value, and_=and_)

    @property
    def op(self) -> str:
        return _NUMERIC_TEXT[(self.lt, self.gt, self.eq)]

    @property
    def op_bits(self) -> int:
        return (OP_LT if self.lt else 0) | (OP_GT if self.gt else 0) | (OP_EQ if self.eq else 0)

    def matches(self, value: int) -> bool:
        """Whether ``value`` satisfies this single term (RFC 8955 §4.2.1.1)."""
        return (
            (self.lt and value < self.value)
            or (self.gt and value > self.value)
            or (self.eq and value == self.value)
        )


@dataclass(frozen=True, slots=True)
class BitmaskTerm:
    """One ``{operator, value}`` pair of a bitmask component (tcp-flags, fragment).

    ``match`` set: all bits of ``value`` must be set in the packet ("=S"); unset: any of
    them ("S"). ``not_`` negates the result ("!S", "!=SA").
    """

    value: int
    match: bool = False
    not_: bool = False
    and_: bool = False

    @property
    def op_bits(self) -> int:
        return (OP_NOT if self.not_ else 0) | (OP_MATCH if self.match else 0)

    def matches(self, bits: int) -> bool:
        hit = (bits & self.value) == self.value if self.match else bool(bits & self.value)
        return hit != self.not_


Term = NumericTerm | BitmaskTerm


def term_from_op(bitmask: bool, op: int, value: int) -> Term:
    """A term from its operator byte (RFC 8955 §4.2.1; the length bits are ignored)."""
    and_ = bool(op & OP_AND)
    if bitmask:
        return BitmaskTerm(value, match=bool(op & OP_MATCH), not_=bool(op & OP_NOT), and_=and_)
    return NumericTerm(bool(op & OP_LT), bool(op & OP_GT), bool(op & OP_EQ), value, and_)


def evaluate(terms: Iterable[Term], value: int) -> bool:
    """Evaluate an operator list: AND-chains, ORed together, left to right."""
    result = False
    branch: bool | None = None
    for term in terms:
        hit = term.matches(value)
        if term.and_ and branch is not None:
            branch = branch and hit
        else:
            result = result or bool(branch)
            branch = hit
    return result or bool(branch)


MAX_NE_PER_CHAIN = 4
# The OR-branches one AND-chain may become: each != in it doubles them.
MAX_NE_BRANCHES = 1 << MAX_NE_PER_CHAIN


def is_not_equal(term: Term) -> bool:
    """A numeric ``!=`` term (lt|gt)."""
    return isinstance(term, NumericTerm) and term.lt and term.gt and not term.eq


def is_lt_gt(term: Term) -> bool:
    """A numeric term with both lt and gt set: ``!=`` (lt|gt) or ``true`` (lt|gt|eq)."""
    return isinstance(term, NumericTerm) and term.lt and term.gt


def expand_not_equal(terms: tuple[NumericTerm, ...]) -> tuple[NumericTerm, ...]:
    """Rewrite ``!=v`` as the equivalent ``<v`` OR ``>v`` and ``true:v`` as ``<v`` OR
    ``>=v``, distributed over AND-chains.

    RFC 8955 allows an operator with both lt and gt set, but FRR 8.4 answers one with an
    UPDATE error NOTIFICATION that resets the session (every rule on it is lost): ``!=``
    and ``true`` alike. The rewritten terms mean the same to every receiver. An AND-chain
    may hold :data:`MAX_NE_PER_CHAIN` such terms (it becomes :data:`MAX_NE_BRANCHES`
    branches); more are refused. The terms are not otherwise checked (``FlowMatch``
    checks them first).
    """
    if not any(is_lt_gt(t) for t in terms):
        return terms
    chains: list[list[NumericTerm]] = []
    for term in terms:
        if term.and_ and chains:
            chains[-1].append(term)
        else:
            chains.append([term])
    out: list[NumericTerm] = []
    for chain in chains:
        count = sum(1 for t in chain if is_lt_gt(t))
        if count > MAX_NE_PER_CHAIN:
            raise ValidationError(
                f"too many != (or true) terms in one AND-chain: {count}, at most "
                f"{MAX_NE_PER_CHAIN} (each doubles the branches it is written as, with < and >)"
            )
        options = [
            [
                NumericTerm(True, False, False, t.value),
                NumericTerm(False, True, t.eq, t.value),
            ]
            if is_lt_gt(t)
            else [t]
            for t in chain
        ]
        for combo in itertools.product(*options):
            out.extend(replace(t, and_=index > 0) for index, t in enumerate(combo))
    return tuple(out)
