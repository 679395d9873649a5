"""The reconciliation sweep: list what Blockpass has, compare with what we hold, sync the differences.

Callbacks and webhooks can be lost; the sweep is what makes a lost one cost
minutes, not a stuck candidate. It lists the statuses where a candidate can
wait for a long time or arrive unannounced, one page of 100 per call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select

from kyc import statuses
from kyc.blockpass import BlockpassClient, Outcome
from kyc.db import Database
from kyc.models import Candidate
from kyc.transitions import Snapshot, format_date

PAGE = 100
# Approved and rejected lists only grow: a candidate leaving an in-flight status
# is found by its absence from these lists instead. Incomplete is not listable.
SWEPT = (statuses.WAITING, statuses.INREVIEW, statuses.REVIEW_REQUESTED, statuses.BLOCKED)
IN_FLIGHT_LISTED = (statuses.WAITING, statuses.INREVIEW, statuses.REVIEW_REQUESTED)
_QUERY_CHUNK = 500


@dataclass
class SweepResult:
    calls: int = 0
    listed: int = 0
    complete: bool = True
    # (refId, recordId) of candidates to sync.
    differences: list[tuple[str | None, str | None]] = field(default_factory=list)


def list_all(client: BlockpassClient, result: SweepResult) -> dict[str, Snapshot]:
    listed: dict[str, Snapshot] = {}
    for status in SWEPT:
        skip = 0
        while True:
            page = client.applicants(status, skip, PAGE)
            result.calls += 1
            if page.answer.outcome is not Outcome.FOUND:
                result.complete = False
                return listed
            for snapshot in page.records:
                if snapshot.record_id:
                    listed[snapshot.record_id] = snapshot
            skip += len(page.records)
            if not page.records or skip >= page.total:
                break
    result.listed = len(listed)
    return listed


def sweep(client: BlockpassClient, db: Database, started: datetime) -> SweepResult:
    result = SweepResult()
    listed = list_all(client, result)
    with db.transaction() as session:
        stored = {}
        ids = list(listed)
        for i in range(0, len(ids), _QUERY_CHUNK):
            chunk = ids[i : i + _QUERY_CHUNK]
            stored.update(
                {
                    c.record_id: c
                    for c in session.scalars(select(Candidate).where(Candidate.record_id.in_(chunk)))
                }
            )
        for record_id, snapshot in listed.items():
            candidate = stored.get(record_id)
            if candidate is None or _differs(candidate, snapshot):
                result.differences.append((snapshot.ref_id, record_id))
        if result.complete:
            # In flight here but absent from Blockpass's lists: it moved on (approved, rejected, deleted).
            missing = session.scalars(
                select(Candidate).where(
                    Candidate.status.in_(IN_FLIGHT_LISTED),
                    Candidate.synced_at < started,
                )
            )
            result.differences.extend(
                (c.ref_id, c.record_id) for c in missing if c.record_id and c.record_id not in listed
            )
    return result


def _differs(candidate: Candidate, snapshot: Snapshot) -> bool:
    if candidate.status != snapshot.status:
        return True
    stored = candidate.dates or {}
    return any(stored.get(name) != format_date(date) for name, date in snapshot.dates.items())
