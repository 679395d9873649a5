"""When to look at a candidate again without being told to."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from kyc import statuses


def next_poll(
    status: str, step: int, anchor: datetime, now: datetime, schedule: Sequence[float], horizon: float
) -> datetime | None:
    """The next follow-up sync for a candidate in `status`, or None when it is not to be polled.

    `step` counts follow-ups since the last transition (at `anchor`); the last
    delay of `schedule` repeats until `horizon` seconds after the anchor.
    """
    if statuses.is_settled(status) or not schedule:
        return None
    delay = schedule[min(step, len(schedule) - 1)]
    due = now + timedelta(seconds=delay)
    if due > anchor + timedelta(seconds=horizon):
        return None
    return due
