"""The RQ jobs. Each one is safe to run twice: the database decides what is new.

Syncs and delivery attempts run on thread pools inside the worker process
(worker.syncer, worker.delivering); the jobs here carry what needs RQ's
scheduler: retries at a later time, maintenance and sweeps.
"""

from __future__ import annotations

import logging

from kyc import outbox, syncing
from kyc import sweep as reconciliation
from worker.context import current, utcnow

log = logging.getLogger("kyc.worker")


def sync_candidate(
    ref_id: str | None = None, record_id: str | None = None, attempt: int = 0, cause: str = ""
) -> str:
    """A sync whose time has come (a retry): file its hint, for the worker pools to take up."""
    current().dispatch.request_sync(ref_id, record_id, attempt=attempt, cause=cause)
    return "hinted"


def deliver(delivery_id: int) -> str:
    """Hand one delivery to this process's delivery pool; the attempt runs there."""
    current().deliveries().submit_delivery(delivery_id)
    return "handed"


def maintain() -> str:
    """Find what Redis lost or what came due: unhanded deliveries, follow-up polls; start a due sweep."""
    ctx = current()
    now = utcnow()
    reclaimed = ctx.dispatch.inbox.reclaim_expired()
    deliveries = outbox.hand_due(ctx.db, now)
    for delivery_id in deliveries:
        ctx.dispatch.hand_delivery(delivery_id)
    polls = syncing.claim_due_polls(ctx.db, now)
    for ref_id, record_id in polls:
        ctx.dispatch.request_sync(ref_id, record_id, cause="poll")
    ctx.dispatch.request_sweep_if_due(ctx.settings.sweep_interval)
    return f"deliveries:{len(deliveries)} polls:{len(polls)} reclaimed:{reclaimed}"


def sweep() -> str:
    """Compare Blockpass's lists with the database; sync every difference."""
    ctx = current()
    result = reconciliation.sweep(ctx.blockpass, ctx.db, utcnow())
    ctx.metrics.incr("kyc_sweeps_total", complete=str(result.complete).lower())
    for ref_id, record_id in result.differences:
        ctx.dispatch.request_sync(ref_id, record_id, cause="sweep")
    log.info(
        "sweep calls=%s listed=%s differences=%s complete=%s",
        result.calls,
        result.listed,
        len(result.differences),
        result.complete,
    )
    return f"calls:{result.calls} differences:{len(result.differences)} complete:{result.complete}"
