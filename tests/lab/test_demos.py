"""The talk's two demos, end to end, in the four-router lab (``trafex lab``).

One lab per test module, under a prefix of this process's own, so that a user's lab
(``tx-``) and other test runs are left alone. The fixture removes it at the end, also
when a test failed half-way, and checks that nothing is left: no namespace, veth,
/etc/netns directory or process. Every demo's report (checks, traceroutes, the time
from the triggering packet to the first packet on the new path) is printed; run with
``-s`` to see them.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest

from trafex.lab import demo, netns, procs
from trafex.lab.runner import Lab, LabError, prerequisites
from trafex.lab.topology import load_topology

PREFIX = f"tl{os.getpid() % 10000}-"


def _skip_unless_possible() -> None:
    reason = prerequisites()
    if reason:
        pytest.skip(reason)


def _leftovers(lab: Lab) -> list[str]:
    found = [f"namespace {n}" for n in netns.namespaces(lab.prefix)]
    found += [f"{p.node}/{p.name} pid {p.pid}" for p in lab.procs() if procs.alive(p)]
    if (netns.NETNS_ETC).is_dir():
        found += [str(d) for d in netns.NETNS_ETC.iterdir() if d.name.startswith(lab.prefix)]
    links = netns.root_links(lab.prefix)
    found += [f"link {name}" for name in links]
    if lab.rundir.exists():
        found.append(f"run directory {lab.rundir}")
    return found


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    _skip_unless_possible()
    the_lab = Lab(load_topology(), prefix=PREFIX)
    seconds = the_lab.up()
    print(f"\nlab up in {seconds:.1f} s")
    started = list(the_lab.procs())
    try:
        yield the_lab
    finally:
        problems = the_lab.down()
        left = [f"{p.node}/{p.name} pid {p.pid}" for p in started if procs.alive(p)]
        left += [f"namespace {n}" for n in netns.namespaces(PREFIX)]
        assert not problems and not left, f"lab down left: {problems + left}"


def _run(lab: Lab, name: str) -> demo.Result:
    result = demo.run(lab, name)
    print("\n" + result.report())
    return result


def test_up_establishes_every_session(lab: Lab) -> None:
    """After up, every BGP session (routers, controller, enforcer) is Established and
    every OSPFv3 adjacency between routers is Full; up again is a no-op that agrees."""
    states = lab.bgp_state()
    down = {
        f"{n}->{p}": s
        for n, peers in states.items()
        for p, s in peers.items()
        if s not in ("Established", "Full")
    }
    assert down == {}
    assert lab.is_up()
    lab.up(timeout=10)  # idempotent: checks, builds nothing
    assert {p.pid for p in lab.procs()} == {p.pid for p in lab.procs() if procs.alive(p)}


def test_demo_dns(lab: Lab) -> None:
    """host1 resolves badhacks.com.; the sensor on router1 flags the answer; trafexd
    announces 3001:10:66::5/128; router1 and router4 learn it from AS 65010 with
    local-preference 4294967295, and host1's traffic to it goes via router2."""
    result = _run(lab, "dns")
    assert result.ok, result.report()
    assert result.trigger_to_path_ms is not None


def test_demo_retransmit(lab: Lab) -> None:
    """A TCP flow with induced loss on the normal path is flagged; trafexd announces
    the redirect for both directions; router1's enforcer installs it; traceroute from
    3001:1:a::10 shows router2 as hop 2 while 3001:1:a::20 keeps router3; the rule's
    counters grow; after the withdraw the path is back."""
    result = _run(lab, "retransmit")
    assert result.ok, result.report()
    assert result.trigger_to_path_ms is not None


def test_demos_run_again_and_no_daemon_dies(lab: Lab) -> None:
    """Both demos again in the same lab: a redirect rule announced, withdrawn and
    announced again (what crashes FRR 8.4.4's zebra when FlowSpec passes through it)
    leaves every FRR daemon, trafexd, the enforcer and the sensor alive."""
    for name in ("retransmit", "dns"):
        result = _run(lab, name)
        assert result.ok, result.report()
    dead = [f"{p.node}/{p.name}" for p in lab.procs() if not procs.alive(p)]
    assert dead == []


def test_down_after_a_crash_leaves_nothing_and_up_works_again() -> None:
    """A lab whose runner died half-way (processes running, no state file) is removed
    by down, which finds them through the kernel; up then works."""
    _skip_unless_possible()
    crashed = Lab(load_topology(), prefix=f"tc{os.getpid() % 10000}-")
    try:
        started: list[procs.Proc] = []
        crashed._build(started)  # the runner "crashes" here: nothing recorded
        assert started and all(procs.alive(p) for p in started)
        assert crashed.procs() == []
        assert crashed.down() == []
        assert _leftovers(crashed) == []
        assert not any(procs.alive(p) for p in started)
        begin = time.monotonic()
        crashed.up()
        print(f"\nlab up after a crash in {time.monotonic() - begin:.1f} s")
    finally:
        crashed.down()
    assert _leftovers(crashed) == []


def test_up_refuses_clearly_without_prerequisites(monkeypatch: pytest.MonkeyPatch) -> None:
    """A missing tool is one clear line naming the package, and nothing is built."""
    monkeypatch.setattr("trafex.lab.runner.REQUIRED", {"no-such-tool-xyz": "some-package"})
    if os.geteuid() != 0:
        pytest.skip("the root check comes first")
    lab = Lab(load_topology(), prefix=f"tp{os.getpid() % 10000}-")
    with pytest.raises(LabError, match="no-such-tool-xyz not found: apt-get install some-package"):
        lab.up()
    assert netns.namespaces(lab.prefix) == []
