"""Fixtures for integration tests that need a real FRR router in a network namespace.

``frr_router_factory`` builds :class:`frr.FrrRouter` instances in the test's ``tmp_path``
and closes every one of them at teardown (daemons stopped by PID, veth pair and namespace
deleted), whatever the test did. It skips the test, with the reason, when the host cannot
run one: not root, or ``/usr/lib/frr/bgpd``, ``vtysh`` or ``ip`` missing.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest
from frr import DEFAULT_NEIGHBORS, FrrError, FrrRouter, FrrRouterFactory, Neighbor
from frr import frr_missing_reason as _frr_missing_reason
from netns import NAME_PREFIX, NetnsError, list_namespaces, run_ip


@pytest.fixture
def frr_router_factory(tmp_path: Path) -> Iterator[FrrRouterFactory]:
    """A callable that starts an :class:`FrrRouter` (arguments as its constructor) and
    returns it; every router it made is closed when the test ends."""
    routers: list[FrrRouter] = []

    def make(
        neighbors: Iterable[Neighbor] = DEFAULT_NEIGHBORS,
        *,
        asn: int = 65000,
        router_id: str | None = None,
        with_zebra: bool = False,
        extra_config: str = "",
        start_timeout: float = 20.0,
    ) -> FrrRouter:
        reason = _frr_missing_reason(with_zebra)
        if reason:
            pytest.skip(reason)
        router = FrrRouter(
            tmp_path / f"frr{len(routers)}",
            asn=asn,
            router_id=router_id,
            neighbors=neighbors,
            with_zebra=with_zebra,
            extra_config=extra_config,
            start_timeout=start_timeout,
        )
        routers.append(router)
        router.start()
        return router

    reason = _frr_missing_reason()
    if reason:
        pytest.skip(reason)
    yield make
    problems: list[str] = []
    for router in reversed(routers):
        try:
            router.close()
        except FrrError as exc:
            problems.append(str(exc))
    if problems:
        pytest.fail("FRR teardown left something behind:\n" + "\n".join(problems))


@pytest.fixture(scope="session", autouse=True)
def _no_leftover_namespaces() -> Iterator[None]:
    """Safety net: at the end of the session, no namespace of this process may remain.

    Removes any it finds (this process's name prefix only) and fails loudly, so a leak
    in a fixture shows up instead of piling up on the host.
    """
    yield
    if os.geteuid() != 0:
        return
    prefix = f"{NAME_PREFIX}{os.getpid() % 100000}-"
    try:
        leftovers = [ns for ns in list_namespaces() if ns.startswith(prefix)]
    except NetnsError:
        return
    for ns in leftovers:
        run_ip("link", "del", ns + "h", check=False)
        run_ip("netns", "del", ns, check=False)
    if leftovers:
        pytest.fail(f"network namespaces left behind (now deleted): {leftovers}")
