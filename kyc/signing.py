"""Standard Webhooks signatures for outgoing events."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Iterable
from datetime import UTC, datetime

from standardwebhooks.webhooks import Webhook

SECRET_PREFIX = "whsec_"  # noqa: S105 - the format marker, not a secret


def generate_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def signature_headers(
    message_id: str, body: str, secrets_in_force: Iterable[str], at: datetime
) -> dict[str, str]:
    """Headers for one attempt: one v1 signature per valid secret, space separated (rotation)."""
    # The library reads any datetime as UTC whatever its zone: hand it UTC.
    at_utc = at.astimezone(UTC)
    signatures = " ".join(Webhook(secret).sign(message_id, at_utc, body) for secret in secrets_in_force)
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(at_utc.timestamp())),
        "webhook-signature": signatures,
    }
