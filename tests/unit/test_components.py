"""Unit tests for trafex.model.components: the one FlowSpec component table."""

from __future__ import annotations

from dataclasses import fields

from trafex.model.components import COMPONENT, COMPONENT_OF_TYPE, COMPONENTS, TERM_COMPONENTS
from trafex.model.flowspec import FlowMatch


def test_component_table_is_the_rfcs() -> None:
    """The component table (type code, keyword, kind, largest term value, families) is
    RFC 8955 §4.2.2 and RFC 8956 §3. The one place the tests state it: every other test,
    the grammar and trafex-ctl's options read the table."""
    both, v6 = ("ipv4", "ipv6"), ("ipv6",)
    expected = [
        (1, "destination", "prefix", 0, both),
        (2, "source", "prefix", 0, both),
        (3, "protocol", "numeric", 0xFF, both),
        (4, "port", "numeric", 0xFFFF, both),
        (5, "destination-port", "numeric", 0xFFFF, both),
        (6, "source-port", "numeric", 0xFFFF, both),
        (7, "icmp-type", "numeric", 0xFF, both),
        (8, "icmp-code", "numeric", 0xFF, both),
        (9, "tcp-flags", "bitmask", 0xFFFF, both),
        (10, "packet-length", "numeric", 0xFFFF, both),
        (11, "dscp", "numeric", 0x3F, both),
        (12, "fragment", "bitmask", 0x0F, both),
        (13, "flow-label", "numeric", 0xFFFFF, v6),
    ]
    actual = [
        (int(c.type), c.keyword, c.kind.value, c.maximum, tuple(f.value for f in c.families))
        for c in COMPONENTS
    ]
    assert expected == actual
    assert all(c.help for c in COMPONENTS)
    assert [c.attribute for c in COMPONENTS] == [f.name for f in fields(FlowMatch)][1:14]


def test_lookups_are_views_of_the_table() -> None:
    """By keyword, by type code, the term components: all the same rows."""
    assert list(COMPONENTS) == list(COMPONENT.values()) == list(COMPONENT_OF_TYPE.values())
    assert [c for c in COMPONENTS if c.numeric or c.bitmask] == list(TERM_COMPONENTS)
