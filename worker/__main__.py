"""`python -m worker`: the worker process (RQ worker and its scheduler, the hint pump feeding the sync pool,
and the maintenance ticker)."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
from types import FrameType

from redis import Redis
from redis.exceptions import RedisError
from rq import get_current_job
from sentry_sdk.integrations.rq import RqIntegration

from kyc import logs, subscribers
from kyc.config import ConfigError, load_settings
from kyc.monitoring import init_sentry
from worker import context
from worker.dispatch import QUEUE_NAME
from worker.reporting import report_abandoned
from worker.runner import RelayWorker
from worker.syncer import pump

log = logging.getLogger("kyc.worker")

# Waits before starting the RQ worker again after it stopped without being asked (Redis went away).
FIRST_RESTART_WAIT = 1.0
MAX_RESTART_WAIT = 30.0
# A worker that ran this long was healthy: the next restart waits FIRST_RESTART_WAIT again.
HEALTHY_RUN = 60.0
POLL = 0.2
# The pump blocks on Redis for at most a second between looks at its stop flag.
PUMP_STOP = 10.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m worker", description=__doc__)
    parser.add_argument("--burst", action="store_true", help="work until the queue is empty, then exit")
    args = parser.parse_args(argv)
    logs.configure()
    logs.add_context_provider(_job_context)
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"kyc-relay worker: configuration error: {exc}", file=sys.stderr)
        return 2
    init_sentry(settings, [RqIntegration()])
    ctx = context.build(settings)
    context.install(ctx)
    subscribers.sync_configured(ctx.db, settings, context.utcnow())
    stopping = threading.Event()
    _guard_signals(stopping)
    stop = threading.Event()
    ticker = threading.Thread(target=_tick, args=(ctx, stop), name="maintenance-ticker", daemon=True)
    ticker.start()
    # A connection of its own: the pump blocks on it while the inbox is empty.
    blocking = Redis.from_url(settings.redis_url, **context.redis_options(settings))
    pumper = threading.Thread(
        target=pump, args=(ctx, ctx.syncs(), stop, blocking), name="hint-pump", daemon=True
    )
    pumper.start()
    try:
        if args.burst:
            _worker(ctx, stopping).work(burst=True, with_scheduler=True, logging_level="INFO")
        else:
            _work(ctx, stopping)
    finally:
        # No new syncs; those in flight finish (and hand their deliveries on), then the attempts in flight.
        # A claimed hint left unfinished goes back to the inbox when its lease runs out.
        stop.set()
        pumper.join(PUMP_STOP)
        ctx.shutdown_pools()
    return 0


def _worker(ctx: context.Context, stopping: threading.Event) -> RelayWorker:
    return RelayWorker(
        [QUEUE_NAME],
        connection=ctx.redis,
        heartbeat=ctx.settings.maintenance_interval,
        stopping=stopping,
        exception_handlers=[report_abandoned],
    )


def _job_context() -> dict[str, str]:
    job = get_current_job()
    return {"job_id": job.id, "job": job.func_name or ""} if job is not None else {}


def _work(ctx: context.Context, stopping: threading.Event) -> None:
    """Run RQ workers one after the other until SIGTERM or SIGINT.

    RQ's worker rides out a Redis outage while it waits for a job, but leaves its loop
    when Redis fails anywhere else (running a job, a heartbeat, its bookkeeping), and
    cannot start while Redis is away. Either way this waits until Redis answers and
    starts a fresh worker, so the process survives a Redis restart or failover.
    """
    wait = FIRST_RESTART_WAIT
    while not stopping.is_set():
        started = time.monotonic()
        worker: RelayWorker | None = None
        try:
            worker = _worker(ctx, stopping)
            worker.work(with_scheduler=True, logging_level="INFO")
            problem = "left its loop"
        except RedisError as exc:
            problem = f"lost Redis ({type(exc).__name__})"
        finally:
            # RQ's handlers stay installed after its loop and call Redis: ours until the next worker's.
            _guard_signals(stopping)
            if worker is not None:
                worker.release()
        if stopping.is_set():
            return
        if time.monotonic() - started > HEALTHY_RUN:
            wait = FIRST_RESTART_WAIT
        log.warning("the RQ worker %s; starting again once Redis answers (in %.0f s or more)", problem, wait)
        _pause(stopping, wait)
        _wait_for_redis(ctx, stopping, wait)
        wait = min(wait * 2, MAX_RESTART_WAIT)


def _wait_for_redis(ctx: context.Context, stopping: threading.Event, every: float) -> None:
    while not stopping.is_set():
        try:
            ctx.redis.ping()
            return
        except RedisError as exc:
            log.warning("Redis does not answer (%s); trying again in %.0f s", type(exc).__name__, every)
        _pause(stopping, every)
        every = min(every * 2, MAX_RESTART_WAIT)


def _pause(stopping: threading.Event, seconds: float) -> None:
    # Polls is_set() rather than stopping.wait(): the signal handler sets the event on this
    # thread, and would deadlock on the lock that wait() holds at the moment the signal lands.
    deadline = time.monotonic() + seconds
    while not stopping.is_set() and time.monotonic() < deadline:
        time.sleep(min(POLL, max(0.0, deadline - time.monotonic())))


def _guard_signals(stopping: threading.Event) -> None:
    """SIGTERM and SIGINT while no RQ worker runs: remember the stop; the next worker honours it."""

    def handle(_signum: int, _frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)


def _tick(ctx: context.Context, stop: threading.Event) -> None:
    """Ask for a maintenance pass every MAINTENANCE_INTERVAL; all workers' requests coalesce into one job."""
    failing = False
    while not stop.wait(ctx.settings.maintenance_interval):
        try:
            ctx.dispatch.request_maintenance()
        except RedisError as exc:  # Redis may be away for a while; the next tick tries again
            if not failing:
                log.warning("could not request a maintenance pass (%s); retrying", type(exc).__name__)
            failing = True
            continue
        except Exception:
            log.warning("could not request a maintenance pass", exc_info=True)
            continue
        if failing:
            log.info("maintenance passes requested again")
            failing = False


if __name__ == "__main__":
    sys.exit(main())
