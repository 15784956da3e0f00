"""Unit tests for the sidecar's pure parts: Sidecar.open_sessions (trafexd's neighbors
open once the store is in) and the managed gobgpd's environment."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any, cast

from trafex.bgp.client import GobgpClient, SidecarError
from trafex.bgp.config import BgpConfig, GobgpConfig, NeighborConfig
from trafex.bgp.sidecar import Sidecar, environment

NEIGHBORS = tuple(
    NeighborConfig(address=ipaddress.ip_address(a), peer_as=65000)
    for a in ("192.0.2.1", "2001:db8::1", "192.0.2.2")
)


class FakeClient:
    """Records EnablePeer calls; refuses the addresses in ``refuse``."""

    def __init__(self, refuse: tuple[str, ...] = ()) -> None:
        self.enabled: list[str] = []
        self.refuse = refuse

    def enable_peer(self, address: str) -> None:
        if address in self.refuse:
            raise SidecarError(f"gobgpd refused (EnablePeer): {address}")
        self.enabled.append(address)


def sidecar(tmp_path: Path, client: FakeClient, **options: Any) -> Sidecar:
    learn = options.pop("learn", False)
    return Sidecar(
        GobgpConfig(**options),
        BgpConfig(neighbors=NEIGHBORS),
        tmp_path,
        cast(GobgpClient, client),
        on_up=lambda: None,
        on_down=lambda why: None,
        learn=learn,
    )


def test_every_neighbor_is_opened(tmp_path: Path) -> None:
    """A managed announcing gobgpd: each configured neighbor is enabled, in order."""
    client = FakeClient()
    sidecar(tmp_path, client).open_sessions()
    assert [str(n.address) for n in NEIGHBORS] == client.enabled


def test_a_refusal_does_not_keep_the_others_closed(tmp_path: Path) -> None:
    """One neighbor gobgpd refuses to open is logged; the others are still opened."""
    client = FakeClient(refuse=("2001:db8::1",))
    sidecar(tmp_path, client).open_sessions()
    assert client.enabled == ["192.0.2.1", "192.0.2.2"]


def test_nothing_to_open_for_an_external_or_learning_gobgpd(tmp_path: Path) -> None:
    """An operator's gobgpd (manage = false) and the enforcer's (learn) are not rendered
    with admin-down neighbors: nothing is enabled."""
    external, learning = FakeClient(), FakeClient()
    sidecar(tmp_path, external, manage=False).open_sessions()
    sidecar(tmp_path, learning, learn=True).open_sessions()
    assert (external.enabled, learning.enabled) == ([], [])


def test_memory_limit_becomes_gomemlimit() -> None:
    """``[gobgp] memory_limit`` is passed as GOMEMLIMIT, over an inherited one; unset,
    the inherited environment is passed as it is."""
    inherited = {"PATH": "/usr/bin", "GOMEMLIMIT": "8GiB"}
    assert environment(GobgpConfig(), inherited) == inherited
    limited = environment(GobgpConfig(memory_limit="512MiB"), inherited)
    assert limited == {"PATH": "/usr/bin", "GOMEMLIMIT": "512MiB"}
    assert inherited["GOMEMLIMIT"] == "8GiB"  # not changed in place
