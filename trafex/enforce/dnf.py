"""Disjunctive normal forms of nftables match expressions, and numeric value sets.

A compiled match is a list of *branches*; a branch is a tuple of nft JSON match
expressions that must all hold (one nft rule); the match holds when any branch does.
``[]`` never matches, ``[()]`` always does.

A numeric FlowSpec component is evaluated, not translated term by term: the values its
operator list accepts (as :func:`trafex.model.flowspec.evaluate` reads it: OR of
AND-chains, ``!=`` as lt|gt, the value-independent ``true``/``false``) are computed as
a union of intervals over the field's domain and written as one comparison, range or
anonymous set (``th dport { 22, 80-90 }``, ``th dport != 80``). No value the terms
reject can be in it, and no value they accept can be missing.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from typing import Any

from trafex.model.flowspec import NumericTerm

Expr = dict[str, Any]
Branch = tuple[Expr, ...]
Dnf = list[Branch]
Intervals = tuple[tuple[int, int], ...]

TRUE: Dnf = [()]
FALSE: Dnf = []


def conjunction(parts: Iterable[Dnf]) -> Dnf:
    """AND of DNFs: every combination of one branch from each."""
    return [tuple(itertools.chain.from_iterable(combo)) for combo in itertools.product(*parts)]


def disjunction(parts: Iterable[Dnf]) -> Dnf:
    """OR of DNFs, without repeating a branch."""
    out: Dnf = []
    for part in parts:
        out.extend(branch for branch in part if branch not in out)
    return out


# ---------------------------------------------------------------------------------------
# nft JSON building blocks


def meta(key: str) -> Expr:
    return {"meta": {"key": key}}


def payload(protocol: str, field: str) -> Expr:
    return {"payload": {"protocol": protocol, "field": field}}


def raw(base: str, offset: int, length: int) -> Expr:
    return {"payload": {"base": base, "offset": offset, "len": length}}


def exthdr(name: str, field: str | None = None) -> Expr:
    return {"exthdr": {"name": name} if field is None else {"name": name, "field": field}}


def masked(left: Expr, mask: int) -> Expr:
    return {"&": [left, mask]}


def cond(op: str, left: Expr, right: Any) -> Expr:
    """One nft ``match`` expression: ``left op right``."""
    return {"match": {"op": op, "left": left, "right": right}}


# ---------------------------------------------------------------------------------------
# Numeric components: terms -> accepted values -> one test


def _normalize(spans: Iterable[tuple[int, int]]) -> Intervals:
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(s for s in spans if s[0] <= s[1]):
        if out and lo <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return tuple(out)


def intersect(a: Intervals, b: Intervals) -> Intervals:
    return _normalize((max(lo1, lo2), min(hi1, hi2)) for (lo1, hi1) in a for (lo2, hi2) in b)


def _term_values(term: NumericTerm, lo: int, hi: int) -> Intervals:
    spans = []
    if term.lt:
        spans.append((lo, min(hi, term.value - 1)))
    if term.gt:
        spans.append((max(lo, term.value + 1), hi))
    if term.eq and lo <= term.value <= hi:
        spans.append((term.value, term.value))
    return _normalize(spans)


def accepted_values(terms: Sequence[NumericTerm], lo: int, hi: int) -> Intervals:
    """The values in [lo, hi] that the operator list accepts, as :func:`evaluate` reads
    it: AND-chains (a term with ``and_`` joins the chain before it), ORed."""
    chains: list[Intervals] = []
    for term in terms:
        values = _term_values(term, lo, hi)
        if term.and_ and chains:
            chains[-1] = intersect(chains[-1], values)
        else:
            chains.append(values)
    return _normalize(itertools.chain.from_iterable(chains))


def _complement(values: Intervals, lo: int, hi: int) -> Intervals:
    spans, start = [], lo
    for a, b in values:
        spans.append((start, a - 1))
        start = b + 1
    spans.append((start, hi))
    return _normalize(spans)


def _element(span: tuple[int, int], shift: int) -> Any:
    lo, hi = span[0] - shift, span[1] - shift
    return lo if lo == hi else {"range": [lo, hi]}


def _values_test(left: Expr, values: Intervals, lo: int, hi: int, shift: int) -> Expr:
    """One test of ``left`` (field value + ``shift`` = component value) against a
    non-empty set of values: ==, <=, >=, a range, != or an anonymous set."""
    if len(values) == 1:
        (a, b) = values[0]
        if a != b and a == lo and b != hi:
            return cond("<=", left, b - shift)
        if a != b and b == hi and a != lo:
            return cond(">=", left, a - shift)
        return cond("==", left, _element(values[0], shift))
    others = _complement(values, lo, hi)
    if len(others) < len(values):
        right = _element(others[0], shift) if len(others) == 1 else _set(others, shift)
        return cond("!=", left, right)
    return cond("==", left, _set(values, shift))


def _set(values: Intervals, shift: int) -> dict[str, list[Any]]:
    return {"set": [_element(span, shift) for span in values]}


def values_dnf(
    left: Expr, values: Intervals, lo: int, hi: int, *, shift: int = 0, load: bool = False
) -> Dnf:
    """A field test for ``values`` ⊆ [lo, hi]. ``load``: keep a test when every value is
    accepted, so that packets without the field (no transport header) do not match."""
    if not values:
        return FALSE
    if values == ((lo, hi),) and not load:
        return TRUE
    return [(_values_test(left, values, lo, hi, shift),)]
