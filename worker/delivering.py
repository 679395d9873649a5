"""Delivery attempts, run on a pool of threads inside the worker process.

The RQ job only hands a delivery over; the attempt runs on the pool, so a slow
or dead subscriber holds one thread for at most DELIVERY_TIMEOUT, never the
worker, and at most PER_SUBSCRIBER of them. The database lease, not RQ, is what
makes an attempt happen at least once: if the process dies mid-attempt, the
lease runs out and the maintenance pass hands the delivery again.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from kyc import outbox
from kyc.budget import BudgetExhausted, CallBudget
from kyc.delivery_policy import DeliveryPolicy
from kyc.signing import signature_headers
from worker.context import Context, utcnow
from worker.pools import WorkPool

log = logging.getLogger("kyc.worker")

THREADS = 32
# Deliveries a worker accepts beyond its busy threads before the RQ job waits (backpressure).
BACKLOG = 64
# Concurrent attempts per subscriber per worker process: one slow receiver cannot take every thread.
PER_SUBSCRIBER = 8
BUSY_RETRY = 1.0  # seconds before a delivery turned away for a busy subscriber is tried again


class DeliveryPool(WorkPool):
    def __init__(self, ctx: Context, threads: int = THREADS) -> None:
        super().__init__("delivery", threads, BACKLOG)
        self.ctx = ctx
        self.busy: dict[int, int] = {}
        self.budgets: dict[int, CallBudget] = {}

    def submit_delivery(self, delivery_id: int) -> None:
        self.submit(lambda: attempt(self.ctx, delivery_id, self), f"delivery {delivery_id}")

    def enter(self, subscriber_id: int) -> bool:
        with self.lock:
            if self.busy.get(subscriber_id, 0) >= PER_SUBSCRIBER:
                return False
            self.busy[subscriber_id] = self.busy.get(subscriber_id, 0) + 1
            return True

    def leave(self, subscriber_id: int) -> None:
        with self.lock:
            self.busy[subscriber_id] -= 1

    def budget(self, subscriber_id: int, rate: float) -> CallBudget:
        budget = self.budgets.get(subscriber_id)
        if budget is None or budget.rate != rate:
            budget = CallBudget(self.ctx.redis, rate, max_wait=0.0, name=f"subscriber:{subscriber_id}")
            self.budgets[subscriber_id] = budget
        return budget


def attempt(ctx: Context, delivery_id: int, pool: DeliveryPool) -> str:
    """One attempt of one delivery; schedules the retry or frees the next in its stream."""
    settings = ctx.settings
    claimed = outbox.claim(
        ctx.db, delivery_id, utcnow(), timedelta(seconds=settings.delivery_timeout * 2 + 30)
    )
    if claimed is None:
        return "not-claimed"
    if isinstance(claimed, outbox.NotYet):
        ctx.dispatch.hand_delivery(delivery_id, delay=claimed.seconds)
        return "not-yet"
    wait = _turned_away(pool, claimed)
    if wait is not None:
        outbox.release(ctx.db, delivery_id, wait, utcnow())
        ctx.dispatch.hand_delivery(delivery_id, delay=wait)
        return "later"
    try:
        headers = signature_headers(claimed.event_id, claimed.body, claimed.secrets, utcnow())
        response = ctx.sender.post(claimed.url, claimed.body, headers)
    finally:
        pool.leave(claimed.subscriber_id)
    policy = DeliveryPolicy(
        settings.delivery_retry_schedule, timedelta(seconds=settings.delivery_disable_after)
    )
    result = outbox.finish(ctx.db, claimed, response, utcnow(), policy, ctx.rng)
    outcome = "delivered" if response.delivered else ("retry" if result.status == "pending" else "failed")
    ctx.metrics.incr("kyc_deliveries_total", outcome=outcome)
    ctx.metrics.observe("kyc_delivery_seconds", response.duration_ms / 1000, outcome=outcome)
    log.info(
        "delivery=%s subscriber=%s status=%s code=%s ms=%s",
        delivery_id,
        claimed.subscriber_id,
        result.status,
        response.status_code,
        response.duration_ms,
    )
    if result.retry_in is not None:
        ctx.dispatch.hand_delivery(delivery_id, delay=max(result.retry_in, 1.0))
    if result.next_delivery_id is not None:
        ctx.dispatch.hand_delivery(result.next_delivery_id)
    return result.status


def _turned_away(pool: DeliveryPool, claimed: outbox.Claim) -> float | None:
    """Seconds to wait when the subscriber is at its concurrency or rate cap; None to go ahead."""
    if not pool.enter(claimed.subscriber_id):
        return BUSY_RETRY
    if claimed.rate_limit:
        try:
            pool.budget(claimed.subscriber_id, claimed.rate_limit).acquire()
        except BudgetExhausted as exc:
            pool.leave(claimed.subscriber_id)
            return max(exc.wait, 0.05)
    return None
