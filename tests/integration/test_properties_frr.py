"""Anything the model accepts, a real gobgpd takes and a real FRR installs (hypothesis).

Generated rules (every component, operator and action, both families; the strategies of
tests/unit/test_properties_model.py; those trafexd's check_rule lets through) are sent in
binary to the gobgpd of a real trafexd peered with FRR 8.4 in a namespace: GoBGP must
hold each rule under its key with its actions, FRR must receive each one (its prefix
counts) without resetting the session (a malformed UPDATE would cost every rule on it),
and the withdrawals must empty both. Derandomized; the number of rules is printed.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from frr import FrrRouter
from hypothesis import HealthCheck, Phase, assume, given, settings
from hypothesis import strategies as st
from peered import peered, skip_unless_possible
from trafexd import Trafexd

from tests.unit.test_properties_model import rules
from trafex.bgp.client import GobgpClient
from trafex.control.guardrails import check_rule
from trafex.control.reconcile import signature
from trafex.model.errors import ValidationError
from trafex.model.flowspec import FlowRule
from trafex.model.grammar import render_rule
from trafex.model.nlri import decode_key

pytestmark = pytest.mark.integration
FLOWSPEC = ("ipv4-flowspec", "ipv6-flowspec")


class Pair:
    """FRR and trafexd's gobgpd, and a client that talks to gobgpd straight."""

    def __init__(self, router: FrrRouter, trafexd: Trafexd) -> None:
        self.router = router
        self.trafexd = trafexd
        self.gobgp = GobgpClient(trafexd.gobgp_api, timeout=10)
        self.cases = 0

    def received(self) -> int:
        """FlowSpec rules FRR holds from its peers, both families."""
        total = 0
        for afi in ("ipv4", "ipv6"):
            data = self.router.vtysh_json(f"show bgp {afi} flowspec summary json")
            peers = data.get("peers", {}) if isinstance(data, dict) else {}
            total += sum(int(p.get("pfxRcd", 0)) for p in peers.values())
        return total

    def dropped(self) -> int:
        """Sessions FRR has lost so far (a NOTIFICATION it sent counts)."""
        return sum(int(n.get("connectionsDropped", 0)) for n in self.router.neighbors().values())

    def wait_received(self, count: int, what: str) -> None:
        self.router.wait_until(lambda: self.received() == count or None, 15, what)

    def clear(self) -> None:
        """Withdraw whatever gobgpd holds (what a failed case left), until FRR has none."""
        held = self.gobgp.rib(FLOWSPEC)
        if held:
            self.gobgp.withdraw([decode_key(key) for key in held])
        self.wait_received(0, "FRR to see every rule withdrawn")


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    """A peered FRR and trafexd (whose reconciler stays out of the way: the rules go
    to gobgpd straight, not through trafexd's store)."""
    skip_unless_possible()
    workdir: Path = tmp_path_factory.mktemp("properties-frr")
    with peered(workdir, (4, 6), reconcile_interval=3600) as (router, trafexd):
        made = Pair(router, trafexd)
        try:
            yield made
        finally:
            print(f"\nproperties-frr: {made.cases} generated rules sent to gobgpd and FRR")
            made.gobgp.close()


@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
    phases=[Phase.explicit, Phase.generate],  # shrinking would take many minutes
)
@given(st.lists(rules, min_size=1, max_size=4, unique_by=lambda r: r.key))
def test_accepted_rules_are_taken_by_gobgpd_and_frr(pair: Pair, batch: list[FlowRule]) -> None:
    """Each accepted rule: GoBGP holds it (key and actions), FRR receives it, no
    session is reset; withdrawn, both are empty again."""
    for rule in batch:
        try:
            check_rule(rule)  # trafexd refuses more terms than FRR takes
        except ValidationError:
            assume(False)
    pair.clear()
    texts = "\n".join(render_rule(rule) for rule in batch)
    dropped = pair.dropped()
    pair.gobgp.announce(batch)
    held: dict[str, Any] = pair.gobgp.rib(FLOWSPEC)
    assert held == {rule.key: signature(rule) for rule in batch}, texts
    pair.wait_received(len(batch), f"FRR to receive {len(batch)} rules:\n{texts}")
    assert pair.dropped() == dropped, f"FRR reset the session:\n{texts}"
    pair.gobgp.withdraw([rule.match for rule in batch])
    pair.wait_received(0, f"FRR to see the rules withdrawn:\n{texts}")
    assert pair.gobgp.rib(FLOWSPEC) == {}
    pair.cases += len(batch)
