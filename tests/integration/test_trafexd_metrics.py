"""A real trafexd (with its real gobgpd, no router) serving ``[metrics] listen``.

Needs only ``gobgpd``: the test adds intents over trafexd's gRPC API and reads them
back from ``GET /metrics`` as Prometheus would.
"""

from __future__ import annotations

import shutil
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from trafexd import Trafexd, wait_for

from trafex.api.client import IntentOptions, PreconditionError, TrafexClient
from trafex.model.grammar import parse_rule


@pytest.fixture
def trafexd(tmp_path: Path) -> Iterator[Trafexd]:
    if shutil.which("gobgpd") is None:
        pytest.skip("gobgpd is not installed (apt-get install gobgpd)")
    daemon = Trafexd(tmp_path / "trafexd", metrics=True)
    try:
        yield daemon.start()
    finally:
        daemon.close()


def scrape(address: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """GET /metrics: (name, sorted labels) → value."""
    with urllib.request.urlopen(f"http://{address}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_metrics_show_what_was_added(trafexd: Trafexd) -> None:
    """GET /metrics on a running trafexd: the intents gauge equals the rules added, by
    origin; GoBGP took them; a refused rule counts under its guard; gobgpd is up."""
    assert trafexd.metrics is not None
    with TrafexClient(trafexd.api, timeout=5) as client:
        client.add_flows(
            [(parse_rule(f"destination 10.0.0.{n}/32 discard"), IntentOptions()) for n in (1, 2)]
        )
        client.add_flow(parse_rule("destination 10.0.1.1/32 discard"), IntentOptions(origin="dns"))
        with pytest.raises(PreconditionError):
            client.add_flow(parse_rule("destination 10.0.0.0/8 discard"))
    flows = (("kind", "flow"), ("origin", "api"))
    address = trafexd.metrics

    def all_taken() -> dict[tuple[str, tuple[tuple[str, str], ...]], float] | None:
        samples = scrape(address)
        taken = samples.get(("trafex_announcements_total", (("kind", "flow"),)))
        return samples if taken == 3 else None

    samples = wait_for(all_taken, 10, "GoBGP taking the 3 rules", trafexd.logs)
    assert samples[("trafex_intents", flows)] == 2
    assert samples[("trafex_intents", (("kind", "flow"), ("origin", "dns")))] == 1
    assert samples[("trafex_guard_refusals_total", (("guard", "breadth"),))] == 1
    assert samples[("trafex_sidecar_up", ())] == 1
    assert samples[("process_resident_memory_bytes", ())] > 0
