"""Unit tests for trafex.trigger.policy: hold-down, refresh, rate limit, counters."""

from __future__ import annotations

from ipaddress import ip_address as ip

from trafex.detect.detection import Detection, FlowDirection
from trafex.detect.detectors.dns import DnsEvidence
from trafex.detect.detectors.retransmit import RetransmitEvidence
from trafex.trigger.config import parse_trigger
from trafex.trigger.policy import Policy, PolicyStats, TokenBucket

H1, H4 = "3001:1:a::10", "3001:4:b::10"


def make(**trigger: object) -> Policy:
    return Policy(parse_trigger({"trigger": trigger}))


def flow(n: int = 0) -> Detection:
    direction = FlowDirection(ip(H1), 40000 + n, ip(f"3001:4:b::{n + 1:x}"), 443, 6)
    return Detection("retransmit", 0.0, RetransmitEvidence(3, 3), flow=direction)


def answer(*addresses: str) -> Detection:
    answers = tuple(ip(a) for a in addresses)
    evidence = DnsEvidence("badhacks.com.", answers, ip(H1), ip("3001:10::53"), "badhacks.com")
    return Detection("dns", 0.0, evidence, host=ip(H1))


def sent(policy: Policy, detection: Detection, now: float) -> int:
    return len(policy.decide(detection, now).intents)


def test_both_directions_then_hold_down() -> None:
    """The first detection of a flow sends both directions; a repeat soon after sends
    nothing and is counted as suppressed (two intents)."""
    policy = make()
    first = policy.decide(flow(), 0.0)
    assert len(first.intents) == 2 and not any(i.refresh for i in first.intents)
    again = policy.decide(flow(), 1.0)
    assert (again.intents, again.suppressed) == ((), 2)
    assert policy.stats == PolicyStats(
        candidates=4, sent=2, suppressed=2, by_detector={"retransmit": 2}
    )


def test_hold_down_shorter_than_ttl_lets_a_refresh_through() -> None:
    """hold_down 60 s, ttl 600 s: a repeat after 60 s is sent again, marked refresh."""
    policy = make(retransmit={"hold_down": 60, "ttl": 600})
    assert sent(policy, flow(), 0.0) == 2
    assert sent(policy, flow(), 59.9) == 0
    again = policy.decide(flow(), 60.0)
    assert len(again.intents) == 2 and all(i.refresh for i in again.intents)
    assert sent(policy, flow(), 100.0) == 0  # the hold-down counts from the last sending
    assert policy.stats.refreshed == 2


def test_refresh_before_the_ttl_runs_out() -> None:
    """Default hold-down = ttl (one intent per flow per TTL): repeats are suppressed
    until a third of the TTL is left, then one is re-sent, and so on while it fires."""
    policy = make(retransmit={"ttl": 600})
    assert sent(policy, flow(), 0.0) == 2
    assert sent(policy, flow(), 399.0) == 0
    refreshed = policy.decide(flow(), 400.0)
    assert [i.refresh for i in refreshed.intents] == [True, True]
    assert sent(policy, flow(), 700.0) == 0  # 300 s after the refresh, within its TTL
    assert sent(policy, flow(), 800.0) == 2  # 400 s after: refresh again
    assert policy.stats.refreshed == 4


def test_refresh_before_is_configurable() -> None:
    """refresh_before = 10: the repeat is re-sent only in the last 10 s of the TTL."""
    policy = make(retransmit={"ttl": 100, "refresh_before": 10})
    assert sent(policy, flow(), 0.0) == 2
    assert sent(policy, flow(), 89.0) == 0
    assert sent(policy, flow(), 90.0) == 2


def test_after_expiry_it_is_new_again() -> None:
    """A repeat after the TTL passed is sent as a new intent (not a refresh)."""
    policy = make(retransmit={"ttl": 60, "hold_down": 1000})
    assert sent(policy, flow(), 0.0) == 2
    later = policy.decide(flow(), 61.0)
    assert len(later.intents) == 2 and not any(i.refresh for i in later.intents)


def test_no_ttl_one_per_hold_down() -> None:
    """ttl = 0 (never expires): one sending per hold-down, never a refresh."""
    policy = make(retransmit={"ttl": 0, "hold_down": 30})
    assert sent(policy, flow(), 0.0) == 2
    assert sent(policy, flow(), 29.0) == 0
    assert [i.refresh for i in policy.decide(flow(), 30.0).intents] == [True, True]
    assert all(i.ttl is None and i.ttl_seconds == 0 for i in policy.decide(flow(), 60.0).intents)


def test_hold_down_zero_sends_every_time() -> None:
    """hold_down = 0: every detection is sent (the rate limit still applies)."""
    policy = make(retransmit={"hold_down": 0})
    assert [sent(policy, flow(), t) for t in (0.0, 0.0, 0.1)] == [2, 2, 2]


def test_hold_down_is_per_intent_identity() -> None:
    """Different flows are independent; an address shared by two DNS answers is not
    sent twice, and a changed intent for the same identity is sent as an update."""
    policy = make()
    assert sent(policy, flow(1), 0.0) == 2
    assert sent(policy, flow(2), 0.0) == 2
    assert sent(policy, answer("3001:10:66::5"), 0.0) == 1
    both = policy.decide(answer("3001:10:66::5", "3001:10:66::6"), 1.0)
    assert [i.text() for i in both.intents] == ["3001:10:66::6/128 next-hop self"]
    assert both.suppressed == 1
    other = Policy(parse_trigger({"trigger": {"dns": {"community": ["65000:666"]}}}))
    other._sent = policy._sent  # the same identity, other attributes: an update
    assert len(other.decide(answer("3001:10:66::5"), 2.0).intents) == 1


def test_rate_limit_counts_what_it_drops() -> None:
    """max_intents_per_second 2, burst 2: a storm of 10 flows at once sends 2 intents;
    the rest are rate-limited and counted; the bucket refills over time."""
    policy = make(max_intents_per_second=2, burst=2)
    decisions = [policy.decide(flow(n), 0.0) for n in range(10)]
    assert sum(len(d.intents) for d in decisions) == 2
    assert sum(d.rate_limited for d in decisions) == 18
    assert policy.stats.rate_limited == 18
    assert policy.stats.candidates == policy.stats.sent + policy.stats.rate_limited
    # A rate-limited intent was not recorded as sent: the same flow may pass later.
    assert sent(policy, flow(5), 1.0) == 2


def test_rate_limit_zero_is_no_limit() -> None:
    """max_intents_per_second = 0 turns the limit off."""
    policy = make(max_intents_per_second=0)
    assert sum(sent(policy, flow(n), 0.0) for n in range(500)) == 1000


def test_token_bucket() -> None:
    """Starts full; refills at the rate up to the capacity; time going back adds nothing."""
    bucket = TokenBucket(10.0, 3)
    assert [bucket.take(0.0) for _ in range(4)] == [True, True, True, False]
    assert bucket.take(0.1) and not bucket.take(0.1)
    assert not bucket.take(0.05)
    assert [bucket.take(100.0) for _ in range(4)] == [True, True, True, False]


def test_action_none_and_invalid_evidence() -> None:
    """A detector set to none decides nothing; evidence that makes no valid intent is
    counted as invalid, not raised."""
    policy = make(dns={"action": "none"})
    assert policy.decide(answer("3001:10:66::5"), 0.0).intents == ()
    mixed = Detection(
        "retransmit",
        0.0,
        RetransmitEvidence(3, 3),
        flow=FlowDirection(ip(H1), 1, ip("10.0.0.1"), 2, 6),
    )
    assert policy.decide(mixed, 0.0).invalid == 1
    assert policy.stats.invalid == 1


def test_stale_entries_are_forgotten() -> None:
    """Entries past their hold-down and TTL leave the table at the next sweep."""
    policy = make(max_intents_per_second=0, retransmit={"ttl": 10, "hold_down": 10})
    for n in range(50):
        policy.decide(flow(n), 0.0)
    assert len(policy) == 100
    policy.decide(answer("3001:10:66::5"), 30.0)
    assert len(policy) == 101  # stale, but no sweep yet (one every 60 s)
    policy.decide(answer("3001:10:66::6"), 61.0)
    assert len(policy) == 2
