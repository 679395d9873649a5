"""What platforms and operators poll: liveness, readiness, metrics."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from flask import Blueprint, Response, current_app, jsonify
from redis import Redis
from sqlalchemy import func, select, text

from kyc import migrate
from kyc.db import Database
from kyc.delivery_policy import PENDING
from kyc.metrics import Metrics
from kyc.models import Delivery
from kyc.prometheus import render
from service.database import database
from service.errors import ApiError
from worker.dispatch import queue_depths

log = logging.getLogger("kyc.web")

operations = Blueprint("operations", __name__)


@operations.get("/healthz")
def healthz() -> Response:
    """The process is up. Touches nothing else, so a database outage does not get it restarted."""
    return jsonify(status="ok")


@operations.get("/readyz")
def readyz() -> Response:
    """Ready for traffic: database and Redis reachable, schema at the newest migration."""
    db = database(current_app)
    redis: Redis = current_app.extensions["kyc.redis"]
    problems = []
    try:
        with db.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        if not migrate.is_current(db.engine):
            problems.append("database schema is not at the newest migration (run the release step)")
    except Exception as exc:
        log.warning("readiness: database unavailable (%s)", type(exc).__name__)
        problems.append("database unreachable")
    try:
        redis.ping()
    except Exception as exc:
        log.warning("readiness: Redis unavailable (%s)", type(exc).__name__)
        problems.append("redis unreachable")
    if problems:
        raise ApiError(503, "not_ready", "; ".join(problems))
    return jsonify(status="ready")


@operations.get("/metrics")
def metrics() -> Response:
    """Every process's figures (they meet in Redis), plus queue depths and delivery backlog."""
    store: Metrics = current_app.extensions["kyc.metrics"]
    store.flush()
    counters, histograms = store.stored()
    gauges: dict[str, float] = {}
    redis: Redis = current_app.extensions["kyc.redis"]
    for state, count in queue_depths(redis).items():
        gauges[f'kyc_queue_jobs{{state="{state}"}}'] = count
    gauges.update(_backlog(database(current_app)))
    return Response(render(counters, histograms, gauges), mimetype="text/plain; version=0.0.4")


def _backlog(db: Database) -> dict[str, float]:
    with db.sessions() as session:
        pending, oldest = session.execute(
            select(func.count(), func.min(Delivery.created_at)).where(Delivery.status == PENDING)
        ).one()
    age = 0.0
    if oldest is not None:
        oldest = oldest if oldest.tzinfo else oldest.replace(tzinfo=UTC)
        age = max(0.0, (datetime.now(UTC) - oldest).total_seconds())
    return {"kyc_deliveries_pending": float(pending), "kyc_oldest_undelivered_event_seconds": round(age, 3)}
