"""Delivery state: who may attempt a delivery, what an attempt's answer means, what is due.

Per subscriber and candidate, deliveries go out in sequence order: the next one
waits until the one before it is delivered or has finally failed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Exists, exists, or_, select
from sqlalchemy.orm import Session, aliased

from kyc.db import Database
from kyc.delivery_policy import DELIVERED, FAILED, PENDING, DeliveryPolicy, judge
from kyc.models import Attempt, Delivery, Subscriber
from kyc.sender import Response

HAND_LEASE = timedelta(minutes=5)  # a handed delivery not attempted by then is handed again


@dataclass(frozen=True)
class Claim:
    delivery_id: int
    subscriber_id: int
    event_id: str
    url: str
    body: str
    secrets: tuple[str, ...]
    rate_limit: float | None


@dataclass(frozen=True)
class Outcome:
    status: str
    retry_in: float | None = None
    # The next delivery of the same stream, free to go now that this one is settled.
    next_delivery_id: int | None = None


def _earlier_pending(delivery: type[Delivery] | Delivery) -> Exists:
    earlier = aliased(Delivery)
    return exists().where(
        earlier.subscriber_id == delivery.subscriber_id,
        earlier.candidate_id == delivery.candidate_id,
        earlier.sequence < delivery.sequence,
        earlier.status == PENDING,
    )


@dataclass(frozen=True)
class NotYet:
    """The delivery was handed early (clocks and schedulers are not exact): it is due in `seconds`."""

    seconds: float


def claim(db: Database, delivery_id: int, now: datetime, lease: timedelta) -> Claim | NotYet | None:
    """Take the right to attempt a delivery now, or None when it is not this worker's to attempt."""
    with db.transaction() as session:
        delivery = session.get(Delivery, delivery_id, with_for_update=True)
        if delivery is None or delivery.status != PENDING:
            return None
        if delivery.lease_until is not None and delivery.lease_until > now:
            return None
        if delivery.next_attempt_at > now:
            return NotYet((delivery.next_attempt_at - now).total_seconds())
        subscriber = delivery.subscriber
        if not subscriber.enabled:
            return None
        if session.scalar(select(_earlier_pending(delivery))):
            return None  # handed again when the one before it settles
        delivery.lease_until = now + lease
        # The hand-over lease follows the attempt's: a process that dies mid-attempt leaves the delivery
        # to the maintenance pass once the attempt lease runs out, not HAND_LEASE after it was handed.
        delivery.handed_until = delivery.lease_until
        return Claim(
            delivery.id,
            subscriber.id,
            delivery.event_id,
            subscriber.url,
            delivery.event.body,
            _secrets(subscriber, now),
            subscriber.rate_limit,
        )


def _secrets(subscriber: Subscriber, now: datetime) -> tuple[str, ...]:
    current = (subscriber.secret,)
    expires = subscriber.previous_secret_expires_at
    if subscriber.previous_secret and expires is not None and expires > now:
        return (*current, subscriber.previous_secret)
    return current


def release(db: Database, delivery_id: int, retry_in: float, now: datetime) -> None:
    """Give a claimed delivery back without an attempt (its subscriber is busy or over its rate)."""
    with db.transaction() as session:
        delivery = session.get(Delivery, delivery_id, with_for_update=True)
        if delivery is not None and delivery.status == PENDING:
            delivery.lease_until = None
            delivery.next_attempt_at = now + timedelta(seconds=retry_in)
            delivery.handed_until = delivery.next_attempt_at + HAND_LEASE


def finish(
    db: Database,
    claimed: Claim,
    response: Response,
    now: datetime,
    policy: DeliveryPolicy,
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
        subscriber = delivery.subscriber
        verdict = judge(response, delivery.attempts, subscriber.failing_since, now, policy, rng)
        _track_health(subscriber, response.delivered, now, verdict.disable_subscriber)
        if verdict.status != DELIVERED:
            problem = response.error or f"HTTP {response.status_code}"
            delivery.last_error = (f"{problem}; {verdict.note}" if verdict.note else problem)[:512]
        if verdict.status == PENDING:
            assert verdict.retry_in is not None
            delivery.next_attempt_at = now + timedelta(seconds=verdict.retry_in)
            delivery.handed_until = delivery.next_attempt_at + HAND_LEASE
            return Outcome(PENDING, retry_in=verdict.retry_in)
        return _settle(session, delivery, verdict.status, now)


def _track_health(subscriber: Subscriber, delivered: bool, now: datetime, disable: str | None) -> None:
    if delivered:
        subscriber.failing_since = None
        return
    if subscriber.failing_since is None:
        subscriber.failing_since = now
    if disable and subscriber.enabled:
        # Operator-visible: why and when. Pending deliveries stay pending until it is enabled again.
        subscriber.enabled = False
        subscriber.disabled_reason = disable[:256]
        subscriber.disabled_at = now


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
