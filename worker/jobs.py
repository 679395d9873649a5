"""The RQ jobs. Each one is safe to run twice: the database decides what is new."""

from __future__ import annotations

import logging

import sentry_sdk

from kyc import outbox, syncing
from kyc import sweep as reconciliation
from kyc.blockpass import Answer, Outcome
from worker.context import Context, current, utcnow

log = logging.getLogger("kyc.worker")

DELETED_CAUSE = "blockpass:user.deleted"


def sync_candidate(
    ref_id: str | None = None, record_id: str | None = None, attempt: int = 0, cause: str = ""
) -> str:
    """Fetch one candidate from Blockpass and record what changed. Returns the outcome, for the job log."""
    ctx = current()
    outcome = _sync(ctx, ref_id, record_id, attempt, cause)
    ctx.metrics.incr("kyc_syncs_total", outcome=outcome.split(":")[0])
    return outcome


def _sync(ctx: Context, ref_id: str | None, record_id: str | None, attempt: int, cause: str) -> str:
    # refId is the integrator's own identifier, not identity data: ops need it to find a case.
    sentry_sdk.set_tag("refId", ref_id or "")
    answer = ctx.blockpass.candidate(ref_id=ref_id, record_id=record_id)
    if answer.outcome is Outcome.FOUND:
        return _found(ctx, answer, ref_id, record_id, attempt, cause)
    decision = syncing.decide(answer, attempt, ctx.settings, ctx.rng)
    if answer.outcome is Outcome.NOT_FOUND and (cause == DELETED_CAUSE or decision.give_up):
        # Blockpass said it deleted the candidate and the API agrees, or a
        # candidate we knew has stayed gone through every retry.
        gone = syncing.record_gone(ctx.db, ref_id, record_id, utcnow())
        if gone is not None:
            _hand_all(ctx, gone.delivery_ids)
            return "deleted"
    if decision.alert:
        _alert_once(ctx, "blockpass-auth", decision.alert)
        # Known candidates come round again on their poll, not in a tight loop.
        syncing.postpone_known(ctx.db, ref_id, record_id, utcnow(), 3600)
        return "unauthorized"
    if decision.retry_in is not None:
        delay = max(decision.retry_in, 1.0)
        ctx.dispatch.request_sync(ref_id, record_id, delay=delay, attempt=attempt + 1, cause=cause)
        return f"{answer.outcome.value}:retry-in-{decision.retry_in:.0f}s"
    log.warning("sync given up: %s (refId known=%s)", decision.give_up, bool(ref_id))
    return f"gave-up:{answer.outcome.value}"


def _found(
    ctx: Context, answer: Answer, ref_id: str | None, record_id: str | None, attempt: int, cause: str
) -> str:
    decision = syncing.record(ctx.db, answer, utcnow(), ctx.settings)
    assert decision.recorded is not None
    for transition in decision.recorded.transitions:
        ctx.metrics.incr(
            "kyc_transitions_total", **{"from": transition.from_status or "none", "to": transition.to_status}
        )
        log.info(
            "transition candidate=%s %s -> %s",
            decision.recorded.candidate_id,
            transition.from_status,
            transition.to_status,
        )
    _hand_all(ctx, decision.delivery_ids)
    schedule = ctx.settings.sync_not_found_schedule
    # Blockpass announced a deletion the API does not show yet, or answered from
    # an old cache while the news that sent us here is newer: look again soon.
    if (cause == DELETED_CAUSE or decision.recorded.stale) and attempt < len(schedule):
        ctx.dispatch.request_sync(
            ref_id, record_id, delay=schedule[attempt], attempt=attempt + 1, cause=cause
        )
    if decision.recorded.stale:
        return "stale"
    return f"{'changed' if decision.recorded.transitions else 'unchanged'}:{decision.recorded.status}"


def deliver(delivery_id: int) -> str:
    """Hand one delivery to this process's delivery pool; the attempt runs there."""
    current().deliveries().submit(delivery_id)
    return "handed"


def maintain() -> str:
    """Find what Redis lost or what came due: unhanded deliveries, follow-up polls; start a due sweep."""
    ctx = current()
    now = utcnow()
    deliveries = outbox.hand_due(ctx.db, now)
    for delivery_id in deliveries:
        ctx.dispatch.hand_delivery(delivery_id)
    polls = syncing.claim_due_polls(ctx.db, now)
    for ref_id, record_id in polls:
        ctx.dispatch.request_sync(ref_id, record_id, cause="poll")
    ctx.dispatch.request_sweep_if_due(ctx.settings.sweep_interval)
    return f"deliveries:{len(deliveries)} polls:{len(polls)}"


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


def _hand_all(ctx: Context, delivery_ids: list[int]) -> None:
    for delivery_id in delivery_ids:
        ctx.dispatch.hand_delivery(delivery_id)


def _alert_once(ctx: Context, name: str, message: str, every: int = 3600) -> None:
    """Report a configuration problem once an hour across all workers, not once per job."""
    if ctx.redis.set(f"kyc:alerted:{name}", "1", nx=True, ex=every):
        log.error(message)
        sentry_sdk.capture_message(message, level="error")
