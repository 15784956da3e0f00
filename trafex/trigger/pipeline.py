"""The detection → intent pipeline: the trigger policy between the sensor and its output.

:class:`Trigger` takes each detection the sensor reports, asks the pure
:class:`~trafex.trigger.policy.Policy` for the intents to send (mapping, hold-down, rate
limit; time is the detection's own packet time), and hands them to the
:class:`~trafex.trigger.sender.BackgroundSender` (trafexd's API, off the packet loop)
or prints them (``--dry-run``: ``intent …`` lines, or ``{"intent": {…}}`` objects).
``trafex detect`` builds one with :meth:`Trigger.start`.
"""

from __future__ import annotations

import json
from typing import TextIO

from trafex.api.credentials import Credentials
from trafex.detect.detection import Detection
from trafex.trigger.config import TriggerConfig
from trafex.trigger.intent import TriggerIntent
from trafex.trigger.policy import Policy
from trafex.trigger.sender import BackgroundSender, Sender


class Trigger:
    """The trigger policy between the sensor and its output: trafexd or stdout.

    Policy time is the detection's own (packet) time, so a capture file gives the same
    decisions however fast it is read, and ``--dry-run`` shows what ``--controller``
    would send.
    """

    def __init__(
        self,
        config: TriggerConfig,
        *,
        out: TextIO,
        err: TextIO,
        as_json: bool,
        sender: BackgroundSender | None,
        live: bool,
    ) -> None:
        self.policy = Policy(config)
        self.out = out
        self.err = err
        self.as_json = as_json
        self.sender = sender
        self.live = live
        self._limit_reported = False

    @classmethod
    def start(
        cls,
        config: TriggerConfig,
        *,
        controller: str | None,
        credentials: Credentials | None = None,
        out: TextIO,
        err: TextIO,
        as_json: bool,
        live: bool,
    ) -> Trigger:
        """A trigger that sends to trafexd's API at ``controller`` with ``credentials``
        (connected now, its sending thread started), or prints the intents when
        ``controller`` is None."""
        sender = None
        if controller:
            timeout = config.send_timeout
            client = Sender(controller, timeout=timeout, err=err, credentials=credentials)
            client.connect(timeout=max(1.0, config.send_timeout))
            sender = BackgroundSender(client, config.queue_size).start()
        return cls(config, out=out, err=err, as_json=as_json, sender=sender, live=live)

    def on_detection(self, d: Detection, started: float) -> None:
        """``started``: wall-clock time the detection reached the trigger (for latency)."""
        decision = self.policy.decide(d, d.ts)
        if decision.rate_limited and not self._limit_reported:
            self._limit_reported = True
            rate = self.policy.config.max_intents_per_second
            print(
                f"trafex detect: intent rate limit reached ({rate:g}/s); intents over it "
                "are not sent (counted as rate_limited)",
                file=self.err,
                flush=True,
            )
        if not decision.intents:
            return
        if self.sender is not None:
            # Live: from the triggering packet's kernel timestamp (same clock as time.time).
            self.sender.submit(decision.intents, d.ts if self.live else started)
            return
        for intent in decision.intents:
            print(self._format(intent), file=self.out, flush=True)

    def _format(self, intent: TriggerIntent) -> str:
        if self.as_json:
            return json.dumps({"intent": intent.to_dict()})
        return intent.line()

    def close(self, timeout: float = 5.0) -> None:
        if self.sender is not None:
            self.sender.close(timeout)

    def stats_text(self, final: bool) -> str:
        p = self.policy.stats
        parts = [
            f"intents={p.sent}",
            f"suppressed={p.suppressed}",
            f"rate_limited={p.rate_limited}",
        ]
        if p.invalid:
            parts.append(f"invalid={p.invalid}")
        if self.sender is not None:
            s = self.sender.stats
            parts += [f"sent={s.sent}", f"failed={s.failed}", f"dropped={s.dropped}"]
            if s.unannounced:
                parts.append(f"unannounced={s.unannounced}")
            if s.dry_run:
                parts.append(f"dry_run={s.dry_run}")
            if final and s.latencies:
                p50, p99, worst = s.latency_ms()
                parts += [
                    f"latency_ms_p50={p50:.2f}",
                    f"latency_ms_p99={p99:.2f}",
                    f"latency_ms_max={worst:.2f}",
                ]
        return " ".join(parts)
