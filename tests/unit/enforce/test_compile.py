"""FlowSpec rules -> one nftables transaction: actions, verdicts, order, refusals, and a
rebuild that keeps the counters of the rules that stay."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from trafex.enforce.compile import (
    MAX_BYTE_RATE,
    CompileOptions,
    Existing,
    RuleResult,
    compile_rules,
    counter_name,
)
from trafex.enforce.dnf import cond, meta, payload
from trafex.model.flowspec import Family, FlowActions, FlowRule, RouteTarget
from trafex.model.grammar import parse_match, parse_rule

from .nftmodel import Packet, run

RT = RouteTarget.parse("6:302")
OPTIONS = CompileOptions(marks={RT: 0x302})
TABLE = {"family": "inet", "table": "trafex"}


def cmd(verb: str, kind: str, **fields: Any) -> dict[str, Any]:
    return {verb: {kind: {**TABLE, **fields}}}


def add_rule(chain: str, *exprs: Any) -> dict[str, Any]:
    return cmd("add", "rule", chain=chain, expr=list(exprs))


def action_rules(document: dict[str, Any], counter: str) -> list[list[Any]]:
    return [
        c["add"]["rule"]["expr"]
        for c in document["nftables"]
        if "rule" in c.get("add", {}) and c["add"]["rule"]["chain"] == f"a_{counter}"
    ]


def actions_of(text: str, options: CompileOptions = OPTIONS) -> list[list[Any]]:
    rule = parse_rule(text)
    compiled = compile_rules([rule], options)
    return action_rules(compiled.document, counter_name(rule.key))


BASE = cmd(
    "add",
    "chain",
    name="prerouting",
    type="filter",
    hook="prerouting",
    prio=-150,
    policy="accept",
)
HEAD = [
    {"metainfo": {"json_schema_version": 1}},
    {"add": {"table": {"family": "inet", "name": "trafex"}}},
    BASE,
    cmd("flush", "chain", name="prerouting"),
]


def test_counter_name_is_a_hash_of_the_key() -> None:
    """Counter names are stable across runs: "fs_" and 16 hex digits of sha256(key)."""
    key = parse_rule("destination 10.0.0.1/32 discard").key
    assert counter_name(key) == "fs_" + hashlib.sha256(key.encode()).hexdigest()[:16]


def test_whole_document_for_one_rule() -> None:
    """One discard rule: table, base chain, its two chains and counter, then the rules."""
    rule = parse_rule("destination 10.0.0.1/32 discard")
    name = counter_name(rule.key)
    compiled = compile_rules([rule], CompileOptions())
    match = cond("==", payload("ip", "daddr"), "10.0.0.1")
    assert compiled.document == {
        "nftables": [
            *HEAD,
            cmd("add", "chain", name=f"m_{name}"),
            cmd("add", "chain", name=f"a_{name}"),
            cmd("add", "counter", name=name),
            add_rule("prerouting", {"jump": {"target": f"m_{name}"}}),
            add_rule(
                f"m_{name}",
                cond("==", meta("nfproto"), "ipv4"),
                match,
                {"goto": {"target": f"a_{name}"}},
            ),
            add_rule(f"a_{name}", {"counter": name}, {"drop": None}),
        ]
    }
    assert compiled.results == (
        RuleResult(rule.key, "destination 10.0.0.1/32 discard", 0, name, 1, None),
    )


def test_terminal_bit_unset_stops_evaluation() -> None:
    """T unset (RFC 8955 §7.3): evaluation stops after this rule: ``accept``."""
    assert actions_of("destination 10.0.0.1/32 mark 10") == [
        [{"counter": counter_name(parse_rule("destination 10.0.0.1/32 mark 10").key)}],
        [{"mangle": {"key": payload("ip", "dscp"), "value": 10}}, {"accept": None}],
    ]


def test_terminal_bit_set_continues_with_the_next_rule() -> None:
    """T set: no verdict; the packet goes on to the rules after this one."""
    rule = parse_rule("destination 10.0.0.1/32 action terminal")
    assert actions_of("destination 10.0.0.1/32 action terminal") == [
        [{"counter": counter_name(rule.key)}]
    ]


def test_rate_limit_in_bytes_rounded_up() -> None:
    """traffic-rate-bytes N: drop what exceeds N bytes/s, N rounded up, at least 1."""
    limit = {"rate": 9601, "per": "second", "rate_unit": "bytes", "inv": True}
    rules = actions_of("destination 10.0.0.1/32 rate-limit 9600.5")
    assert rules[1:] == [[{"limit": limit}, {"drop": None}], [{"accept": None}]]
    tiny = actions_of("destination 10.0.0.1/32 rate-limit 0.25 action terminal")
    assert tiny[1:] == [[{"limit": {**limit, "rate": 1}}, {"drop": None}]]


def test_rate_limit_above_what_nft_accepts_is_refused() -> None:
    """Above 18446744073 bytes/s the kernel's bucket overflows: refused, named."""
    rule = parse_rule("destination 10.0.0.1/32 rate-limit 1e11")
    (result,) = compile_rules([rule], OPTIONS).results
    assert result.refused == (
        "fs rule 'destination 10.0.0.1/32 rate-limit 99999997952': rate-limit 99999997952 "
        f"cannot be compiled: nftables byte limits overflow above {MAX_BYTE_RATE} bytes/s"
    )
    assert (result.counter, result.branches) == (None, 0)


def test_dscp_marking_per_family() -> None:
    """traffic-marking: ``ip dscp set`` for IPv4, ``ip6 dscp set`` for IPv6."""
    rules = actions_of("destination 2001:db8::1/128 mark 46 action terminal")
    assert rules[1:] == [[{"mangle": {"key": payload("ip6", "dscp"), "value": 46}}]]


def test_redirect_sets_the_configured_fwmark() -> None:
    """redirect route-target: ``meta mark set`` the mark the options give it."""
    rules = actions_of("destination 10.0.0.1/32 redirect 6:302")
    assert rules[1:] == [[{"mangle": {"key": meta("mark"), "value": 0x302}}, {"accept": None}]]


def test_redirect_without_a_mark_is_refused() -> None:
    """A route-target the options do not map: refused, naming the target."""
    (result,) = compile_rules([parse_rule("destination 10.0.0.1/32 redirect 7:1")], OPTIONS).results
    assert result.refused == (
        "fs rule 'destination 10.0.0.1/32 redirect 7:1': redirect 7:1 cannot be compiled: "
        "no fwmark is configured for route-target 7:1"
    )


def test_sample_logs() -> None:
    """sample (S bit): the packet is logged with the rule's counter in the prefix."""
    rule = parse_rule("destination 10.0.0.1/32 discard action sample")
    name = counter_name(rule.key)
    assert actions_of("destination 10.0.0.1/32 discard action sample") == [
        [{"counter": name}, {"log": {"prefix": f"trafex {name} "}}, {"drop": None}]
    ]


def test_actions_combine_in_order() -> None:
    """counter, log, limit-drop, dscp, mark, verdict."""
    text = "destination 10.0.0.1/32 rate-limit 1000 redirect 6:302 mark 8 action sample"
    name = counter_name(parse_rule(text).key)
    assert actions_of(text) == [
        [{"counter": name}, {"log": {"prefix": f"trafex {name} "}}],
        [
            {"limit": {"rate": 1000, "per": "second", "rate_unit": "bytes", "inv": True}},
            {"drop": None},
        ],
        [
            {"mangle": {"key": payload("ip", "dscp"), "value": 8}},
            {"mangle": {"key": meta("mark"), "value": 0x302}},
            {"accept": None},
        ],
    ]


def _ipv4_udp(sport: int, dport: int, *, daddr: str = "10.0.0.1", iif: str = "eth0") -> Packet:
    header = sport.to_bytes(2, "big") + dport.to_bytes(2, "big") + bytes(16)
    address = int.from_bytes(bytes(int(x) for x in daddr.split(".")), "big")
    return Packet(Family.IPV4, 0x0A000063, address, 17, header, 100, iifname=iif)


def test_several_branches_count_once() -> None:
    """A packet from port 80 to port 80 matches both port branches: counted once."""
    rule = parse_rule("destination 10.0.0.1/32 port =80 discard")
    outcome = run(compile_rules([rule], OPTIONS).document, _ipv4_udp(80, 80))
    assert (outcome.counted, outcome.verdict) == ([counter_name(rule.key)], "drop")


def test_terminal_rule_lets_later_rules_apply() -> None:
    """With T set on the first rule, the second rule (lower precedence) applies too;
    with T unset, evaluation stops at the first."""
    first = parse_rule("destination 10.0.0.1/32 destination-port =53 mark 10 action terminal")
    second = parse_rule("destination 10.0.0.0/24 rate-limit 1000")
    document = compile_rules([second, first], OPTIONS).document
    outcome = run(document, _ipv4_udp(999, 53))
    assert outcome.counted == [counter_name(first.key), counter_name(second.key)]
    assert (outcome.dscp, outcome.verdict) == (10, "accept")
    assert run(document, _ipv4_udp(999, 53), over_limit=True).verdict == "drop"
    stop = FlowRule(first.match, FlowActions(mark=10))
    outcome = run(compile_rules([second, stop], OPTIONS).document, _ipv4_udp(999, 53))
    assert (outcome.counted, outcome.verdict) == ([counter_name(stop.key)], "accept")


def test_interfaces_guard_the_base_chain() -> None:
    """Only packets arriving on the listed interfaces are evaluated."""
    rule = parse_rule("destination 10.0.0.1/32 discard")
    one = compile_rules([rule], CompileOptions(interfaces=("eth1",))).document
    guard = add_rule("prerouting", cond("!=", meta("iifname"), "eth1"), {"return": None})
    assert one["nftables"][7] == guard
    two = compile_rules([rule], CompileOptions(interfaces=("eth1", "eth2"))).document
    assert run(two, _ipv4_udp(1, 2, iif="eth2")).verdict == "drop"
    assert run(two, _ipv4_udp(1, 2, iif="eth0")).counted == []


def test_results_follow_rfc_order() -> None:
    """Results and jumps are in RFC 8955 §5.1 order, whatever the input order."""
    texts = [
        "destination 10.0.0.0/8 discard",
        "destination-port =80 discard",
        "destination 10.0.0.0/16 discard",
        "destination 9.0.0.0/8 protocol =6 discard",
    ]
    compiled = compile_rules([parse_rule(t) for t in texts], OPTIONS)
    assert [(r.position, r.text) for r in compiled.results] == [
        (0, "destination 9.0.0.0/8 protocol =tcp discard"),
        (1, "destination 10.0.0.0/16 discard"),
        (2, "destination 10.0.0.0/8 discard"),
        (3, "ipv4 destination-port =80 discard"),
    ]
    jumps = [
        c["add"]["rule"]["expr"][0]["jump"]["target"]
        for c in compiled.document["nftables"]
        if c.get("add", {}).get("rule", {}).get("chain") == "prerouting"
    ]
    assert jumps == [f"m_{r.counter}" for r in compiled.results]


def test_too_many_branches_are_refused() -> None:
    """A rule that expands beyond max_branches is refused with the expansion named."""
    rule = parse_rule("destination 2001:db8::1/128 port =80 fragment !is-fragment discard")
    (result,) = compile_rules([rule], CompileOptions(max_branches=3)).results
    assert result.refused == (
        "fs rule 'destination 2001:db8::1/128 port =80 fragment !is-fragment discard': the "
        "match cannot be compiled: it expands to 4 nft rules (fragment 2 x port 2), above "
        "max_branches 3"
    )
    (fits,) = compile_rules([rule], CompileOptions(max_branches=4)).results
    assert (fits.refused, fits.branches) == (None, 4)


def test_rule_that_matches_nothing_keeps_a_counter_and_no_chains() -> None:
    """No satisfiable branch: not refused, 0 branches, a counter, nothing to jump to."""
    rule = parse_rule("ipv4 protocol =icmp destination-port =80 discard")
    compiled = compile_rules([rule], OPTIONS)
    name = counter_name(rule.key)
    assert compiled.results[0] == RuleResult(rule.key, compiled.results[0].text, 0, name, 0, None)
    assert compiled.document["nftables"][4:] == [cmd("add", "counter", name=name)]


def test_refused_rule_installs_nothing() -> None:
    """A refused rule has no counter, chain or jump; the others are compiled."""
    good, bad = (
        parse_rule("destination 10.0.0.1/32 discard"),
        parse_rule("destination 10.0.0.2/32 redirect 9:9"),
    )
    compiled = compile_rules([good, bad], OPTIONS)
    text = str(compiled.document)
    assert counter_name(good.key) in text
    assert counter_name(bad.key) not in text
    assert [r.refused is None for r in compiled.results] == [True, False]


def test_rebuild_keeps_counters_of_rules_that_stay() -> None:
    """Rules that stay keep their counter (never re-added) and chains (flushed); chains
    and counters of rules gone are flushed, then deleted, before anything is added."""
    stay, gone = (
        parse_rule("destination 10.0.0.1/32 discard"),
        parse_rule("destination 10.0.0.2/32 discard"),
    )
    new = parse_rule("destination 10.0.0.3/32 discard")
    s, g, n = (counter_name(r.key) for r in (stay, gone, new))
    existing = Existing(
        chains=frozenset({"prerouting", f"m_{s}", f"a_{s}", f"m_{g}", f"a_{g}"}),
        counters=frozenset({s, g}),
        table_exists=True,
        base_priority=-150,
    )
    document = compile_rules([stay, new], OPTIONS, existing).document
    commands = document["nftables"][4:]
    flushes = [
        cmd("flush", "chain", name=c) for c in sorted([f"a_{g}", f"a_{s}", f"m_{g}", f"m_{s}"])
    ]
    assert commands[:10] == [
        *flushes,
        cmd("delete", "chain", name=f"a_{g}"),
        cmd("delete", "chain", name=f"m_{g}"),
        cmd("delete", "counter", name=g),
        cmd("add", "chain", name=f"m_{n}"),
        cmd("add", "chain", name=f"a_{n}"),
        cmd("add", "counter", name=n),
    ]
    assert all(c.get("add", {}).get("rule") for c in commands[10:])
    assert cmd("add", "counter", name=s) not in commands


def test_existing_without_table_is_ignored() -> None:
    """Names listed for a table that does not exist are neither flushed nor deleted."""
    rule = parse_rule("destination 10.0.0.1/32 discard")
    existing = Existing(chains=frozenset({"m_x"}), counters=frozenset({"x"}), table_exists=False)
    assert compile_rules([rule], OPTIONS, existing) == compile_rules([rule], OPTIONS)


def test_new_priority_replaces_the_base_chain() -> None:
    """A base chain's priority cannot change in place: it is deleted and added again."""
    existing = Existing(chains=frozenset({"prerouting"}), table_exists=True, base_priority=-150)
    document = compile_rules([], CompileOptions(priority=-300), existing).document
    assert document["nftables"][2:6] == [
        cmd("flush", "chain", name="prerouting"),
        cmd("delete", "chain", name="prerouting"),
        cmd(
            "add",
            "chain",
            name="prerouting",
            type="filter",
            hook="prerouting",
            prio=-300,
            policy="accept",
        ),
        cmd("flush", "chain", name="prerouting"),
    ]


def test_same_key_twice_keeps_the_later_rule() -> None:
    """A rule given twice (same NLRI) is one rule: the later actions count."""
    first = parse_rule("destination 10.0.0.1/32 discard")
    later = FlowRule(parse_match("destination 10.0.0.1/32"), FlowActions(rate=500.0))
    (result,) = compile_rules([first, later], OPTIONS).results
    assert result.text == "destination 10.0.0.1/32 rate-limit 500"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"table": "bad name"}, "table: 'bad name' is not a plain nftables name"),
        ({"interfaces": ("a" * 16,)}, "interfaces: 'aaaaaaaaaaaaaaaa' is not an interface name"),
        ({"marks": {RT: 0}}, "marks: fwmark 0 for 6:302 is not in 1..0xffffffff"),
        ({"max_branches": 0}, "max_branches: 0 is below 1"),
        ({"priority": 2**31}, "priority: 2147483648 is out of range"),
    ],
)
def test_bad_options_are_refused(kwargs: dict[str, Any], message: str) -> None:
    """Options are checked when built; the error names the option."""
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(")):
        CompileOptions(**kwargs)
