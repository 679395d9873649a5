"""One sync: what to do with each kind of Blockpass answer, and recording the found ones.

Retry policies are data: each answer outcome maps to a schedule. The caller (the
RQ job) only carries out the decision.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from kyc import polling
from kyc.blockpass import Answer, Outcome
from kyc.config import Settings
from kyc.db import Database
from kyc.ledger import Recorded, find_candidate, record_deletion, record_snapshot
from kyc.models import Candidate

# 5xx, timeouts, refused connections: exponential backoff with full jitter.
UNAVAILABLE_BACKOFF = (2.0, 2.0, 300.0)  # base, factor, cap (seconds)
UNAVAILABLE_ATTEMPTS = 10
# Rate limited: wait what Blockpass says, as often as it says, within reason.
RATE_LIMITED_ATTEMPTS = 50
# A due poll handed to the queue but never run is handed again after this.
POLL_LEASE = timedelta(minutes=10)


@dataclass(frozen=True)
class Decision:
    retry_in: float | None = None
    give_up: str | None = None
    alert: str | None = None
    recorded: Recorded | None = None
    delivery_ids: list[int] = field(default_factory=list)


def decide(answer: Answer, attempt: int, settings: Settings, rng: random.Random) -> Decision:
    """What to do with an answer that found no candidate."""
    if answer.outcome is Outcome.NOT_FOUND:
        return _from_schedule(settings.sync_not_found_schedule, attempt, "not found at Blockpass")
    if answer.outcome is Outcome.RATE_LIMITED:
        if attempt >= RATE_LIMITED_ATTEMPTS:
            return Decision(give_up="still rate limited")
        return Decision(retry_in=answer.retry_after or 0.0)
    if answer.outcome is Outcome.UNAVAILABLE:
        if attempt >= UNAVAILABLE_ATTEMPTS:
            return Decision(give_up=f"Blockpass unavailable ({answer.detail or answer.status_code})")
        base, factor, cap = UNAVAILABLE_BACKOFF
        return Decision(retry_in=rng.uniform(base / 2, min(cap, base * factor**attempt)))
    if answer.outcome is Outcome.UNAUTHORIZED:
        return Decision(
            alert=f"Blockpass refused the API key or client id (HTTP {answer.status_code}): "
            "check BLOCKPASS_CLIENT_ID and BLOCKPASS_API_KEY"
        )
    raise ValueError(f"no policy for {answer.outcome}")


def _from_schedule(schedule: Sequence[float], attempt: int, reason: str) -> Decision:
    if attempt >= len(schedule):
        return Decision(give_up=f"{reason} after {attempt + 1} tries")
    return Decision(retry_in=schedule[attempt])


def record(db: Database, answer: Answer, now: datetime, settings: Settings) -> Decision:
    """Record a found candidate's transitions and its next poll, in one transaction."""
    assert answer.snapshot is not None
    for tries in range(2):
        try:
            with db.transaction() as session:
                recorded = record_snapshot(session, answer.snapshot, now)
                candidate = session.get(Candidate, recorded.candidate_id)
                assert candidate is not None
                _schedule_poll(candidate, now, settings)
                return Decision(recorded=recorded, delivery_ids=list(recorded.delivery_ids))
        except IntegrityError:
            # Two first syncs of one new candidate raced to insert it; the loser
            # now finds the winner's row.
            if tries:
                raise
    raise AssertionError("unreachable")


def record_gone(db: Database, ref_id: str | None, record_id: str | None, now: datetime) -> Decision | None:
    """Record a known candidate as deleted; None when we never knew it."""
    with db.transaction() as session:
        candidate = find_candidate(session, ref_id, record_id, lock=True)
        if candidate is None:
            return None
        recorded = record_deletion(session, candidate, now)
        return Decision(recorded=recorded, delivery_ids=list(recorded.delivery_ids))


def _schedule_poll(candidate: Candidate, now: datetime, settings: Settings) -> None:
    anchor = candidate.poll_anchor or now
    candidate.next_sync_at = polling.next_poll(
        candidate.status,
        candidate.poll_step,
        anchor,
        now,
        settings.sync_poll_schedule,
        settings.sync_poll_horizon,
    )
    candidate.poll_step += 1


def claim_due_polls(db: Database, now: datetime, limit: int = 500) -> list[tuple[str | None, str | None]]:
    """Candidates whose follow-up sync is due, as (refId, recordId).

    Their next_sync_at is pushed back a little, so a sync that gets lost comes round again.
    """
    with db.transaction() as session:
        due = list(
            session.scalars(
                select(Candidate)
                .where(Candidate.next_sync_at.is_not(None), Candidate.next_sync_at <= now)
                .order_by(Candidate.next_sync_at)
                .limit(limit)
            )
        )
        for candidate in due:
            candidate.next_sync_at = now + POLL_LEASE
        return [(candidate.ref_id, candidate.record_id) for candidate in due]


def postpone_known(
    db: Database, ref_id: str | None, record_id: str | None, now: datetime, delay: float
) -> bool:
    """Push a known candidate's next sync out (e.g. while Blockpass refuses us); False when unknown."""
    with db.transaction() as session:
        candidate = find_candidate(session, ref_id, record_id, lock=True)
        if candidate is None:
            return False
        candidate.next_sync_at = now + timedelta(seconds=delay)
        return True
