"""Subscribers as operators manage them: create, change, rotate the secret, delete.

Fields arrive under their public (camelCase) names, from the admin API's JSON or
the CLI's options, and are checked here so both refuse the same things the same way.
The NOTIFY_URL subscriber belongs to configuration: every worker start writes its
url, secret and event types again, so here only what a restart leaves alone may change.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any, NoReturn
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from kyc.db import Database
from kyc.errors import Conflict, Invalid, NotFound, valid_id
from kyc.models import Subscriber
from kyc.signing import SECRET_PREFIX, generate_secret
from kyc.subscribers import CONFIGURED
from kyc.views import iso, storable

MAX_URL = 2048
MAX_DESCRIPTION = 512
# Receivers keep verifying with the old secret until they have switched to the new one.
PREVIOUS_SECRET_GRACE = timedelta(hours=24)
OPERATOR_DISABLED = "disabled by an operator"
EVENT_TYPE = re.compile(r"candidate\.[a-z0-9_]{1,64}")
SECRET_BYTES = (24, 64)
UNSTORABLE = "must not hold NUL characters or unpaired surrogates"

CREATABLE = frozenset({"url", "description", "eventTypes", "enabled", "secret", "rateLimit"})
UPDATABLE = CREATABLE - {"secret"}
CONFIGURED_UPDATABLE = frozenset({"description", "enabled", "rateLimit"})


def describe(subscriber: Subscriber) -> dict[str, Any]:
    """The public view of a subscriber. Never the secret: that is shown once, by create and rotate."""
    return {
        "id": subscriber.id,
        "url": subscriber.url,
        "description": subscriber.description,
        "eventTypes": subscriber.event_types,
        "enabled": subscriber.enabled,
        "disabledReason": subscriber.disabled_reason,
        "disabledAt": iso(subscriber.disabled_at),
        "failingSince": iso(subscriber.failing_since),
        "rateLimit": subscriber.rate_limit,
        "previousSecretExpiresAt": iso(subscriber.previous_secret_expires_at),
        "createdAt": iso(subscriber.created_at),
        "updatedAt": iso(subscriber.updated_at),
        "source": subscriber.source,
    }


def create(db: Database, fields: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    changes = read_fields(fields, CREATABLE)
    if "url" not in changes:
        raise Invalid("missing_field", "url is required")
    secret = changes.pop("secret", None) or generate_secret()
    with db.transaction() as session:
        subscriber = Subscriber(
            url="", description="", secret=secret, event_types=None, enabled=True, created_at=now
        )
        _apply(subscriber, changes, now)
        session.add(subscriber)
        session.flush()
        return {**describe(subscriber), "secret": secret}


def list_all(db: Database) -> list[dict[str, Any]]:
    with db.transaction() as session:
        return [describe(s) for s in session.scalars(select(Subscriber).order_by(Subscriber.id))]


def show(db: Database, subscriber_id: int) -> dict[str, Any]:
    with db.transaction() as session:
        return describe(_find(session, subscriber_id))


def update(db: Database, subscriber_id: int, fields: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    if "secret" in fields:
        raise Invalid("invalid_field", "the secret changes only through rotate-secret")
    changes = read_fields(fields, UPDATABLE)
    with db.transaction() as session:
        subscriber = _find(session, subscriber_id, lock=True)
        fixed = sorted(set(fields) - CONFIGURED_UPDATABLE)
        if subscriber.source == CONFIGURED and fixed:
            _refuse_configured(f"its {fixed[0]} is set by configuration")
        _apply(subscriber, changes, now)
        return describe(subscriber)


def delete(db: Database, subscriber_id: int) -> None:
    """Remove a subscriber; its deliveries and their attempts go with it (foreign keys cascade)."""
    with db.transaction() as session:
        subscriber = _find(session, subscriber_id, lock=True)
        if subscriber.source == CONFIGURED:
            _refuse_configured("a restart would create it again; disable it instead")
        session.delete(subscriber)


def rotate_secret(db: Database, subscriber_id: int, now: datetime, secret: Any = None) -> dict[str, Any]:
    """Put a new secret in force; the old one keeps signing beside it for PREVIOUS_SECRET_GRACE."""
    new_secret = _secret(secret) or generate_secret()
    with db.transaction() as session:
        subscriber = _find(session, subscriber_id, lock=True)
        if subscriber.source == CONFIGURED:
            _refuse_configured("its secret is NOTIFY_SECRET")
        if new_secret == subscriber.secret:
            raise Invalid("invalid_field", "secret is the one in force already; give a new one")
        subscriber.previous_secret = subscriber.secret
        subscriber.previous_secret_expires_at = now + PREVIOUS_SECRET_GRACE
        subscriber.secret = new_secret
        subscriber.updated_at = now
        return {**describe(subscriber), "secret": new_secret}


def read_fields(fields: Mapping[str, Any], allowed: frozenset[str]) -> dict[str, Any]:
    """Checked values by model attribute, for the public field names given."""
    unknown = sorted(set(fields) - allowed)
    if unknown:
        raise Invalid(
            "unknown_field", f"unknown field {unknown[0][:64]!r}; known: {', '.join(sorted(allowed))}"
        )
    return {_ATTRIBUTES[name]: _CHECKS[name](value) for name, value in fields.items()}


def _find(session: Session, subscriber_id: int, lock: bool = False) -> Subscriber:
    subscriber = (
        session.get(Subscriber, subscriber_id, with_for_update=lock) if valid_id(subscriber_id) else None
    )
    if subscriber is None:
        raise NotFound("not_found", f"no subscriber {subscriber_id}")
    return subscriber


def _refuse_configured(reason: str) -> NoReturn:
    raise Conflict(
        "managed_by_configuration",
        f"the NOTIFY_URL subscriber follows NOTIFY_URL and NOTIFY_SECRET ({reason}): "
        "change the environment and restart the worker",
    )


def _apply(subscriber: Subscriber, changes: Mapping[str, Any], now: datetime) -> None:
    for attribute, value in changes.items():
        if attribute == "enabled":
            _set_enabled(subscriber, value, now)
        else:
            setattr(subscriber, attribute, value)
    subscriber.updated_at = now


def _set_enabled(subscriber: Subscriber, enabled: bool, now: datetime) -> None:
    if enabled and not subscriber.enabled:
        # A fresh start: the failing run that may have disabled it no longer counts.
        subscriber.disabled_reason = None
        subscriber.disabled_at = None
        subscriber.failing_since = None
    elif not enabled and subscriber.enabled:
        subscriber.disabled_reason = OPERATOR_DISABLED
        subscriber.disabled_at = now
    subscriber.enabled = enabled


def _url(value: Any) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= MAX_URL:
        raise Invalid("invalid_field", f"url must be a string of 1 to {MAX_URL} characters")
    if not storable(value):
        raise Invalid("invalid_field", f"url {UNSTORABLE}")
    try:
        parts = urlsplit(value)
        _ = parts.port  # raises on a malformed port
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or value != value.strip():
        raise Invalid("invalid_field", "url must be an http:// or https:// URL")
    return value


def _description(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > MAX_DESCRIPTION:
        raise Invalid(
            "invalid_field", f"description must be a string of at most {MAX_DESCRIPTION} characters"
        )
    if not storable(value):
        raise Invalid("invalid_field", f"description {UNSTORABLE}")
    return value


def _event_types(value: Any) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not value:
        raise Invalid("invalid_field", "eventTypes must be null (every type) or a non-empty list")
    for item in value:
        if not isinstance(item, str) or not EVENT_TYPE.fullmatch(item):
            raise Invalid("invalid_field", "each event type must look like candidate.approved")
    return list(dict.fromkeys(value))


def _enabled(value: Any) -> bool:
    if not isinstance(value, bool):
        raise Invalid("invalid_field", "enabled must be true or false")
    return value


def _rate_limit(value: Any) -> float | None:
    if value is None:
        return None
    problem = "rateLimit must be null or a positive number of deliveries per second"
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Invalid("invalid_field", problem)
    try:
        number = float(value)  # a JSON integer may be too large for a float
    except OverflowError:
        raise Invalid("invalid_field", problem) from None
    if not math.isfinite(number) or number <= 0:
        raise Invalid("invalid_field", problem)
    return number


def _secret(value: Any) -> str | None:
    if value is None:
        return None
    low, high = SECRET_BYTES
    problem = f"secret must be {SECRET_PREFIX} followed by the base64 of {low} to {high} random bytes"
    if not isinstance(value, str) or not value.startswith(SECRET_PREFIX):
        raise Invalid("invalid_field", problem)
    try:
        raw = base64.b64decode(value[len(SECRET_PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        raise Invalid("invalid_field", problem) from None
    if not low <= len(raw) <= high:
        raise Invalid("invalid_field", problem)
    return value


_CHECKS: dict[str, Callable[[Any], Any]] = {
    "url": _url,
    "description": _description,
    "eventTypes": _event_types,
    "enabled": _enabled,
    "secret": _secret,
    "rateLimit": _rate_limit,
}
_ATTRIBUTES = {
    "url": "url",
    "description": "description",
    "eventTypes": "event_types",
    "enabled": "enabled",
    "secret": "secret",
    "rateLimit": "rate_limit",
}
