"""GobgpClient against a real gobgpd: what trafex sends in binary is what GoBGP holds.

These tests need only ``gobgpd`` (no router): the rules go into GoBGP's global RIB
and are read back with ``ListPath``, so the keys and actions trafex reconciles by are
checked against GoBGP's own decoding of the bytes trafex sent.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from gobgpd import bare_gobgpd, gobgpd_missing_reason

from trafex.bgp.client import GobgpClient
from trafex.model.flowspec import FlowRule
from trafex.model.grammar import parse_rule
from trafex.model.nlri import decode_key


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GobgpClient]:
    reason = gobgpd_missing_reason()
    if reason:
        pytest.skip(reason)
    with bare_gobgpd(tmp_path_factory.mktemp("gobgpd")) as gobgp:
        yield gobgp


def _clear(client: GobgpClient) -> None:
    held = client.rib()
    client.withdraw([decode_key(k) for k in held if k.startswith(("ipv4:", "ipv6:"))])
    assert not client.rib()


OFFSET_RULES = [
    # IPv6 prefixes with an offset: GoBGP's byte form differs from RFC 8956's here.
    "destination 2001:db8::/64/8 source 3001::/32 protocol =58 rate-limit 125000",
    "source ::1:1234:5678:9800:0/104/60 discard",
    "destination 2001:db8:1::/48/20 source ::/0 redirect 6:302",
    "destination ::/128/127 discard",
]


@pytest.mark.parametrize("text", OFFSET_RULES)
def test_offset_rules_are_held_under_their_own_key(client: GobgpClient, text: str) -> None:
    """Read back from GoBGP, a rule has the key it was sent with and its actions, so
    the reconciler neither re-announces it nor withdraws it as a stranger."""
    _clear(client)
    rule = parse_rule(text)
    client.announce([rule])
    assert {rule.key: rule.actions} == client.rib()
    client.withdraw([rule.match])
    assert client.rib() == {}


def _many_rules() -> list[FlowRule]:
    """Rules of both families with every component, operator and action, many terms,
    IPv6 offsets and NLRIs long enough (>= 240 bytes) for the 2-byte length form."""
    texts = [
        "destination 10.0.0.0/8 source 1.2.3.4/32 protocol =tcp port [ <80 >80 ] "
        "destination-port >=1024&<=2048 source-port [ <1024 =8080 ] rate-limit 1000",
        "destination 10.0.0.1/32 protocol =tcp tcp-flags =S&!A packet-length >100 "
        "dscp [ =10 =46 ] fragment [ dont-fragment is-fragment ] discard",
        "destination 10.0.0.2/32 protocol =icmp icmp-type =8 icmp-code =0 "
        "fragment !=first-fragment redirect 6:302 mark 10 action sample",
        "destination 10.0.0.3/32 redirect 4200000000:7 action terminal",
        "destination 10.0.0.4/32 redirect 192.0.2.1:7 mark 46",
        "source 3001:1:a::10/128 destination 3001:4:b::10/128 redirect 6:302",
        "destination 2001:db8::/64/8 source 3001::/32 protocol =58 icmp-type =128 "
        "icmp-code =0 flow-label =5 packet-length <=1500 dscp =46 fragment first-fragment "
        "rate-limit 125000",
        "destination ::/0 flow-label >=1&<=1048575 tcp-flags [ =S =F&=A ] discard",
        "protocol =udp source-port =53 packet-length >512 rate-limit 0.5",
        "destination 0.0.0.0/0 action sample-terminal",
    ]
    ports = " ".join(f"={1000 + i}" for i in range(70))
    texts.append(f"destination 192.0.2.0/24 destination-port [ {ports} ] discard")
    texts.append(f"destination 2001:db8::/32 source-port [ {ports} ] mark 0")
    for i in range(100):
        texts.append(f"destination 3001:4:b::{i:x}/128 protocol =tcp destination-port =443 discard")
        texts.append(f"destination 198.51.100.{i}/32 source 10.{i}.0.0/16 rate-limit {i * 1000}")
    return [parse_rule(t) for t in texts + OFFSET_RULES]


def test_many_rules_round_trip_through_gobgp(client: GobgpClient) -> None:
    """Read back from GoBGP, every rule sent in one stream is held under trafex's key
    with trafex's actions; withdrawing them by match empties the RIB."""
    _clear(client)
    rules = {r.key: r for r in _many_rules()}
    client.announce(list(rules.values()), batch_size=50)
    assert {k: r.actions for k, r in rules.items()} == client.rib()
    client.withdraw([r.match for r in rules.values()], batch_size=50)
    assert client.rib() == {}
