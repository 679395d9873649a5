"""Liveness, readiness, metrics and logs, as platforms and operators see them."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from typing import Any

from kyc.logs import JsonFormatter
from service import create_app


def test_healthz_needs_nothing_but_the_process(settings: Any) -> None:
    from redis import Redis

    app = create_app(
        replace(settings, database_url="sqlite:////nonexistent/dir/kyc.db"),
        redis=Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2),
    )
    answer = app.test_client().get("/healthz")
    assert answer.status_code == 200 and answer.get_json() == {"status": "ok"}


def test_readyz_when_database_redis_and_schema_are_fine(client: Any, db: Any) -> None:
    answer = client.get("/readyz")
    assert answer.status_code == 200 and answer.get_json() == {"status": "ready"}


def test_readyz_names_what_is_missing(settings: Any) -> None:
    from redis import Redis

    app = create_app(
        replace(settings, database_url="sqlite:////nonexistent/dir/kyc.db"),
        redis=Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2),
    )
    answer = app.test_client().get("/readyz")
    assert answer.status_code == 503
    error = answer.get_json()["error"]
    assert error["code"] == "not_ready"
    assert "database unreachable" in error["message"] and "redis unreachable" in error["message"]


def test_readyz_refuses_an_unmigrated_database(settings: Any, redis: Any, tmp_path: Any) -> None:
    app = create_app(replace(settings, database_url=f"sqlite:///{tmp_path}/empty.db"), redis=redis)
    answer = app.test_client().get("/readyz")
    assert answer.status_code == 503
    assert "newest migration" in answer.get_json()["error"]["message"]


def test_metrics_add_up_across_web_and_worker(
    client: Any, app: Any, ctx: Any, sandbox: Any, receiver: Any, drain: Any
) -> None:
    sandbox.bp.create(refId="user-1", status="approved")
    client.post("/v1/callbacks", json={"refId": "user-1"})
    client.post("/v1/callbacks", json={"refId": "bad id"})
    drain(until=lambda: len(receiver.received) == 3)
    ctx.metrics.flush()  # the worker's figures, as its flusher would
    text = client.get("/metrics").get_data(as_text=True)
    lines = dict(line.rsplit(" ", 1) for line in text.splitlines() if line and not line.startswith("#"))
    assert lines['kyc_callbacks_total{outcome="accepted"}'] == "1"
    assert lines['kyc_callbacks_total{outcome="rejected",reason="invalid_field"}'] == "1"
    assert lines['kyc_syncs_total{outcome="changed"}'] == "1"
    assert lines['kyc_blockpass_calls_total{code="200",route="refId"}'] == "1"
    assert lines['kyc_transitions_total{from="inreview",to="approved"}'] == "1"
    assert lines['kyc_deliveries_total{outcome="delivered"}'] == "3"
    assert lines['kyc_delivery_seconds_count{outcome="delivered"}'] == "3"
    assert lines['kyc_delivery_seconds_bucket{le="+Inf",outcome="delivered"}'] == "3"
    assert lines['kyc_queue_jobs{state="queued"}'].isdigit()
    assert lines['kyc_queue_jobs{state="hints_pending"}'] == "0"
    assert lines["kyc_deliveries_pending"] == "0"
    assert "# TYPE kyc_blockpass_call_seconds histogram" in text
    assert "user-1" not in text  # no identifiers in labels


def test_oldest_undelivered_event_age_is_exposed(
    client: Any, ctx: Any, sandbox: Any, receiver: Any, drain: Any
) -> None:
    receiver.fail_next(*([500] * 10))
    sandbox.bp.create(refId="user-1", status="waiting")
    client.post("/v1/callbacks", json={"refId": "user-1"})
    drain(until=lambda: len(receiver.arrivals) >= 1)
    text = client.get("/metrics").get_data(as_text=True)
    lines = dict(line.rsplit(" ", 1) for line in text.splitlines() if line and not line.startswith("#"))
    assert lines["kyc_deliveries_pending"] == "1"
    assert float(lines["kyc_oldest_undelivered_event_seconds"]) >= 0


def test_every_answer_carries_a_request_id(client: Any) -> None:
    answer = client.post("/v1/callbacks", json={"refId": "user-1"}, headers={"X-Request-Id": "req-123"})
    assert answer.headers["X-Request-Id"] == "req-123"
    made = client.post("/v1/callbacks", json={"refId": "user-1"}, headers={"X-Request-Id": "bad id!"})
    assert len(made.headers["X-Request-Id"]) == 32


def test_log_lines_are_json_with_the_request_id(client: Any, app: Any) -> None:
    lines: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(JsonFormatter().format(record))

    logger = logging.getLogger("kyc.web")
    handler = Keep()
    logger.addHandler(handler)
    try:

        @app.get("/v1/log-something")
        def log_something() -> str:
            logger.warning("something notable")
            return "ok"

        client.get("/v1/log-something", headers={"X-Request-Id": "req-9"})
    finally:
        logger.removeHandler(handler)
    line = json.loads(lines[-1])
    assert (
        line["message"] == "something notable"
        and line["request_id"] == "req-9"
        and line["level"] == "warning"
    )
