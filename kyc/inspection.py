"""Read models for operators: candidates with their history and events, deliveries with their attempts.

Only what kyc-relay itself stores is shown: statuses, dates, the integrator's own
identifiers and custom fields. Candidate rows hold no identity attributes, so none
can appear here.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from kyc.db import Database
from kyc.errors import Invalid, NotFound, valid_id
from kyc.models import Attempt, Candidate, Delivery, Event, StatusChange
from kyc.outbox import DELIVERED, FAILED, PENDING
from kyc.views import iso, page, storable

DELIVERY_STATUSES = (PENDING, DELIVERED, FAILED)
MAX_STATUS = 64


def candidate_summary(candidate: Candidate) -> dict[str, Any]:
    return {
        "refId": candidate.ref_id,
        "recordId": candidate.record_id,
        "blockPassID": candidate.blockpass_id,
        "status": candidate.status,
        "statusChangedAt": iso(candidate.status_changed_at),
        "isArchived": candidate.is_archived,
        "sequence": candidate.sequence,
        "createdAt": iso(candidate.created_at),
        "syncedAt": iso(candidate.synced_at),
    }


def candidate_detail(db: Database, ref_id: str) -> dict[str, Any]:
    with db.transaction() as session:
        # A refId no database can hold (PostgreSQL refuses NUL even in a query) names no candidate.
        candidate = (
            session.scalars(select(Candidate).where(Candidate.ref_id == ref_id)).first()
            if storable(ref_id)
            else None
        )
        if candidate is None:
            raise NotFound("not_found", "no candidate with this refId")
        return {
            **candidate_summary(candidate),
            "customFields": candidate.custom_fields or {},
            "history": [_change(change) for change in candidate.changes],
            "events": _events(session, candidate.id),
        }


def candidate_page(db: Database, status: str | None, limit: int, cursor: int | None) -> dict[str, Any]:
    if status is not None and not (0 < len(status) <= MAX_STATUS and storable(status)):
        raise Invalid("invalid_status", f"status must be 1 to {MAX_STATUS} characters")
    query = select(Candidate).order_by(Candidate.id.desc()).limit(limit + 1)
    if status is not None:
        query = query.where(Candidate.status == status)
    if cursor is not None:
        query = query.where(Candidate.id < cursor)
    with db.transaction() as session:
        return page(list(session.scalars(query)), limit, lambda row: row.id, candidate_summary)


def delivery_page(
    db: Database, status: str | None, subscriber_id: int | None, limit: int, cursor: int | None
) -> dict[str, Any]:
    if status is not None and status not in DELIVERY_STATUSES:
        raise Invalid("invalid_status", f"status must be one of {', '.join(DELIVERY_STATUSES)}")
    if subscriber_id is not None and not valid_id(subscriber_id):
        raise Invalid("invalid_field", "subscriber must be an id (a positive whole number)")
    query = _deliveries().order_by(Delivery.id.desc()).limit(limit + 1)
    if status is not None:
        query = query.where(Delivery.status == status)
    if subscriber_id is not None:
        query = query.where(Delivery.subscriber_id == subscriber_id)
    if cursor is not None:
        query = query.where(Delivery.id < cursor)
    with db.transaction() as session:
        rows = list(session.execute(query).all())
        return page(rows, limit, lambda row: row[0].id, lambda row: _delivery(*row))


def delivery_detail(db: Database, delivery_id: int) -> dict[str, Any]:
    with db.transaction() as session:
        row = (
            session.execute(_deliveries().where(Delivery.id == delivery_id)).first()
            if valid_id(delivery_id)
            else None
        )
        if row is None:
            raise NotFound("not_found", f"no delivery {delivery_id}")
        attempts = session.scalars(
            select(Attempt).where(Attempt.delivery_id == delivery_id).order_by(Attempt.id)
        )
        return {**_delivery(*row), "history": [_attempt(attempt) for attempt in attempts]}


def _deliveries() -> Select[Delivery, str, str | None]:
    # The candidate is joined for its refId only: the integrator's own key to the case.
    return (
        select(Delivery, Event.type, Candidate.ref_id)
        .join(Event, Event.id == Delivery.event_id)
        .outerjoin(Candidate, Candidate.id == Delivery.candidate_id)
    )


def _delivery(delivery: Delivery, event_type: str, ref_id: str | None) -> dict[str, Any]:
    return {
        "id": delivery.id,
        "eventId": delivery.event_id,
        "eventType": event_type,
        "subscriberId": delivery.subscriber_id,
        "refId": ref_id,
        "sequence": delivery.sequence,
        "status": delivery.status,
        "attempts": delivery.attempts,
        "nextAttemptAt": iso(delivery.next_attempt_at) if delivery.status == PENDING else None,
        "lastError": delivery.last_error,
        "createdAt": iso(delivery.created_at),
        "finishedAt": iso(delivery.finished_at),
    }


def _attempt(attempt: Attempt) -> dict[str, Any]:
    return {
        "attemptedAt": iso(attempt.attempted_at),
        "statusCode": attempt.status_code,
        "durationMs": attempt.duration_ms,
        "error": attempt.error,
        "responseBody": attempt.response_body,
    }


def _change(change: StatusChange) -> dict[str, Any]:
    return {
        "sequence": change.sequence,
        "from": change.from_status,
        "to": change.to_status,
        "changedAt": iso(change.changed_at),
        "dated": change.dated,
    }


def _events(session: Session, candidate_id: int) -> list[dict[str, Any]]:
    events = list(
        session.scalars(select(Event).where(Event.candidate_id == candidate_id).order_by(Event.sequence))
    )
    deliveries = session.scalars(
        select(Delivery).where(Delivery.candidate_id == candidate_id).order_by(Delivery.subscriber_id)
    )
    by_event: dict[str, list[dict[str, Any]]] = {event.id: [] for event in events}
    for delivery in deliveries:
        by_event.setdefault(delivery.event_id, []).append(
            {
                "id": delivery.id,
                "subscriberId": delivery.subscriber_id,
                "status": delivery.status,
                "attempts": delivery.attempts,
                "lastError": delivery.last_error,
                "finishedAt": iso(delivery.finished_at),
            }
        )
    return [
        {
            "id": event.id,
            "type": event.type,
            "sequence": event.sequence,
            "createdAt": iso(event.created_at),
            "deliveries": by_event[event.id],
        }
        for event in events
    ]
