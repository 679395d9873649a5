"""Subscribers: where events go. NOTIFY_URL/NOTIFY_SECRET configure one from the environment."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from kyc.config import Settings
from kyc.db import Database
from kyc.models import Subscriber

CONFIGURED = "env"  # Subscriber.source of the one NOTIFY_URL describes


def sync_configured(db: Database, settings: Settings, now: datetime) -> Subscriber | None:
    """Create or update the NOTIFY_URL subscriber; disable it when NOTIFY_URL is no longer set."""
    try:
        return _sync_configured(db, settings, now)
    except IntegrityError:
        # Another worker starting at the same moment created it first: update that one.
        return _sync_configured(db, settings, now)


def _sync_configured(db: Database, settings: Settings, now: datetime) -> Subscriber | None:
    with db.transaction() as session:
        subscriber = session.scalars(select(Subscriber).where(Subscriber.source == CONFIGURED)).first()
        if not settings.notify_url or not settings.notify_secret:
            if subscriber is not None and subscriber.enabled:
                subscriber.enabled = False
                subscriber.disabled_reason = "NOTIFY_URL unset"
                subscriber.disabled_at = now
            return subscriber
        if subscriber is None:
            subscriber = Subscriber(
                source=CONFIGURED, created_at=now, description="from NOTIFY_URL", enabled=True
            )
            session.add(subscriber)
        subscriber.url = settings.notify_url
        subscriber.secret = settings.notify_secret
        subscriber.event_types = None
        # Disabled because NOTIFY_URL was unset: setting it again turns it back on.
        # Disabled for any other reason (an operator, the receiver): left as it is.
        if not subscriber.enabled and subscriber.disabled_reason == "NOTIFY_URL unset":
            subscriber.enabled = True
            subscriber.disabled_reason = None
            subscriber.disabled_at = None
        return subscriber
