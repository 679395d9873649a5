"""Syncs, run on a pool of threads inside the worker process and fed from the hint inbox.

A pump thread claims hints as the pool has room; each sync fetches the
candidate from Blockpass, records what changed, and hands the new deliveries
straight to the delivery pool (no second queue round trip). Two hints for one
candidate never run at once in a process: the second waits for the first.
"""

from __future__ import annotations

import logging
import threading

import sentry_sdk
from redis import Redis

from kyc import syncing
from kyc.blockpass import Answer, Outcome
from worker.context import Context, utcnow
from worker.dispatch import DELETED_CAUSE
from worker.hints import Hint
from worker.pools import WorkPool

log = logging.getLogger("kyc.worker")

THREADS = 32
BACKLOG = 32
IDLE_WAIT = 1.0  # seconds a pump waits for a wake-up before looking again


class SyncPool(WorkPool):
    def __init__(self, ctx: Context, threads: int = THREADS) -> None:
        super().__init__("sync", threads, BACKLOG)
        self.ctx = ctx
        self.running: set[str] = set()
        self.again: dict[str, Hint] = {}

    def submit_hint(self, hint: Hint) -> None:
        with self.lock:
            if hint.key in self.running:
                # Runs once more when the sync in flight is done: it may have fetched before the news.
                self.again[hint.key] = hint
                return
            self.running.add(hint.key)
        self.submit(lambda: self._sync(hint), "sync")

    def pump_once(self) -> int:
        """Claim as many hints as there is room for and start them; returns how many."""
        hints = self.ctx.dispatch.inbox.claim(min(self.free(), 100))
        for hint in hints:
            self.submit_hint(hint)
        return len(hints)

    def _sync(self, hint: Hint) -> None:
        try:
            outcome = sync(self.ctx, hint.ref_id, hint.record_id, hint.attempt, hint.cause)
        except Exception:
            # Reported by the pool. The hint stays leased, and the maintenance pass
            # puts it back in the inbox when SYNC_LEASE runs out: retried, not lost.
            self.ctx.metrics.incr("kyc_syncs_total", outcome="error")
            raise
        else:
            self.ctx.metrics.incr("kyc_syncs_total", outcome=outcome.split(":")[0])
            self.ctx.dispatch.inbox.done(hint)
        finally:
            with self.lock:
                self.running.discard(hint.key)
                follow = self.again.pop(hint.key, None)
            if follow is not None:
                self.ctx.dispatch.request_sync(follow.ref_id, follow.record_id, cause=follow.cause)


def pump(ctx: Context, pool: SyncPool, stop: threading.Event, blocking: Redis) -> None:
    """Feed the pool from the inbox until `stop`: claim while there is work and room, else wait."""
    while not stop.is_set():
        try:
            if pool.free() == 0:
                pool.wait_idle(0.05)
                continue
            if pool.pump_once() == 0:
                ctx.dispatch.inbox.wait(IDLE_WAIT, blocking)
        except Exception:  # Redis away for a while: try again shortly
            log.warning("hint pump: Redis unavailable; retrying", exc_info=True)
            stop.wait(1.0)


def sync(ctx: Context, ref_id: str | None, record_id: str | None, attempt: int, cause: str) -> str:
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


def _hand_all(ctx: Context, delivery_ids: list[int]) -> None:
    # Straight to this process's delivery pool; the database lease covers a crash.
    pool = ctx.deliveries()
    for delivery_id in delivery_ids:
        pool.submit_delivery(delivery_id)


def _alert_once(ctx: Context, name: str, message: str, every: int = 3600) -> None:
    """Report a configuration problem once an hour across all workers, not once per job."""
    if ctx.redis.set(f"kyc:alerted:{name}", "1", nx=True, ex=every):
        log.error(message)
        sentry_sdk.capture_message(message, level="error")
