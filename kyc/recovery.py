"""Sending failed deliveries again, after their receiver is fixed.

A reopened delivery is pending again with a fresh retry schedule, due now and not
handed: the caller hands the returned ids to the queue, and should that fail, the
maintenance pass finds them within MAINTENANCE_INTERVAL. Attempts already made stay
on record. Stream order still holds: a reopened delivery waits for any earlier
pending one of its candidate and subscriber.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from kyc.db import Database
from kyc.errors import Conflict, Invalid, NotFound, valid_id
from kyc.models import Delivery, Subscriber
from kyc.outbox import FAILED, PENDING


def retry(db: Database, delivery_id: int, now: datetime) -> int:
    """Reopen one failed delivery; returns its id for the queue."""
    with db.transaction() as session:
        delivery = session.get(Delivery, delivery_id, with_for_update=True) if valid_id(delivery_id) else None
        if delivery is None:
            raise NotFound("not_found", f"no delivery {delivery_id}")
        if delivery.status != FAILED:
            raise Conflict(
                "not_failed",
                f"delivery {delivery_id} is {delivery.status}; only failed deliveries are retried",
            )
        _require_enabled(delivery.subscriber)
        _reopen(delivery, now)
        return delivery.id


def recover(db: Database, subscriber_id: int, since: datetime, now: datetime) -> list[int]:
    """Reopen every failed delivery of a subscriber whose event was created at or after `since`."""
    with db.transaction() as session:
        subscriber = (
            session.get(Subscriber, subscriber_id, with_for_update=True) if valid_id(subscriber_id) else None
        )
        if subscriber is None:
            raise NotFound("not_found", f"no subscriber {subscriber_id}")
        _require_enabled(subscriber)
        failed = session.scalars(
            select(Delivery)
            .where(
                Delivery.subscriber_id == subscriber_id,
                Delivery.status == FAILED,
                Delivery.created_at >= since,
            )
            .order_by(Delivery.candidate_id, Delivery.sequence)
            .with_for_update()
        )
        reopened = []
        for delivery in failed:
            _reopen(delivery, now)
            reopened.append(delivery.id)
        return reopened


def parse_since(value: Any) -> datetime:
    """An ISO 8601 time with its zone, e.g. 2026-11-27T10:00:00Z."""
    if not isinstance(value, str):
        raise Invalid("invalid_field", "since must be an ISO 8601 time, e.g. 2026-11-27T10:00:00Z")
    try:
        since = datetime.fromisoformat(value)
    except ValueError:
        raise Invalid("invalid_field", "since must be an ISO 8601 time, e.g. 2026-11-27T10:00:00Z") from None
    if since.tzinfo is None:
        # A time without a zone could be read two ways; recovering the wrong hours is worse than asking.
        raise Invalid("invalid_field", "since needs a time zone, e.g. 2026-11-27T10:00:00Z")
    try:
        return since.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00 is before the first representable instant
        raise Invalid("invalid_field", "since is out of range") from None


def _require_enabled(subscriber: Subscriber) -> None:
    # A disabled subscriber's deliveries are never claimed: reopening them would look like it worked.
    if not subscriber.enabled:
        raise Conflict("subscriber_disabled", f"subscriber {subscriber.id} is disabled; enable it first")


def _reopen(delivery: Delivery, now: datetime) -> None:
    delivery.status = PENDING
    delivery.attempts = 0
    delivery.next_attempt_at = now
    delivery.handed_until = None
    delivery.finished_at = None
