"""Blockpass's webhook signature: X-Hub-Signature, the hex HMAC-SHA256 of the raw body."""

from __future__ import annotations

import hashlib
import hmac


def expected(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, header: str | None) -> bool:
    """Constant-time check; the bare digest and the "sha256="-prefixed form are both accepted
    (Blockpass does not document which it sends)."""
    if not header:
        return False
    given = header.strip()
    if given.lower().startswith("sha256="):
        given = given[len("sha256=") :]
    return hmac.compare_digest(expected(secret, body).encode(), given.lower().encode())
