"""Candidate records and how Blockpass renders them for each API key scope."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import Any

STATUSES = ("incomplete", "waiting", "inreview", "approved", "rejected", "blocked", "review_requested")

# The date each documented status stamps. rejected, blocked and incomplete have none in the docs.
STATUS_DATES = {
    "waiting": "waitingDate",
    "inreview": "inreviewDate",
    "approved": "approvedDate",
    "review_requested": "reviewRequestedDate",
}

# Moving to waiting from these counts as a (re)submission and grows submitCount.
SUBMITTING_FROM = ("incomplete", "rejected", "review_requested")

# Webhook event per status reached by a move. review_requested and incomplete have no documented
# event among the seven Blockpass sends, so those moves are silent.
STATUS_EVENTS = {
    "waiting": "user.readyToReview",
    "inreview": "user.inReview",
    "approved": "review.approved",
    "rejected": "review.rejected",
    "blocked": "user.blocked",
}

# The path a candidate created directly in a later status is assumed to have taken, so its
# dates and submitCount look like those of a candidate that really went through the flow.
CREATION_PATHS: dict[str, tuple[str, ...]] = {
    "incomplete": (),
    "waiting": ("waiting",),
    "inreview": ("waiting", "inreview"),
    "approved": ("waiting", "inreview", "approved"),
    "rejected": ("waiting", "inreview", "rejected"),
    "review_requested": ("waiting", "inreview", "review_requested"),
    "blocked": ("waiting", "inreview", "approved", "blocked"),
}

SCOPES = ("metadata", "attributes", "attributes_pictures")


@dataclass
class Candidate:
    record_id: str
    ref_id: str | None
    blockpass_id: str
    status: str = "incomplete"
    is_archived: bool = False
    submit_count: int = 0
    dates: dict[str, str] = field(default_factory=dict)
    custom_fields: dict[str, Any] = field(default_factory=dict)
    identities: dict[str, dict[str, str]] = field(default_factory=dict)
    certs: dict[str, str] = field(default_factory=dict)

    def copy(self) -> Candidate:
        return copy.deepcopy(self)

    def move(self, status: str, now_iso: str) -> None:
        """Apply a documented status move; older dates stay, as in Blockpass answers."""
        if status == "waiting" and self.status in SUBMITTING_FROM:
            self.submit_count += 1
        date_field = STATUS_DATES.get(status)
        if date_field:
            self.dates[date_field] = now_iso
        self.status = status

    def archive(self) -> None:
        self.is_archived = True
        self.identities = {}
        self.custom_fields = {}
        self.certs = {}

    def render(self, scope: str) -> dict[str, Any]:
        data: dict[str, Any] = {"status": self.status, "recordId": self.record_id}
        # Answers for a candidate without refId are not documented; leaving the key out is the
        # case that breaks careless readers, so that is what the simulator does.
        if self.ref_id is not None:
            data["refId"] = self.ref_id
        data.update(
            {
                "isArchived": self.is_archived,
                "blockPassID": self.blockpass_id,
                "submitCount": self.submit_count,
            }
        )
        data.update(self.dates)
        if scope == "metadata":
            return data
        data["customFields"] = copy.deepcopy(self.custom_fields)
        if scope == "attributes":
            data["identities"] = {k: dict(v) for k, v in self.identities.items() if v.get("type") != "base64"}
        else:
            data["identities"] = copy.deepcopy(self.identities)
        data["certs"] = dict(self.certs)
        return data


def normalize_identities(raw: dict[str, Any], picture_keys: frozenset[str]) -> dict[str, dict[str, str]]:
    """Accept Blockpass's own `{"type","value"}` form or plain values, and store the Blockpass form.

    Plain dicts are JSON-encoded into a string (how address and phone arrive); plain strings are
    base64 for known picture attributes and string otherwise.
    """
    result: dict[str, dict[str, str]] = {}
    for name, value in raw.items():
        if isinstance(value, dict) and set(value) == {"type", "value"}:
            result[name] = {"type": str(value["type"]), "value": _as_text(value["value"])}
        elif isinstance(value, (dict, list)):
            result[name] = {"type": "string", "value": json.dumps(value, separators=(",", ":"))}
        else:
            kind = "base64" if name in picture_keys else "string"
            result[name] = {"type": kind, "value": _as_text(value)}
    return result


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"))
