"""The trigger policy: detections in, the intents to send out. Pure: time is a parameter.

:meth:`Policy.decide` maps a detection to candidate intents (:mod:`trafex.trigger.mapping`),
then filters them:

1. **Hold-down**, keyed by the intent's identity (route prefix, FlowSpec match): a repeat
   within ``hold_down`` seconds of the intent's last sending is suppressed, unless less
   than ``refresh_before`` seconds of its TTL are left, in which case it is sent again
   (a *refresh*) so that it never lapses while its condition keeps firing. A repeat with
   different content (other actions, communities) is an update and is sent.
2. **Rate limit**: a token bucket over all detectors (``max_intents_per_second``, bucket
   size ``burst``). An intent without a token is dropped and counted; it is not recorded
   as sent, so the next detection of the same thing may pass.

Every candidate ends in exactly one counter of :class:`PolicyStats`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from trafex.detect.detection import Detection
from trafex.model.flowspec import FlowRule
from trafex.model.route import UnicastRoute
from trafex.ratelimit import refilled
from trafex.trigger.config import TriggerConfig, default_config
from trafex.trigger.intent import TriggerIntent
from trafex.trigger.mapping import intents_for

MAX_ENTRIES = 200_000  # hold-down entries kept at most (the oldest go first)
SWEEP_INTERVAL = 60.0  # seconds of policy time between sweeps of stale entries


class TokenBucket:
    """``rate`` tokens per second up to ``capacity``; ``rate`` 0: no limit."""

    __slots__ = ("capacity", "last", "rate", "tokens")

    def __init__(self, rate: float, capacity: int) -> None:
        self.rate = rate
        self.capacity = float(capacity)
        self.tokens = float(capacity)
        self.last: float | None = None

    def take(self, now: float) -> bool:
        if not self.rate:
            return True
        if self.last is None:
            self.last = now
        elif now > self.last:
            self.tokens = refilled(self.tokens, self.last, now, self.rate, self.capacity)
            self.last = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


@dataclass(slots=True)
class _Sent:
    at: float
    item: FlowRule | UnicastRoute
    forget_at: float


@dataclass(slots=True)
class PolicyStats:
    """Counters over the policy's life; ``candidates`` = the sum of the others."""

    candidates: int = 0
    sent: int = 0  # let through (new, updated or refreshed)
    refreshed: int = 0  # of ``sent``: repeats sent again to push the expiry back
    suppressed: int = 0  # repeats within the hold-down
    rate_limited: int = 0  # over the global rate limit
    invalid: int = 0  # detections whose evidence made no valid intent
    by_detector: dict[str, int] = field(default_factory=dict)  # sent, per origin


@dataclass(frozen=True, slots=True)
class Decision:
    """What one detection gave: the intents to send and what was held back."""

    intents: tuple[TriggerIntent, ...]
    suppressed: int = 0
    rate_limited: int = 0
    invalid: int = 0


class Policy:
    """Hold-down table and token bucket around the detection → intent mapping."""

    def __init__(self, config: TriggerConfig | None = None) -> None:
        self.config = config or default_config()
        self.stats = PolicyStats()
        self._bucket = TokenBucket(self.config.max_intents_per_second, self.config.bucket)
        self._sent: dict[str, _Sent] = {}
        self._next_sweep: float | None = None

    def __len__(self) -> int:
        """Hold-down entries currently kept."""
        return len(self._sent)

    def decide(self, detection: Detection, now: float) -> Decision:
        """The intents to send for ``detection`` at time ``now`` (seconds, any clock that
        only moves forward: packet time or a monotonic clock)."""
        policy = self.config.policy_for(detection.detector)
        if policy is None or policy.action == "none":
            return Decision(())
        stats = self.stats
        try:
            candidates = intents_for(detection, policy)
        except ValueError:
            stats.invalid += 1
            return Decision((), invalid=1)
        self._maybe_sweep(now)
        out: list[TriggerIntent] = []
        suppressed = limited = 0
        ttl = policy.ttl
        for intent in candidates:
            stats.candidates += 1
            key = intent.key
            last = self._sent.get(key)
            refresh = False
            if last is not None and last.item == intent.item:
                elapsed = now - last.at
                in_force = ttl is None or elapsed < ttl
                if elapsed < policy.hold_down and not (
                    ttl is not None and elapsed >= ttl - policy.refresh_before
                ):
                    suppressed += 1
                    continue
                refresh = in_force
            if not self._bucket.take(now):
                limited += 1
                continue
            keep = max(policy.hold_down, ttl or 0.0)
            self._sent.pop(key, None)  # re-insert: the dict stays in order of sending
            self._sent[key] = _Sent(now, intent.item, now + keep)
            if len(self._sent) > MAX_ENTRIES:
                del self._sent[next(iter(self._sent))]
            if refresh:
                stats.refreshed += 1
            stats.sent += 1
            stats.by_detector[intent.origin] = stats.by_detector.get(intent.origin, 0) + 1
            out.append(replace(intent, refresh=True) if refresh else intent)
        stats.suppressed += suppressed
        stats.rate_limited += limited
        return Decision(tuple(out), suppressed, limited)

    def _maybe_sweep(self, now: float) -> None:
        if self._next_sweep is None:
            self._next_sweep = now + SWEEP_INTERVAL
            return
        if now < self._next_sweep:
            return
        self._next_sweep = now + SWEEP_INTERVAL
        stale = [key for key, sent in self._sent.items() if sent.forget_at <= now]
        for key in stale:
            del self._sent[key]
