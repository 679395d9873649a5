"""Working out which status changes a Blockpass answer reveals.

Blockpass answers with the current status and the date each dated status was last
entered. Between two fetches a candidate may have moved several steps, an answer
may be stale (a cache, a slow replica, a retried job finishing late), and the
same answer may be applied twice. This module turns (what we knew, what
Blockpass says now) into the ordered list of transitions to record. It is pure:
no I/O, so every rule is tested directly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from kyc import statuses


@dataclass(frozen=True)
class Snapshot:
    """One Blockpass answer about a candidate, reduced to what kyc-relay tracks (no identity data)."""

    status: str
    record_id: str | None = None
    ref_id: str | None = None
    blockpass_id: str | None = None
    dates: Mapping[str, datetime] = field(default_factory=dict)
    custom_fields: Mapping[str, Any] | None = None
    is_archived: bool = False

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Snapshot:
        dates = {}
        for name, value in data.items():
            if name.endswith("Date") and isinstance(value, str):
                parsed = parse_date(value)
                if parsed is not None:
                    dates[name] = parsed
        custom = data.get("customFields")
        return cls(
            status=statuses.normalise(data.get("status")),
            record_id=_text(data.get("recordId")),
            ref_id=_text(data.get("refId")),
            blockpass_id=_text(data.get("blockPassID")),
            dates=dates,
            custom_fields=custom if isinstance(custom, dict) else None,
            is_archived=data.get("isArchived") is True,
        )

    def date_of(self, status: str) -> datetime | None:
        name = statuses.DATE_FIELDS.get(status)
        return self.dates.get(name) if name else None


@dataclass(frozen=True)
class Known:
    """What is stored about a candidate: its status, when it got it, and the latest dates seen."""

    status: str
    changed_at: datetime
    dates: Mapping[str, datetime]


@dataclass(frozen=True)
class Transition:
    from_status: str | None
    to_status: str
    changed_at: datetime
    # False when Blockpass gives no date for the status and the time we saw it stands in.
    dated: bool


def detect(known: Known | None, snapshot: Snapshot, observed_at: datetime) -> list[Transition]:
    """The transitions that take `known` to `snapshot`, oldest first; empty when nothing new is shown."""
    if known is not None and is_stale(known, snapshot):
        return []
    watermark = max(known.dates.values(), default=None) if known else None
    own_date = snapshot.date_of(snapshot.status)
    # Dated steps newer than anything seen before, and not after the current
    # status was entered, happened in between: record them in date order.
    steps = sorted(
        (date, statuses.LIFE_ORDER.get(status, 9), status)
        for status, name in statuses.DATE_FIELDS.items()
        if status != snapshot.status
        and (date := snapshot.dates.get(name)) is not None
        and (watermark is None or date > watermark)
        and (own_date is None or date <= own_date)
    )
    path = [(date, status, True) for date, _, status in steps]
    path.append((own_date or observed_at, snapshot.status, own_date is not None))

    transitions: list[Transition] = []
    previous = known.status if known else None
    last_at = known.changed_at if known else None
    for date, status, dated in path:
        if status == previous:
            continue
        changed_at = date if last_at is None or date >= last_at else last_at
        transitions.append(Transition(previous, status, changed_at, dated))
        previous, last_at = status, changed_at
    return transitions


def is_stale(known: Known, snapshot: Snapshot) -> bool:
    """True when the answer predates what is stored, so applying it would move the candidate backwards."""
    for name, seen in known.dates.items():
        date = snapshot.dates.get(name)
        # Blockpass keeps every date it has set: one missing or older than seen is an old answer.
        if date is None or date < seen:
            return True
    if snapshot.status == known.status:
        return False
    own_date = snapshot.date_of(snapshot.status)
    # Entering a dated status stamps a fresh date. A different status whose date
    # is no later than what we already hold was left before the stored status
    # was reached: an old answer, not a move.
    return own_date is not None and own_date <= known.changed_at


def merge_dates(known: Mapping[str, datetime], fresh: Mapping[str, datetime]) -> dict[str, datetime]:
    merged = dict(known)
    for name, date in fresh.items():
        if name not in merged or date > merged[name]:
            merged[name] = date
    return merged


def parse_date(value: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def format_date(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
