"""Unit tests for Controller.withdraw_all: trafexd stopping with on_shutdown "withdraw"."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.unit.fakerib import Rig, rig
from trafex.control.controller import IntentOptions, NotAnnouncedError
from trafex.control.reconcile import Announceable
from trafex.control.store import Store
from trafex.model.grammar import parse_rule
from trafex.model.route import UnicastRoute

ROUTE = UnicastRoute(ipaddress.ip_network("192.0.2.1/32"))
RULES = [parse_rule(f"destination 10.0.0.{n}/32 discard") for n in (1, 2)]
ITEMS: list[Announceable] = [*RULES, ROUTE]


@pytest.fixture
def trafexd(tmp_path: Path) -> Iterator[Rig]:
    with rig(tmp_path / "state") as made:
        made.controller.add([(item, IntentOptions()) for item in ITEMS])
        made.controller.flush()
        yield made


def test_withdraws_everything_and_keeps_the_store(trafexd: Rig, tmp_path: Path) -> None:
    """Every rule and route leaves GoBGP's RIB; all stay stored (and in memory), so
    the next start announces them again."""
    assert trafexd.controller.withdraw_all() == 3
    assert trafexd.rib.paths == {}
    assert trafexd.controller.counts() == (2, 1)
    intents, problems = trafexd.store.load()
    assert (problems, len(intents)) == ([], 3)


def test_reconcile_after_it_sends_nothing(trafexd: Rig) -> None:
    """A reconcile after withdraw_all (one already under way as trafexd stops) does
    not announce the intents again."""
    trafexd.controller.withdraw_all()
    result = trafexd.controller.reconcile("timer")
    assert (result.announced, result.withdrawn) == (0, 0)
    assert trafexd.rib.paths == {}


def test_sidecar_down_is_not_announced_error(tmp_path: Path) -> None:
    """With the sidecar down nothing can be withdrawn: NotAnnouncedError, store kept."""
    with rig(tmp_path / "state", sidecar_up=lambda: False) as down:
        store: Store = down.store
        with pytest.raises(NotAnnouncedError):
            down.controller.add([(RULES[0], IntentOptions())])
        with pytest.raises(NotAnnouncedError):
            down.controller.withdraw_all()
        assert len(store.load()[0]) == 1
