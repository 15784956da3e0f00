"""FlowSpec rules -> one nftables JSON transaction (what ``nft -j -f -`` takes). Pure.

The enforcer owns one ``inet`` table. Its base chain ``prerouting`` (type filter, hook
prerouting, priority -150 by default: mangle, before the routing decision, so a fwmark
set here steers the route lookup) holds, in RFC 8955 §5.1 order
(:mod:`trafex.model.order`), one ``jump m_<counter>`` per rule. ``m_<counter>`` has one
nft rule per OR branch of the match (:mod:`trafex.enforce.match`), each ending in
``goto a_<counter>``; ``a_<counter>`` counts the packet in the rule's named counter and
applies the actions. ``goto`` does not return to ``m_``: when ``a_`` ends, evaluation
resumes in the base chain after the jump, so a packet that matches several branches of
one rule is counted and acted on once.

Actions (RFC 8955 §7): traffic-rate 0 (§7.1, discard) -> ``drop``; rate N bytes/s ->
``limit rate over N bytes/second drop`` (N rounded up to a whole byte, at least 1; the
bucket holds one second of traffic); traffic-marking (§7.5) -> ``ip dscp set`` /
``ip6 dscp set``; redirect to a route-target (§7.4) -> ``meta mark set`` the fwmark the
options map the target to (the policy routing per mark is the daemon's); sample (§7.3
S bit) -> ``log``. Several actions combine: counter, log, limit-drop, dscp, mark, then
the verdict.

The verdict is the traffic-action T bit (RFC 8955 §7.3, "Terminal Action"): "When this
bit is set, the traffic filtering engine will evaluate any subsequent Flow
Specifications (as defined by the ordering procedure). If not set, the evaluation of
the traffic filters stops when this Flow Specification is evaluated." So T set: no
verdict, the next rule is evaluated too (all their actions are "collected and
applied"); T unset (the default of every rule without a traffic-action community):
``accept``, which ends the enforcer's base chain; the packet is still routed normally,
which is RFC 8955 §7's default action for a matching rule.

The transaction rebuilds the table atomically and keeps the named counters of rules
that stay: it adds the table and base chain (``add`` is idempotent), flushes the base
chain and every chain the table holds, deletes the chains and counters no rule needs
any more (after the flushes, so nothing refers to them), adds the missing chains and
counters, then every rule. Counters are never re-added (on Linux 6.18 / nft 1.0.6 a
second ``add counter`` keeps the values anyway).

A rule that can match no packet (``protocol =icmp destination-port =80``) keeps a
counter (always 0) but gets no chains and no jump. A rule that cannot be expressed
exactly is refused (:attr:`RuleResult.refused`) and installs nothing: a rate above
:data:`MAX_BYTE_RATE`, a redirect to a route-target without a configured fwmark, or a
match that expands to more than ``max_branches`` nft rules. Every match component and
operator of trafex's model is expressible (:mod:`trafex.enforce.match`).
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from trafex.enforce.dnf import Dnf, Expr, cond, conjunction, meta, payload
from trafex.enforce.match import components
from trafex.model.flowspec import Family, FlowRule, RouteTarget
from trafex.model.grammar import format_rate, render_rule
from trafex.model.order import ordered

BASE_CHAIN = "prerouting"
FAMILY = "inet"
# The kernel sizes a byte limit's bucket as 10^9 ns * (rate + burst) in 64 bits and
# refuses the rule (EOVERFLOW) above this rate (about 147 Gbit/s).
MAX_BYTE_RATE = (2**64 - 1) // 10**9
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
_IFNAME = re.compile(r"^[^\s\"'/]{1,15}$")


@dataclass(frozen=True)
class CompileOptions:
    """How rules become nftables: which table, where it hooks, what redirect means."""

    table: str = "trafex"  # nftables table, family inet, owned entirely by the enforcer
    interfaces: tuple[str, ...] = ()  # ingress interfaces acted on (iifname); () = all
    priority: int = -150  # prerouting priority (mangle: before the routing decision)
    marks: Mapping[RouteTarget, int] = field(default_factory=dict)  # redirect target -> fwmark
    max_branches: int = 64  # OR branches one FlowSpec rule may expand to; beyond: refused

    def __post_init__(self) -> None:
        if not _NAME.match(self.table):
            raise ValueError(f"table: {self.table!r} is not a plain nftables name")
        for name in self.interfaces:
            if not _IFNAME.match(name):
                raise ValueError(f"interfaces: {name!r} is not an interface name")
        if not -(2**31) <= self.priority < 2**31:
            raise ValueError(f"priority: {self.priority} is out of range")
        for target, mark in self.marks.items():
            if not 0 < mark <= 0xFFFFFFFF:
                raise ValueError(f"marks: fwmark {mark} for {target} is not in 1..0xffffffff")
        if self.max_branches < 1:
            raise ValueError(f"max_branches: {self.max_branches} is below 1")


@dataclass(frozen=True)
class RuleResult:
    """What became of one rule."""

    key: str  # FlowRule.key
    text: str  # render_rule(rule)
    position: int  # 0-based place in RFC 8955 §5.1 order
    counter: str | None  # name of its nftables named counter; None when refused
    branches: int  # nft rules it compiled to (0 when refused or when it can match nothing)
    refused: str | None  # one line naming the part that cannot be expressed exactly


@dataclass(frozen=True)
class Existing:
    """What the table holds now (:func:`trafex.enforce.nftables.read_existing`)."""

    chains: frozenset[str] = frozenset()
    counters: frozenset[str] = frozenset()
    table_exists: bool = False
    # Priority of the prerouting base chain; None when the table has no such base chain.
    base_priority: int | None = None


@dataclass(frozen=True)
class Compiled:
    document: dict[str, Any]  # the nft JSON transaction
    results: tuple[RuleResult, ...]  # in §5.1 order, refused ones included


def counter_name(key: str) -> str:
    """The rule's counter (and chain) name: stable across restarts, 19 characters."""
    return "fs_" + hashlib.sha256(key.encode()).hexdigest()[:16]


class _RefusedError(Exception):
    """A part of a rule that nftables cannot express exactly."""


@dataclass(frozen=True)
class _Rule:
    result: RuleResult
    branches: Dnf
    actions: tuple[tuple[Expr, ...], ...]


def compile_rules(
    rules: Iterable[FlowRule], options: CompileOptions, existing: Existing = Existing()
) -> Compiled:
    """Compile ``rules`` (a rule given twice by key: the later one counts, as a BGP
    UPDATE replaces a path) into the transaction that makes the table hold them."""
    by_key = {rule.key: rule for rule in rules}
    compiled = [
        _compile(rule, index, options) for index, rule in enumerate(ordered(by_key.values()))
    ]
    names = [c.result.counter for c in compiled if c.result.counter is not None]
    if len(set(names)) != len(names):  # 64 bits of sha256: never seen, but never silent
        raise ValueError("two rules hash to one counter name")
    return Compiled(_transaction(compiled, options, existing), tuple(c.result for c in compiled))


def _compile(rule: FlowRule, position: int, options: CompileOptions) -> _Rule:
    text = render_rule(rule)
    name = counter_name(rule.key)
    try:
        actions = _actions(rule, name, options)
        parts = components(rule.match)
        count = math.prod(len(dnf) for _, dnf in parts)
        if count > options.max_branches:
            detail = " x ".join(f"{keyword} {len(dnf)}" for keyword, dnf in parts if len(dnf) > 1)
            raise _RefusedError(
                f"the match cannot be compiled: it expands to {count} nft rules ({detail}), "
                f"above max_branches {options.max_branches}"
            )
    except _RefusedError as refusal:
        refused = f"fs rule '{text}': {refusal}"
        return _Rule(RuleResult(rule.key, text, position, None, 0, refused), [], ())
    branches = conjunction(dnf for _, dnf in parts)
    return _Rule(RuleResult(rule.key, text, position, name, len(branches), None), branches, actions)


def _actions(rule: FlowRule, name: str, options: CompileOptions) -> tuple[tuple[Expr, ...], ...]:
    """The nft rules of the action chain, in order."""
    actions = rule.actions
    first: list[Expr] = [{"counter": name}]
    if actions.sample:
        first.append({"log": {"prefix": f"trafex {name} "}})
    if actions.discard:
        return ((*first, {"drop": None}),)
    out = [tuple(first)]
    if actions.rate is not None:
        rate = max(1, math.ceil(actions.rate))
        if rate > MAX_BYTE_RATE:
            raise _RefusedError(
                f"rate-limit {format_rate(actions.rate)} cannot be compiled: nftables byte "
                f"limits overflow above {MAX_BYTE_RATE} bytes/s"
            )
        limit = {"rate": rate, "per": "second", "rate_unit": "bytes", "inv": True}
        out.append(({"limit": limit}, {"drop": None}))
    last: list[Expr] = []
    if actions.mark is not None:
        protocol = "ip" if rule.family is Family.IPV4 else "ip6"
        last.append({"mangle": {"key": payload(protocol, "dscp"), "value": actions.mark}})
    if actions.redirect is not None:
        mark = options.marks.get(actions.redirect)
        if mark is None:
            raise _RefusedError(
                f"redirect {actions.redirect} cannot be compiled: no fwmark is configured "
                f"for route-target {actions.redirect}"
            )
        last.append({"mangle": {"key": meta("mark"), "value": mark}})
    if not actions.terminal:
        last.append({"accept": None})
    if last:
        out.append(tuple(last))
    return tuple(out)


def _transaction(
    compiled: list[_Rule], options: CompileOptions, existing: Existing
) -> dict[str, Any]:
    table = {"family": FAMILY, "table": options.table}

    def chain(name: str) -> dict[str, Any]:
        return {"chain": {**table, "name": name}}

    def rule(chain_name: str, exprs: Iterable[Expr]) -> dict[str, Any]:
        return {"add": {"rule": {**table, "chain": chain_name, "expr": list(exprs)}}}

    have_chains = existing.chains if existing.table_exists else frozenset()
    have_counters = existing.counters if existing.table_exists else frozenset()
    live = [c for c in compiled if c.result.counter is not None]
    active = [c for c in live if c.branches]
    want_chains = [f"{prefix}_{c.result.counter}" for c in active for prefix in ("m", "a")]
    want_counters = {c.result.counter for c in live}
    base = {
        "chain": {
            **table,
            "name": BASE_CHAIN,
            "type": "filter",
            "hook": "prerouting",
            "prio": options.priority,
            "policy": "accept",
        }
    }
    cmds: list[dict[str, Any]] = [
        {"metainfo": {"json_schema_version": 1}},
        {"add": {"table": {"family": FAMILY, "name": options.table}}},
    ]
    if BASE_CHAIN in have_chains and existing.base_priority != options.priority:
        # A base chain's hook cannot change in place (EOPNOTSUPP): replace it.
        cmds += [{"flush": chain(BASE_CHAIN)}, {"delete": chain(BASE_CHAIN)}]
    cmds += [{"add": base}, {"flush": chain(BASE_CHAIN)}]
    cmds += [{"flush": chain(name)} for name in sorted(have_chains - {BASE_CHAIN})]
    cmds += [
        {"delete": chain(name)} for name in sorted(have_chains - set(want_chains) - {BASE_CHAIN})
    ]
    cmds += [
        {"delete": {"counter": {**table, "name": name}}}
        for name in sorted(have_counters - want_counters)
    ]
    cmds += [{"add": chain(name)} for name in want_chains if name not in have_chains]
    cmds += [
        {"add": {"counter": {**table, "name": c.result.counter}}}
        for c in live
        if c.result.counter not in have_counters
    ]
    if options.interfaces:
        names: Any = list(dict.fromkeys(options.interfaces))
        right = names[0] if len(names) == 1 else {"set": names}
        cmds.append(rule(BASE_CHAIN, [cond("!=", meta("iifname"), right), {"return": None}]))
    for c in active:
        cmds.append(rule(BASE_CHAIN, [{"jump": {"target": f"m_{c.result.counter}"}}]))
    for c in active:
        target = f"a_{c.result.counter}"
        cmds += [
            rule(f"m_{c.result.counter}", [*b, {"goto": {"target": target}}]) for b in c.branches
        ]
        cmds += [rule(target, exprs) for exprs in c.actions]
    return {"nftables": cmds}
