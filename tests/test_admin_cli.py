"""`flask --app service subscribers|deliveries ...`: the admin operations from the box, no ADMIN_TOKEN."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy import func, select

from kyc.db import Database
from kyc.models import Delivery, Subscriber
from kyc.subscribers import CONFIGURED

RETRIES = 3  # the settings fixture's DELIVERY_RETRY_SCHEDULE


@pytest.fixture
def runner(app: Flask, db: Database) -> Iterator[FlaskCliRunner]:
    assert app.extensions["kyc.settings"].admin_token is None
    yield app.test_cli_runner()
    if "kyc.db" in app.extensions:
        app.extensions["kyc.db"].dispose()


def run(runner: FlaskCliRunner, *args: str, status: int = 0, **options: Any) -> Any:
    result = runner.invoke(args=list(args), **options)
    assert result.exit_code == status, result.output
    return json.loads(result.output) if status == 0 and result.output.startswith("{") else result.output


def failed_deliveries(db: Database) -> int:
    with db.transaction() as session:
        query = select(func.count()).select_from(Delivery).where(Delivery.status == "failed")
        return int(session.scalar(query) or 0)


def configured_id(db: Database) -> str:
    with db.transaction() as session:
        return str(session.scalars(select(Subscriber.id).where(Subscriber.source == CONFIGURED)).one())


def test_subscribers_are_managed_from_the_command_line(runner: FlaskCliRunner) -> None:
    created = run(
        runner,
        *("subscribers", "create", "--url", "https://hooks.example/kyc", "--description", "billing"),
        *("--event-type", "candidate.approved", "--event-type", "candidate.rejected", "--rate-limit", "2"),
    )
    ident, secret = str(created["id"]), created["secret"]
    assert secret.startswith("whsec_")
    assert (
        created["eventTypes"] == ["candidate.approved", "candidate.rejected"] and created["rateLimit"] == 2.0
    )

    listed = run(runner, "subscribers", "list")
    assert [item["id"] for item in listed["items"]] == [created["id"]]
    assert secret not in json.dumps(listed)
    assert "secret" not in run(runner, "subscribers", "show", ident)

    disabled = run(runner, "subscribers", "update", ident, "--disable", "--all-events", "--no-rate-limit")
    assert disabled["enabled"] is False and disabled["disabledReason"] == "disabled by an operator"
    assert disabled["eventTypes"] is None and disabled["rateLimit"] is None
    enabled = run(runner, "subscribers", "update", ident, "--enable")
    assert enabled["enabled"] is True and enabled["disabledReason"] is None

    rotated = run(runner, "subscribers", "rotate-secret", ident)
    assert rotated["secret"] != secret and rotated["previousSecretExpiresAt"]

    kept = run(runner, "subscribers", "delete", ident, input="n\n", status=1)
    assert "Aborted" in kept
    assert run(runner, "subscribers", "show", ident)["id"] == created["id"]
    assert run(runner, "subscribers", "delete", ident, "--yes") == {"deleted": created["id"]}
    assert "not_found" in run(runner, "subscribers", "show", ident, status=1)


def test_refusals_exit_with_their_code(runner: FlaskCliRunner) -> None:
    assert "invalid_field" in run(runner, "subscribers", "create", "--url", "ftp://hooks.example", status=1)
    assert "invalid_field" in run(
        runner, "subscribers", "create", "--url", "https://hooks.example", "--secret", "whsec_x", status=1
    )
    assert "nothing to change" in run(runner, "subscribers", "update", "1", status=2)
    assert "not_found" in run(runner, "subscribers", "rotate-secret", "1", status=1)
    assert "not_found" in run(runner, "deliveries", "retry", "1", status=1)
    assert "invalid_field" in run(runner, "deliveries", "recover", "1", "--since", "2026-01-01", status=1)
    assert "invalid_limit" in run(runner, "deliveries", "list", "--limit", "500", status=1)
    assert run(runner, "subscribers", "list") == {"items": []}


def test_failed_deliveries_are_listed_retried_and_recovered(
    runner: FlaskCliRunner, client: Any, sandbox: Any, receiver: Any, db: Database, drain: Any
) -> None:
    started = datetime.now(UTC) - timedelta(seconds=1)
    receiver.fail_next(*[500] * (2 * (RETRIES + 1)))
    for ref_id in ("user-1", "user-2"):
        sandbox.bp.create(refId=ref_id, status="waiting")
        client.post("/v1/callbacks", json={"refId": ref_id})
    drain(until=lambda: failed_deliveries(db) == 2)

    failed = run(runner, "deliveries", "list", "--status", "failed", "--limit", "1")
    assert len(failed["items"]) == 1 and failed["nextCursor"]
    first = failed["items"][0]
    assert run(runner, "deliveries", "show", str(first["id"]))["history"][0]["statusCode"] == 500
    retried = run(runner, "deliveries", "retry", str(first["id"]))
    assert (retried["status"], retried["attempts"]) == ("pending", 0)
    drain(until=lambda: len(receiver.received) == 1)
    assert receiver.received[0].payload["data"]["refId"] == first["refId"]

    since = started.isoformat()
    assert run(runner, "deliveries", "recover", configured_id(db), "--since", since) == {"recovered": 1}
    drain(until=lambda: len(receiver.received) == 2)
    assert run(runner, "deliveries", "list", "--status", "failed")["items"] == []


def test_flask_command_reads_its_settings_from_the_environment(
    database_url: str, redis_url: str, repo_root: Path
) -> None:
    env = {
        **os.environ,
        "BLOCKPASS_CLIENT_ID": "acme",
        "BLOCKPASS_API_KEY": "key",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
    }
    env.pop("ADMIN_TOKEN", None)
    command = [sys.executable, "-m", "flask", "--app", "service", "subscribers", "list"]
    result = subprocess.run(
        command, cwd=repo_root, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "items" in json.loads(result.stdout)
