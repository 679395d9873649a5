"""What jobs share within one worker process: settings, database, HTTP pools, Redis.

Built once per process on first use, so connection pools outlive single jobs.
"""

from __future__ import annotations

import logging
import random
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from redis import Redis

from kyc.blockpass import BlockpassClient
from kyc.budget import CallBudget
from kyc.config import Settings, load_settings
from kyc.db import Database
from kyc.metrics import Metrics
from kyc.sender import Sender
from worker.dispatch import Dispatcher

if TYPE_CHECKING:
    from worker.delivering import DeliveryPool
    from worker.syncer import SyncPool

log = logging.getLogger("kyc.worker")


@dataclass
class Context:
    settings: Settings
    db: Database
    redis: Redis
    blockpass: BlockpassClient
    sender: Sender
    dispatch: Dispatcher
    rng: random.Random
    metrics: Metrics
    pool: DeliveryPool | None = None
    sync_pool: SyncPool | None = None

    def deliveries(self) -> DeliveryPool:
        """The delivery pool, started on first use (a web process never needs one)."""
        from worker.delivering import DeliveryPool

        with _lock:
            if self.pool is None:
                self.pool = DeliveryPool(self)
            return self.pool

    def syncs(self) -> SyncPool:
        """The sync pool, started on first use."""
        from worker.syncer import SyncPool

        with _lock:
            if self.sync_pool is None:
                self.sync_pool = SyncPool(self)
            return self.sync_pool

    def shutdown_pools(self) -> None:
        """Let syncs finish first (they hand deliveries on), then deliveries."""
        if self.sync_pool is not None:
            self.sync_pool.shutdown()
        if self.pool is not None:
            self.pool.shutdown()


_current: Context | None = None
_lock = threading.Lock()


def build(settings: Settings, redis: Redis | None = None) -> Context:
    connection = redis if redis is not None else Redis.from_url(settings.redis_url, **redis_options(settings))
    metrics = Metrics(connection)

    def observe_call(route: str, code: str, seconds: float) -> None:
        metrics.incr("kyc_blockpass_calls_total", route=route, code=code)
        metrics.observe("kyc_blockpass_call_seconds", seconds, route=route)

    return Context(
        settings=settings,
        db=Database(settings.database_url),
        redis=connection,
        blockpass=BlockpassClient(
            settings.blockpass_api_url,
            settings.blockpass_client_id,
            settings.blockpass_api_key,
            budget=CallBudget(connection, settings.blockpass_rate_limit),
            observe=observe_call,
        ),
        sender=Sender(settings.delivery_timeout, settings.allow_private_destinations),
        dispatch=Dispatcher(connection, settings.job_retry_schedule, settings.sync_lease),
        rng=random.Random(),
        metrics=metrics,
    )


def redis_options(settings: Settings) -> dict[str, object]:
    options: dict[str, object] = {"health_check_interval": 30, "socket_keepalive": True}
    if settings.redis_url.startswith("rediss://"):
        # Heroku Redis presents a self-signed chain; the link is still encrypted.
        options["ssl_cert_reqs"] = None
    return options


def install(context: Context) -> None:
    global _current
    with _lock:
        _current = context


def current() -> Context:
    global _current
    with _lock:
        if _current is None:
            _current = build(load_settings())
        return _current


def utcnow() -> datetime:
    return datetime.now(UTC)
