"""Keeping identity data out of everything that leaves the process: logs, Sentry, errors."""

from __future__ import annotations

from typing import Any

FILTERED = "[Filtered]"

# Field names (lower-cased, without separators) that carry identity attributes
# in Blockpass answers or could in an integrator's custom fields.
PII_KEYS = frozenset(
    name.replace("_", "").replace("-", "")
    for name in (
        "identities",
        "certs",
        "given_name",
        "family_name",
        "first_name",
        "last_name",
        "middle_name",
        "full_name",
        "name",
        "dob",
        "date_of_birth",
        "birthdate",
        "email",
        "phone",
        "phone_number",
        "address",
        "postal_code",
        "selfie",
        "selfie_national_id",
        "passport",
        "national_id",
        "driving_license",
        "proof_of_address",
        "document",
        "documents",
        "nationality",
        "ssn",
    )
)
MAX_DEPTH = 20


def is_pii_key(key: object) -> bool:
    return isinstance(key, str) and key.lower().replace("_", "").replace("-", "") in PII_KEYS


def scrub(value: Any, depth: int = 0) -> Any:
    """A copy of `value` with every PII-named field, at any depth, replaced by a marker."""
    if depth > MAX_DEPTH:
        return FILTERED
    if isinstance(value, dict):
        return {k: FILTERED if is_pii_key(k) else scrub(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub(item, depth + 1) for item in value]
    return value
