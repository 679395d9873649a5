"""What an attempt's answer means for the delivery and its subscriber: pure rules, stated as data."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from kyc.sender import Response

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
JITTER = 0.2  # ±20 % on every retry delay, so failed receivers are not hit in lockstep
GONE = 410  # the receiver says this endpoint is gone for good


@dataclass(frozen=True)
class DeliveryPolicy:
    # Waits between attempts; the first attempt is immediate, so attempts = len + 1.
    retry_schedule: Sequence[float]
    # A subscriber failing every attempt for this long is disabled.
    disable_after: timedelta


@dataclass(frozen=True)
class Verdict:
    status: str
    retry_in: float | None = None
    # Set when the subscriber must be disabled now, saying why.
    disable_subscriber: str | None = None
    note: str | None = None


def judge(
    response: Response,
    attempts_made: int,
    failing_since: datetime | None,
    now: datetime,
    policy: DeliveryPolicy,
    rng: random.Random,
) -> Verdict:
    """The verdict after `attempts_made` attempts, the last of which got `response`."""
    if response.delivered:
        return Verdict(DELIVERED)
    if response.status_code == GONE:
        return Verdict(FAILED, disable_subscriber="the receiver answered 410 Gone", note="410 Gone")
    if response.abort:
        return Verdict(FAILED, note="the receiver asked to stop (webhook-delivery: abort-message)")
    failing_for = now - (failing_since or now)
    if failing_for >= policy.disable_after:
        reason = f"every attempt failed for {_duration(failing_for)}"
        return Verdict(FAILED, disable_subscriber=reason, note="subscriber disabled")
    if attempts_made > len(policy.retry_schedule):
        return Verdict(FAILED, note="retry schedule exhausted")
    delay = jittered(policy.retry_schedule[attempts_made - 1], rng)
    if response.retry_after is not None:
        # The receiver knows its own load better than our schedule does.
        delay = max(delay, response.retry_after)
    return Verdict(PENDING, retry_in=delay)


def jittered(delay: float, rng: random.Random) -> float:
    return max(0.0, delay * (1 + rng.uniform(-JITTER, JITTER)))


def _duration(span: timedelta) -> str:
    hours = span.total_seconds() / 3600
    return f"{hours / 24:.1f} days" if hours >= 48 else f"{hours:.1f} hours"
