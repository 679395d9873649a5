"""The durable record: candidates, their history, the outbox of events, subscribers and deliveries.

The database is the truth; Redis only carries work. Anything Redis loses is found
again here by the maintenance pass (kyc.maintenance).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

# Stable constraint names so Alembic migrations read the same on SQLite and PostgreSQL.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

Id = BigInteger().with_variant(Integer(), "sqlite")


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (SQLite would hand back naive ones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; kyc-relay stores UTC only")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


Moment = UtcDateTime()


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Candidate(Base):
    __tablename__ = "candidates"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    ref_id: Mapped[str | None] = mapped_column(String(128), unique=True)
    record_id: Mapped[str | None] = mapped_column(String(128), unique=True)
    blockpass_id: Mapped[str | None] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(64))
    status_changed_at: Mapped[datetime] = mapped_column(Moment)
    # The latest Blockpass *Date fields seen, ISO strings by field name: what a
    # fresh answer is compared with to tell a stale one.
    dates: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    custom_fields: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    is_archived: Mapped[bool] = mapped_column(Boolean, default=False)
    sequence: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(Moment)
    synced_at: Mapped[datetime] = mapped_column(Moment)
    # Follow-up polling: the next sync is due at next_sync_at; poll_step indexes
    # SYNC_POLL_SCHEDULE and restarts at every transition (poll_anchor).
    next_sync_at: Mapped[datetime | None] = mapped_column(Moment, index=True)
    poll_step: Mapped[int] = mapped_column(Integer, default=0)
    poll_anchor: Mapped[datetime | None] = mapped_column(Moment)

    changes: Mapped[list[StatusChange]] = relationship(
        back_populates="candidate", order_by="StatusChange.sequence"
    )


class StatusChange(Base):
    """One row per transition: the candidate's full history."""

    __tablename__ = "status_changes"
    __table_args__ = (UniqueConstraint("candidate_id", "sequence"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    candidate_id: Mapped[int] = mapped_column(ForeignKey("candidates.id", ondelete="CASCADE"))
    sequence: Mapped[int] = mapped_column(Integer)
    from_status: Mapped[str | None] = mapped_column(String(64))
    to_status: Mapped[str] = mapped_column(String(64))
    changed_at: Mapped[datetime] = mapped_column(Moment)
    # True when a Blockpass date field dates the change, False when the time we saw it does.
    dated: Mapped[bool] = mapped_column(Boolean)
    recorded_at: Mapped[datetime] = mapped_column(Moment)

    candidate: Mapped[Candidate] = relationship(back_populates="changes")


class Event(Base):
    """The outbox: written in the transaction that records the transition."""

    __tablename__ = "events"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)  # the webhook-id
    candidate_id: Mapped[int] = mapped_column(ForeignKey("candidates.id", ondelete="CASCADE"), index=True)
    status_change_id: Mapped[int] = mapped_column(
        ForeignKey("status_changes.id", ondelete="CASCADE"), unique=True
    )
    sequence: Mapped[int] = mapped_column(Integer)
    type: Mapped[str] = mapped_column(String(80))
    # The exact bytes that are signed and sent, frozen at creation so every retry is identical.
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(Moment)


class Subscriber(Base):
    __tablename__ = "subscribers"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    # Set for subscribers managed from configuration (NOTIFY_URL), so a restart updates rather than adds.
    source: Mapped[str | None] = mapped_column(String(32), unique=True)
    url: Mapped[str] = mapped_column(String(2048))
    description: Mapped[str] = mapped_column(String(512), default="")
    secret: Mapped[str] = mapped_column(String(128))
    previous_secret: Mapped[str | None] = mapped_column(String(128))
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(Moment)
    # None means every event type.
    event_types: Mapped[list[str] | None] = mapped_column(JSON)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    disabled_reason: Mapped[str | None] = mapped_column(String(256))
    disabled_at: Mapped[datetime | None] = mapped_column(Moment)
    rate_limit: Mapped[float | None] = mapped_column(Float)
    # Start of the current run of failed attempts (cleared by any success): past
    # DELIVERY_DISABLE_AFTER, the subscriber is disabled.
    failing_since: Mapped[datetime | None] = mapped_column(Moment)
    created_at: Mapped[datetime] = mapped_column(Moment)
    updated_at: Mapped[datetime | None] = mapped_column(Moment)

    def wants(self, event_type: str) -> bool:
        return self.enabled and (self.event_types is None or event_type in self.event_types)


class Delivery(Base):
    """One event bound for one subscriber, with its retry state."""

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("event_id", "subscriber_id"),
        Index("ix_deliveries_due", "status", "next_attempt_at"),
        Index("ix_deliveries_stream", "subscriber_id", "candidate_id", "sequence"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    event_id: Mapped[str] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"))
    subscriber_id: Mapped[int] = mapped_column(ForeignKey("subscribers.id", ondelete="CASCADE"))
    # Copied from the event so the per-(subscriber, candidate) order is one index away.
    candidate_id: Mapped[int] = mapped_column(Id)
    sequence: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending, delivered, failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(Moment)
    # Handed to the queue until then; past it, the maintenance pass hands it again.
    handed_until: Mapped[datetime | None] = mapped_column(Moment)
    # An attempt is in progress until then; no second worker may start one.
    lease_until: Mapped[datetime | None] = mapped_column(Moment)
    created_at: Mapped[datetime] = mapped_column(Moment)
    finished_at: Mapped[datetime | None] = mapped_column(Moment)
    last_error: Mapped[str | None] = mapped_column(String(512))

    event: Mapped[Event] = relationship()
    subscriber: Mapped[Subscriber] = relationship()


class Attempt(Base):
    __tablename__ = "attempts"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("deliveries.id", ondelete="CASCADE"), index=True)
    attempted_at: Mapped[datetime] = mapped_column(Moment)
    status_code: Mapped[int | None] = mapped_column(Integer)
    duration_ms: Mapped[float] = mapped_column(Float)
    error: Mapped[str | None] = mapped_column(String(512))
    response_body: Mapped[str | None] = mapped_column(Text)
