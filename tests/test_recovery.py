"""Reopening failed deliveries: exactly which rows, and into which state."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from kyc import recovery
from kyc.db import Database
from kyc.errors import Conflict, Invalid, NotFound
from kyc.models import Candidate, Delivery, Event, StatusChange, Subscriber

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def seed(db: Database, statuses: list[tuple[str, datetime]], enabled: bool = True) -> tuple[int, list[int]]:
    """One subscriber and one candidate with a delivery per (status, created_at); returns their ids."""
    with db.transaction() as session:
        subscriber = Subscriber(
            url="https://hooks.example", secret="whsec_x", enabled=enabled, created_at=NOW
        )
        candidate = Candidate(
            status="waiting", status_changed_at=NOW, created_at=NOW, synced_at=NOW, dates={}, sequence=0
        )
        session.add_all([subscriber, candidate])
        session.flush()
        ids = []
        for sequence, (status, created_at) in enumerate(statuses, start=1):
            change = StatusChange(
                candidate_id=candidate.id,
                sequence=sequence,
                to_status="waiting",
                changed_at=created_at,
                dated=False,
                recorded_at=created_at,
            )
            session.add(change)
            session.flush()
            event_id = f"msg_{candidate.id}_{sequence}"
            session.add(
                Event(
                    id=event_id,
                    candidate_id=candidate.id,
                    status_change_id=change.id,
                    sequence=sequence,
                    type="candidate.waiting",
                    body="{}",
                    created_at=created_at,
                )
            )
            delivery = Delivery(
                event_id=event_id,
                subscriber_id=subscriber.id,
                candidate_id=candidate.id,
                sequence=sequence,
                status=status,
                attempts=4,
                next_attempt_at=created_at,
                handed_until=created_at + timedelta(minutes=5),
                created_at=created_at,
                finished_at=None if status == "pending" else created_at + timedelta(hours=1),
                last_error="HTTP 500",
            )
            session.add(delivery)
            session.flush()
            ids.append(delivery.id)
        return subscriber.id, ids


def state(db: Database, delivery_id: int) -> tuple[str, int, datetime, datetime | None, datetime | None]:
    with db.transaction() as session:
        delivery = session.get(Delivery, delivery_id)
        assert delivery is not None
        return (
            delivery.status,
            delivery.attempts,
            delivery.next_attempt_at,
            delivery.handed_until,
            delivery.finished_at,
        )


def test_retry_reopens_a_failed_delivery_due_now(db: Database) -> None:
    _, (failed,) = seed(db, [("failed", NOW - timedelta(days=1))])
    assert recovery.retry(db, failed, NOW) == failed
    assert state(db, failed) == ("pending", 0, NOW, None, None)
    with pytest.raises(Conflict) as refused:
        recovery.retry(db, failed, NOW)
    assert refused.value.code == "not_failed"


def test_retry_refuses_unknown_ids_and_disabled_subscribers(db: Database) -> None:
    _, (failed,) = seed(db, [("failed", NOW)], enabled=False)
    with pytest.raises(Conflict) as refused:
        recovery.retry(db, failed, NOW)
    assert refused.value.code == "subscriber_disabled"
    assert state(db, failed)[0] == "failed"
    for unknown in (failed + 1000, 0, 2**64):
        with pytest.raises(NotFound):
            recovery.retry(db, unknown, NOW)


def test_recover_reopens_only_failed_deliveries_since_the_time_given(db: Database) -> None:
    since = NOW - timedelta(hours=6)
    subscriber, (old, recent, delivered, latest) = seed(
        db,
        [
            ("failed", since - timedelta(seconds=1)),
            ("failed", since),
            ("delivered", since + timedelta(hours=1)),
            ("failed", since + timedelta(hours=2)),
        ],
    )
    other, (elsewhere,) = seed(db, [("failed", NOW)])
    assert recovery.recover(db, subscriber, since, NOW) == [recent, latest]
    assert [state(db, i)[0] for i in (old, recent, delivered, latest)] == [
        "failed",
        "pending",
        "delivered",
        "pending",
    ]
    assert state(db, elsewhere)[0] == "failed"
    assert recovery.recover(db, subscriber, since, NOW) == []
    with pytest.raises(NotFound):
        recovery.recover(db, other + 1000, since, NOW)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-27T10:00:00Z", datetime(2026, 11, 27, 10, tzinfo=UTC)),
        ("2026-11-27T12:00:00+02:00", datetime(2026, 11, 27, 10, tzinfo=UTC)),
        ("2026-11-27T10:00:00.123Z", datetime(2026, 11, 27, 10, 0, 0, 123000, tzinfo=UTC)),
    ],
)
def test_since_is_read_with_its_zone(text: str, expected: datetime) -> None:
    assert recovery.parse_since(text) == expected


@pytest.mark.parametrize("text", ["2026-11-27T10:00:00", "2026-11-27", "last week", 1764237600, None])
def test_since_without_a_zone_or_not_a_time_is_refused(text: object) -> None:
    with pytest.raises(Invalid):
        recovery.parse_since(text)
