"""Delivery state: who may attempt a delivery, what an attempt's answer means, what is due.

Per subscriber and candidate, deliveries go out in sequence order: the next one
waits until the one before it is delivered or has finally failed.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Exists, exists, or_, select
from sqlalchemy.orm import Session, aliased

from kyc.db import Database
from kyc.models import Attempt, Delivery, Subscriber
from kyc.sender import Response

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
JITTER = 0.2  # ±20 % on every retry delay, so failed receivers are not hit in lockstep
HAND_LEASE = timedelta(minutes=5)  # a handed delivery not attempted by then is handed again


@dataclass(frozen=True)
class Claim:
    delivery_id: int
    event_id: str
    url: str
    body: str
    secrets: tuple[str, ...]


@dataclass(frozen=True)
class Outcome:
    status: str
    retry_in: float | None = None
    # The next delivery of the same stream, free to go now that this one is settled.
    next_delivery_id: int | None = None


def jittered(delay: float, rng: random.Random) -> float:
    return max(0.0, delay * (1 + rng.uniform(-JITTER, JITTER)))


def _earlier_pending(delivery: type[Delivery] | Delivery) -> Exists:
    earlier = aliased(Delivery)
    return exists().where(
        earlier.subscriber_id == delivery.subscriber_id,
        earlier.candidate_id == delivery.candidate_id,
        earlier.sequence < delivery.sequence,
        earlier.status == PENDING,
    )


def claim(db: Database, delivery_id: int, now: datetime, lease: timedelta) -> Claim | None:
    """Take the right to attempt a delivery now, or None when it is not this worker's to attempt."""
    with db.transaction() as session:
        delivery = session.get(Delivery, delivery_id, with_for_update=True)
        if delivery is None or delivery.status != PENDING:
            return None
        if delivery.lease_until is not None and delivery.lease_until > now:
            return None
        if delivery.next_attempt_at > now + timedelta(seconds=1):
            return None
        subscriber = delivery.subscriber
        if not subscriber.enabled:
            return None
        if session.scalar(select(_earlier_pending(delivery))):
            return None  # handed again when the one before it settles
        delivery.lease_until = now + lease
        return Claim(
            delivery.id, delivery.event_id, subscriber.url, delivery.event.body, _secrets(subscriber, now)
        )


def _secrets(subscriber: Subscriber, now: datetime) -> tuple[str, ...]:
    current = (subscriber.secret,)
    expires = subscriber.previous_secret_expires_at
    if subscriber.previous_secret and expires is not None and expires > now:
        return (*current, subscriber.previous_secret)
    return current


def finish(
    db: Database,
    claimed: Claim,
    response: Response,
    now: datetime,
    schedule: Sequence[float],
    rng: random.Random,
) -> Outcome:
    """Record the attempt and decide: delivered, retry later, or failed for good."""
    with db.transaction() as session:
        delivery = session.get(Delivery, claimed.delivery_id, with_for_update=True)
        if delivery is None:
            return Outcome(FAILED)
        session.add(
            Attempt(
                delivery_id=delivery.id,
                attempted_at=now,
                status_code=response.status_code,
                duration_ms=response.duration_ms,
                error=response.error,
                response_body=response.body,
            )
        )
        delivery.attempts += 1
        delivery.lease_until = None
        if response.delivered:
            return _settle(session, delivery, DELIVERED, now)
        delivery.last_error = (response.error or f"HTTP {response.status_code}")[:512]
        if delivery.attempts > len(schedule):
            return _settle(session, delivery, FAILED, now)
        delay = jittered(schedule[delivery.attempts - 1], rng)
        delivery.next_attempt_at = now + timedelta(seconds=delay)
        delivery.handed_until = delivery.next_attempt_at + HAND_LEASE
        return Outcome(PENDING, retry_in=delay)


def _settle(session: Session, delivery: Delivery, status: str, now: datetime) -> Outcome:
    delivery.status = status
    delivery.finished_at = now
    delivery.handed_until = None
    follower = session.scalars(
        select(Delivery)
        .where(
            Delivery.subscriber_id == delivery.subscriber_id,
            Delivery.candidate_id == delivery.candidate_id,
            Delivery.status == PENDING,
            Delivery.id != delivery.id,
        )
        .order_by(Delivery.sequence)
        .limit(1)
    ).first()
    if follower is None:
        return Outcome(status)
    follower.handed_until = now + HAND_LEASE
    return Outcome(status, next_delivery_id=follower.id)


def hand_due(db: Database, now: datetime, limit: int = 500) -> list[int]:
    """Deliveries due now that nobody holds: each stream's head only. Marks them handed."""
    with db.transaction() as session:
        query = (
            select(Delivery)
            .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
            .where(
                Delivery.status == PENDING,
                Delivery.next_attempt_at <= now,
                or_(Delivery.handed_until.is_(None), Delivery.handed_until < now),
                or_(Delivery.lease_until.is_(None), Delivery.lease_until < now),
                Subscriber.enabled.is_(True),
                ~_earlier_pending(Delivery),
            )
            .order_by(Delivery.next_attempt_at)
            .limit(limit)
        )
        due = list(session.scalars(query))
        for delivery in due:
            delivery.handed_until = now + HAND_LEASE
        return [delivery.id for delivery in due]
