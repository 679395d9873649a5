"""`python -m worker`: the worker process (RQ worker, its scheduler and the maintenance ticker)."""

from __future__ import annotations

import argparse
import logging
import sys
import threading

from sentry_sdk.integrations.rq import RqIntegration

from kyc import subscribers
from kyc.config import ConfigError, load_settings
from kyc.monitoring import init_sentry
from worker import context
from worker.dispatch import QUEUE_NAME
from worker.runner import RelayWorker

log = logging.getLogger("kyc.worker")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m worker", description=__doc__)
    parser.add_argument("--burst", action="store_true", help="work until the queue is empty, then exit")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"kyc-relay worker: configuration error: {exc}", file=sys.stderr)
        return 2
    init_sentry(settings, [RqIntegration()])
    ctx = context.build(settings)
    context.install(ctx)
    subscribers.sync_configured(ctx.db, settings, context.utcnow())
    stop = threading.Event()
    ticker = threading.Thread(target=_tick, args=(ctx, stop), name="maintenance-ticker", daemon=True)
    ticker.start()
    worker = RelayWorker([QUEUE_NAME], connection=ctx.redis)
    try:
        worker.work(burst=args.burst, with_scheduler=True, logging_level="INFO")
    finally:
        stop.set()
        if ctx.pool is not None:
            ctx.pool.shutdown()
    return 0


def _tick(ctx: context.Context, stop: threading.Event) -> None:
    """Ask for a maintenance pass every MAINTENANCE_INTERVAL; all workers' requests coalesce into one job."""
    while not stop.wait(ctx.settings.maintenance_interval):
        try:
            ctx.dispatch.request_maintenance()
        except Exception:  # Redis may be away for a while; the next tick tries again
            log.warning("could not request a maintenance pass", exc_info=True)


if __name__ == "__main__":
    sys.exit(main())
