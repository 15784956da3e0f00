"""Unit tests for trafex.control.reconcile: the plan that makes GoBGP's RIB equal the store."""

from __future__ import annotations

import ipaddress

from trafex.control.reconcile import Announceable, Plan, Signature, plan, signature
from trafex.model.flowspec import FlowActions, FlowRule
from trafex.model.grammar import parse_rule
from trafex.model.intent import IntentMeta
from trafex.model.route import UnicastRoute

RULE = parse_rule("destination 10.0.0.1/32 protocol =6 discard")
OTHER_RULE = parse_rule("destination 2001:db8::1/128 redirect 6:302")
ROUTE = UnicastRoute(ipaddress.ip_network("192.0.2.1/32"), communities=(1,))


def desired(*items: Announceable) -> dict[str, Announceable]:
    return {item.key: item for item in items}


def actual(*items: Announceable) -> dict[str, Signature]:
    """What a RIB holding exactly ``items`` looks like to the reconciler."""
    return {item.key: signature(item) for item in items}


def test_signature() -> None:
    """A rule's signature is its actions; a route's is the route itself."""
    expected: list[Signature] = [RULE.actions, ROUTE]
    assert expected == [signature(RULE), signature(ROUTE)]


def test_nothing_to_do_when_equal() -> None:
    """Store and RIB equal: the plan is empty."""
    result = plan(desired(RULE, OTHER_RULE, ROUTE), actual(RULE, OTHER_RULE, ROUTE))
    assert Plan((), ()) == result
    assert result.empty


def test_announces_what_is_missing() -> None:
    """Intents absent from the RIB are announced, in the store's order."""
    expected = Plan((RULE, ROUTE), ())
    assert expected == plan(desired(RULE, OTHER_RULE, ROUTE), actual(OTHER_RULE))


def test_announces_what_changed() -> None:
    """A rule whose actions differ in the RIB (or a route whose attributes differ) is
    announced again; the key being the same, that replaces the path."""
    changed_rule = FlowRule(RULE.match, FlowActions(rate=1000.0))
    changed_route = UnicastRoute(ROUTE.prefix, communities=(2,))
    expected = Plan((changed_rule, changed_route), ())
    assert expected == plan(desired(changed_rule, changed_route), actual(RULE, ROUTE))


def test_announces_when_the_rib_signature_is_unknown() -> None:
    """A path in the RIB whose actions could not be read (signature None) is announced."""
    expected = Plan((RULE,), ())
    assert expected == plan(desired(RULE), {RULE.key: None})


def test_withdraws_what_nobody_asked_for() -> None:
    """Keys in the RIB that are not in the store are withdrawn."""
    expected = Plan((), (OTHER_RULE.key, ROUTE.key))
    assert expected == plan(desired(RULE), actual(RULE, OTHER_RULE, ROUTE))


def test_empty_store_withdraws_everything() -> None:
    """With nothing desired, every RIB key is withdrawn."""
    expected = Plan((), (RULE.key, ROUTE.key))
    assert expected == plan({}, actual(RULE, ROUTE))
    assert not plan({}, actual(RULE)).empty


def test_announce_and_withdraw_together() -> None:
    """Missing, changed and extra intents are handled in one plan."""
    changed = FlowRule(RULE.match, FlowActions(terminal=True))
    expected = Plan((changed, ROUTE), (OTHER_RULE.key,))
    assert expected == plan(desired(changed, ROUTE), actual(RULE, OTHER_RULE))


def meta(ident: str, expires_at: float | None) -> IntentMeta:
    return IntentMeta(ident, "test", "cli", 0.0, 0.0, expires_at)


def test_refreshed_meta() -> None:
    """Asking again keeps the id and creation time, moves the expiry (none without a
    ttl) and keeps the old reason and origin when none is given."""
    original = IntentMeta("fs-1", "scan", "api", 10.0, 10.0, 70.0)
    expected = IntentMeta("fs-1", "scan", "api", 10.0, 50.0, 80.0)
    assert expected == original.refreshed(now=50.0, ttl=30.0, reason="", origin="")
    forever = IntentMeta("fs-1", "flood", "cli", 10.0, 50.0, None)
    assert forever == original.refreshed(now=50.0, ttl=None, reason="flood", origin="cli")
