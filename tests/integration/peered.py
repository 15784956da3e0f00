"""A real FRR bgpd in a namespace peered with a real trafexd (and its gobgpd).

The shared set-up of the integration tests and the control bench: gobgpd listens on a
free port that FRR's neighbor statements point at (quick session set-up), one
session per IP version asked for, each with its unicast and FlowSpec families.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest
from frr import HOST_V4, HOST_V6, FrrRouter, Neighbor, frr_missing_reason
from trafexd import Trafexd, free_port

TRAFEX_ASN = 65010
ROUTER_ASN = 65000


def skip_unless_possible() -> None:
    """Skip the calling test when this host cannot run FRR in a namespace."""
    reason = frr_missing_reason()
    if reason:
        pytest.skip(reason)
    if os.geteuid() != 0:
        pytest.skip("needs root for network namespaces")


@contextmanager
def peered(
    workdir: Path,
    versions: Sequence[int] = (4, 6),
    *,
    reconcile_interval: float = 5,
    graceful_restart: bool = False,
    extra: str = "",
    gobgp_options: Sequence[str] = (),
) -> Iterator[tuple[FrrRouter, Trafexd]]:
    """FRR and trafexd with established sessions; both stopped on the way out.
    ``graceful_restart``: FRR's ``bgp graceful-restart``; ``extra``: lines of trafexd's
    ``[controller]`` table; ``gobgp_options``: of its ``[gobgp]`` table."""
    port = free_port()
    hosts = {4: HOST_V4, 6: HOST_V6}
    router = FrrRouter(
        workdir / "frr",
        neighbors=[Neighbor(hosts[v], TRAFEX_ASN, port=port) for v in versions],
        graceful_restart=graceful_restart,
    )
    trafexd: Trafexd | None = None
    try:
        router.start()
        sessions = {
            4: (router.router_v4, ROUTER_ASN, router.host_v4, ["ipv4-unicast", "ipv4-flowspec"]),
            6: (router.router_v6, ROUTER_ASN, router.host_v6, ["ipv6-unicast", "ipv6-flowspec"]),
        }
        locals_ = {4: router.host_v4, 6: router.host_v6}
        trafexd = Trafexd(
            workdir / "trafexd",
            [sessions[v] for v in versions],
            listen_port=port,
            listen_addresses=[locals_[v] for v in versions],
            reconcile_interval=reconcile_interval,
            extra=extra,
            gobgp_options=gobgp_options,
        ).start()
        router.wait_established(timeout=30)
        yield router, trafexd
    finally:
        if trafexd is not None:
            trafexd.close()
        router.close()
