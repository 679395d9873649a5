"""Recording what a Blockpass answer shows: history, outbox events and deliveries, in one transaction."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from kyc import events, statuses
from kyc.models import Candidate, Delivery, Event, StatusChange, Subscriber
from kyc.outbox import HAND_LEASE, PENDING
from kyc.transitions import (
    Known,
    Snapshot,
    Transition,
    detect,
    format_date,
    is_stale,
    merge_dates,
    parse_date,
)


@dataclass
class Recorded:
    candidate_id: int
    status: str
    stale: bool = False
    transitions: list[Transition] = field(default_factory=list)
    delivery_ids: list[int] = field(default_factory=list)


def find_candidate(
    session: Session, ref_id: str | None, record_id: str | None, lock: bool = False
) -> Candidate | None:
    clauses = []
    if record_id:
        clauses.append(Candidate.record_id == record_id)
    if ref_id:
        clauses.append(Candidate.ref_id == ref_id)
    if not clauses:
        return None
    query = select(Candidate).where(or_(*clauses)).order_by(Candidate.id).limit(1)
    if lock:
        query = query.with_for_update()
    return session.scalars(query).first()


def record_snapshot(session: Session, snapshot: Snapshot, observed_at: datetime) -> Recorded:
    """Apply one answer. Applying the same answer twice, or a stale one, records nothing."""
    candidate = find_candidate(session, snapshot.ref_id, snapshot.record_id, lock=True)
    known = _known(candidate)
    stale = known is not None and is_stale(known, snapshot)
    transitions = [] if stale else detect(known, snapshot, observed_at)
    if candidate is None:
        candidate = Candidate(
            ref_id=snapshot.ref_id,
            record_id=snapshot.record_id,
            status=snapshot.status,
            status_changed_at=observed_at,
            dates={},
            sequence=0,
            created_at=observed_at,
            synced_at=observed_at,
            poll_step=0,
            poll_anchor=observed_at,
        )
        session.add(candidate)
    _refresh(candidate, snapshot, observed_at, stale=stale)
    session.flush()

    recorded = Recorded(candidate.id, candidate.status, stale, transitions)
    if transitions:
        subscribers = list(session.scalars(select(Subscriber).where(Subscriber.enabled.is_(True))))
        for transition in transitions:
            _append(session, candidate, transition, subscribers, observed_at, recorded)
        candidate.poll_step = 0
        candidate.poll_anchor = observed_at
    return recorded


def record_deletion(session: Session, candidate: Candidate, now: datetime) -> Recorded:
    """Blockpass no longer has the candidate: record it as deleted (once)."""
    recorded = Recorded(candidate.id, statuses.DELETED)
    if candidate.status == statuses.DELETED:
        return recorded
    transition = Transition(candidate.status, statuses.DELETED, max(now, candidate.status_changed_at), False)
    recorded.transitions.append(transition)
    subscribers = list(session.scalars(select(Subscriber).where(Subscriber.enabled.is_(True))))
    _append(session, candidate, transition, subscribers, now, recorded)
    candidate.next_sync_at = None
    return recorded


def _known(candidate: Candidate | None) -> Known | None:
    if candidate is None:
        return None
    return Known(candidate.status, candidate.status_changed_at, _stored_dates(candidate))


def _stored_dates(candidate: Candidate) -> dict[str, datetime]:
    return {name: parsed for name, text in (candidate.dates or {}).items() if (parsed := parse_date(text))}


def _refresh(candidate: Candidate, snapshot: Snapshot, observed_at: datetime, stale: bool) -> None:
    candidate.synced_at = observed_at
    if stale:
        return
    # Identifiers fill in as Blockpass reveals them; a stale answer changes none of it.
    candidate.record_id = candidate.record_id or snapshot.record_id
    candidate.ref_id = candidate.ref_id or snapshot.ref_id
    candidate.blockpass_id = snapshot.blockpass_id or candidate.blockpass_id
    if snapshot.custom_fields is not None:
        candidate.custom_fields = dict(snapshot.custom_fields)
    candidate.is_archived = snapshot.is_archived
    merged = merge_dates(_stored_dates(candidate), snapshot.dates)
    candidate.dates = {name: format_date(date) for name, date in sorted(merged.items())}


def _append(
    session: Session,
    candidate: Candidate,
    transition: Transition,
    subscribers: list[Subscriber],
    now: datetime,
    recorded: Recorded,
) -> None:
    candidate.sequence += 1
    candidate.status = transition.to_status
    candidate.status_changed_at = transition.changed_at
    change = StatusChange(
        candidate_id=candidate.id,
        sequence=candidate.sequence,
        from_status=transition.from_status,
        to_status=transition.to_status,
        changed_at=transition.changed_at,
        dated=transition.dated,
        recorded_at=now,
    )
    session.add(change)
    session.flush()
    kind, body = events.event_body(
        status=transition.to_status,
        previous_status=transition.from_status,
        changed_at=transition.changed_at,
        sequence=candidate.sequence,
        ref_id=candidate.ref_id,
        record_id=candidate.record_id,
        blockpass_id=candidate.blockpass_id,
        custom_fields=candidate.custom_fields,
        created_at=now,
    )
    event = Event(
        id=events.new_event_id(),
        candidate_id=candidate.id,
        status_change_id=change.id,
        sequence=candidate.sequence,
        type=kind,
        body=body,
        created_at=now,
    )
    session.add(event)
    for subscriber in subscribers:
        if subscriber.wants(kind):
            delivery = Delivery(
                event_id=event.id,
                subscriber_id=subscriber.id,
                candidate_id=candidate.id,
                sequence=candidate.sequence,
                status=PENDING,
                attempts=0,
                next_attempt_at=now,
                # The sync hands it to the queue right after commit; should it die
                # first, the maintenance pass hands it once this lease runs out.
                handed_until=now + HAND_LEASE,
                created_at=now,
            )
            session.add(delivery)
            session.flush()
            recorded.delivery_ids.append(delivery.id)
