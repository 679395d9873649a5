"""Blockpass candidate statuses, and what kyc-relay makes of them."""

from __future__ import annotations

INCOMPLETE = "incomplete"
WAITING = "waiting"
INREVIEW = "inreview"
APPROVED = "approved"
REJECTED = "rejected"
REVIEW_REQUESTED = "review_requested"
BLOCKED = "blocked"
# Not a Blockpass status: kyc-relay's own, once the API confirms a candidate is gone.
DELETED = "deleted"

KNOWN = frozenset({INCOMPLETE, WAITING, INREVIEW, APPROVED, REJECTED, REVIEW_REQUESTED, BLOCKED, DELETED})

# Spellings seen in Blockpass's own code that mean a known status.
ALIASES = {"approve": APPROVED}

# The date field Blockpass sets when a candidate enters a status. Rejected,
# blocked and incomplete have none documented.
DATE_FIELDS = {
    WAITING: "waitingDate",
    INREVIEW: "inreviewDate",
    APPROVED: "approvedDate",
    REVIEW_REQUESTED: "reviewRequestedDate",
}

# The usual order of a candidate's life: it breaks ties between equal dates
# (Blockpass stamps in milliseconds; two steps can share one).
LIFE_ORDER = {
    INCOMPLETE: 0,
    WAITING: 1,
    INREVIEW: 2,
    REVIEW_REQUESTED: 3,
    REJECTED: 3,
    APPROVED: 3,
    BLOCKED: 4,
}

# Statuses that wait on a person (an operator blocking, an applicant
# resubmitting) with no deadline: polling them would spend API calls for weeks to
# catch a rare change that Blockpass's webhooks, the widget's next callback and
# the sweep report anyway. Every other status, unknown ones included, is in
# flight and polled on SYNC_POLL_SCHEDULE. None of these is final for good:
# approved can still become blocked, rejected can be resubmitted.
SETTLED = frozenset({APPROVED, REJECTED, BLOCKED, DELETED})

# Event types are "candidate.<status>"; an unknown status keeps its own name,
# reduced to characters that are safe in a type name.
_TYPE_SAFE = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_")


def normalise(raw: object) -> str:
    """The status as kyc-relay stores it: known spellings folded, unknown ones kept as they came."""
    text = str(raw).strip() if raw is not None else ""
    folded = text.lower()
    folded = ALIASES.get(folded, folded)
    return folded if folded in KNOWN else text[:64]


def event_type(status: str) -> str:
    name = "".join(ch if ch in _TYPE_SAFE else "_" for ch in status.lower()) or "unknown"
    return f"candidate.{name}"


def is_settled(status: str) -> bool:
    return status in SETTLED
