"""One budget for Blockpass API calls, shared by every worker; 429 holds everyone off."""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Any

from redis import Redis

from kyc.budget import BudgetExhausted, CallBudget


def test_workers_sharing_the_budget_never_exceed_it(redis_url: str, redis: Redis) -> None:
    rate, calls_per_worker = 20.0, 15
    taken: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        connection = Redis.from_url(redis_url)  # each worker its own connection, as in separate processes
        budget = CallBudget(connection, rate)
        for _ in range(calls_per_worker):
            budget.acquire()
            seconds, micros = connection.time()
            with lock:
                taken.append(seconds + micros / 1e6)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(taken) == 60  # nothing dropped
    taken.sort()
    start, capacity = taken[0], rate
    for k, at in enumerate(taken):
        # Beyond the first burst, call k cannot come before (k - capacity) / rate seconds in.
        assert at - start >= (k - capacity) / rate - 0.01, (k, at - start)


def test_a_429_holds_every_worker_off(redis_url: str, redis: Redis) -> None:
    first = CallBudget(redis, 100.0)
    other = CallBudget(Redis.from_url(redis_url), 100.0)  # another worker
    first.hold_off(0.5)
    assert other.acquire() >= 0.4  # it waited out the hold-off before taking a token


def test_a_hold_off_is_never_shortened(redis: Redis) -> None:
    budget = CallBudget(redis, 100.0, max_wait=1.0)
    budget.hold_off(5.0)
    budget.hold_off(0.1)
    try:
        budget.acquire()
    except BudgetExhausted as exc:
        assert exc.wait > 4.0
    else:
        raise AssertionError("the longer hold-off was shortened")


def test_a_wait_past_the_limit_gives_the_turn_back(redis: Redis) -> None:
    budget = CallBudget(redis, 100.0, max_wait=1.0)
    budget.hold_off(30.0)
    try:
        budget.acquire()
    except BudgetExhausted as exc:
        assert exc.wait > 1.0
    else:
        raise AssertionError("expected BudgetExhausted")


def test_a_burst_of_callbacks_is_synced_within_the_budget_and_none_dropped(
    ctx: Any, redis: Redis, sandbox: Any, receiver: Any, client: Any, drain: Any
) -> None:
    rate, candidates = 10.0, 40
    ctx.blockpass.budget = CallBudget(redis, rate)
    for n in range(candidates):
        sandbox.state.create(ref_id=f"burst-{n}", status="waiting")
    for n in range(candidates):
        assert client.post("/v1/callbacks", json={"refId": f"burst-{n}"}).status_code == 202
    drain(until=lambda: len(receiver.received) == candidates, maintain=False, timeout=60)
    times = sorted(datetime.fromisoformat(call["at"]).timestamp() for call in sandbox.bp.calls())
    assert len(times) == candidates  # one call each, none dropped, none repeated
    for k, at in enumerate(times):
        assert at - times[0] >= (k - rate) / rate - 0.01, (k, at - times[0])
