"""trafexd's guards against a real FRR peer: a dry run and a refused request leave FRR
exactly as it was.

One FRR bgpd in a namespace peered with one real trafexd (and its gobgpd), configured
with ``[guard] max_rules = 2``. FRR's table is the oracle. Absence is shown without
waiting for time to pass: gobgpd sends in the order trafexd queued, so once a change
made *after* the dry run (or the refusal) is on FRR, anything the dry run had sent
would be there too.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest
from frr import FrrFlowEntry, FrrRouter
from peered import peered, skip_unless_possible
from trafexd import Trafexd, wait_for

from trafex.api.client import IntentOptions, PreconditionError, TrafexClient
from trafex.model.grammar import parse_rule

pytestmark = pytest.mark.integration

GUARD = "[guard]\nmax_rules = 2\n"


@pytest.fixture
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FrrRouter, Trafexd]]:
    skip_unless_possible()
    with peered(tmp_path_factory.mktemp("guards"), versions=(4,), extra=GUARD) as pair:
        yield pair


def ctl(trafexd: Trafexd, *argv: str) -> subprocess.CompletedProcess[str]:
    """trafex-ctl against this trafexd, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "trafex.cli.ctl", "--target", trafexd.api, *argv],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def rates(router: FrrRouter) -> dict[str | None, float | None]:
    """FRR's FlowSpec rules: destination → traffic-rate."""
    return {e.destination: e.rate for e in router.flowspec("ipv4")}


def settled(
    router: FrrRouter, trafexd: Trafexd, expected: dict[str | None, float | None]
) -> list[FrrFlowEntry]:
    """Wait until FRR holds exactly ``expected`` (destination → rate), each valid and best."""

    def check() -> list[FrrFlowEntry] | None:
        entries = router.flowspec("ipv4")
        ok = {e.destination: e.rate for e in entries} == expected
        return entries if ok and all(e.valid and e.best for e in entries) else None

    return wait_for(check, 15, f"FRR to hold exactly {expected}", trafexd.logs)


def test_dry_run_and_caps_leave_frr_as_it_was(lab: tuple[FrrRouter, Trafexd]) -> None:
    """A dry run (trafex-ctl --dry-run) answers 'dry run: would announce ...', exit 0,
    and FRR never sees the rule; at max_rules = 2 a third rule is refused naming the
    guard caps (trafex-ctl: exit 2), the two rules in force stay on FRR, and an update
    of one of them (which adds no rule) still reaches FRR."""
    router, trafexd = lab
    dry = ctl(trafexd, "add-flow", "--destination", "10.0.0.9/32", "--discard", "--dry-run")
    assert (dry.returncode, dry.stderr) == (0, "")
    assert dry.stdout.startswith("dry run: would announce fs-"), dry.stdout
    assert "destination 10.0.0.9/32 discard; nothing stored" in dry.stdout
    with TrafexClient(trafexd.api, timeout=10) as client:
        for n in (1, 2):
            assert not client.add_flow(parse_rule(f"destination 10.0.0.{n}/32 discard")).dry_run
        settled(router, trafexd, {"10.0.0.1/32": 0.0, "10.0.0.2/32": 0.0})  # no 10.0.0.9

        capped = ctl(trafexd, "add-flow", "--destination", "10.0.0.3/32", "--discard")
        assert capped.returncode == 2 and capped.stdout == ""
        assert capped.stderr == (
            "trafex-ctl: guard caps: 2 rules in force; the limit is 2 ([guard] max_rules); "
            "refused: destination 10.0.0.3/32 discard [FAILED_PRECONDITION]\n"
        )
        batch = [
            (parse_rule("destination 10.0.0.1/32 rate-limit 1000"), IntentOptions()),
            (parse_rule("destination 10.0.0.4/32 discard"), IntentOptions()),
        ]
        with pytest.raises(PreconditionError) as info:
            client.add_flows(batch)  # all or none: the update in it is not made either
        assert info.value.guard == "caps"
        client.add_flow(parse_rule("destination 10.0.0.2/32 rate-limit 5000"))  # an update
        settled(router, trafexd, {"10.0.0.1/32": 0.0, "10.0.0.2/32": 5000.0})
        assert sorted(str(i.rule.match.destination) for i in client.list_flows()) == [
            "10.0.0.1/32",
            "10.0.0.2/32",
        ]
    assert all(router.alive().values())
