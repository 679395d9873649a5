"""The OpenAPI description (service/openapi.json): valid OpenAPI 3.1, complete, and true of the running app.

The last test serves the app over real HTTP on loopback, with the admin API on and a database holding
candidates, events and a failed delivery, and lets schemathesis fuzz every operation: no answer may be
a 5xx, and every answer's status code, content type, headers and body must be the documented ones.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, replace
from importlib.metadata import version
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from flask import Flask
from redis import Redis
from schemathesis.core.result import Ok
from sqlalchemy import func, select

from kyc.config import Settings
from kyc.db import Database
from kyc.models import Delivery
from sandbox import start_background
from service import create_app

TOKEN = "o" * 40
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    # A method a path does not have: 405 with Allow.
    "unsupported_method",
)
# Per operation and phase: with 18 operations (OPTIONS is not fuzzed), each database's run takes about
# 30 s on 2 cores.
MAX_EXAMPLES = int(os.environ.get("KYC_SCHEMATHESIS_EXAMPLES", "50"))
SEED = os.environ.get("KYC_SCHEMATHESIS_SEED", "20261127")
RUN_TIMEOUT = 240
IMPLICIT = {"HEAD", "OPTIONS"}


def document() -> dict[str, Any]:
    return dict(json.loads(files("service").joinpath("openapi.json").read_text()))


def template(path: str) -> str:
    """A route or a documented path with its variables unnamed: /v1/subscribers/{} for both styles."""
    return re.sub(r"<[^>]+>|\{[^}]+\}", "{}", path)


def admin_app() -> Flask:
    """The app with every route registered; nothing is connected until a request needs it."""
    settings = Settings(
        blockpass_client_id="acme",
        blockpass_api_key="key",
        redis_url="redis://127.0.0.1:1/0",
        database_url="sqlite:///:memory:",
        admin_token=TOKEN,
    )
    return create_app(settings, redis=Redis.from_url(settings.redis_url, socket_connect_timeout=0.2))


def test_the_document_is_valid_openapi_3_1() -> None:
    described = document()
    assert described["openapi"].startswith("3.1.")
    assert described["info"]["version"] == version("kyc-relay")
    schema = schemathesis.openapi.from_dict(described)
    schema.validate()  # against the OpenAPI 3.1 meta-schema
    operations = list(schema.get_all_operations())
    assert all(isinstance(result, Ok) for result in operations)
    assert len(operations) == sum(
        1 for item in described["paths"].values() for method in item if method != "parameters"
    )


def test_every_route_is_described_and_every_description_is_a_route() -> None:
    app = admin_app()
    routes = {
        (template(rule.rule), method)
        for rule in app.url_map.iter_rules()
        if rule.endpoint != "static"
        for method in (rule.methods or set()) - IMPLICIT
    }
    described = {
        (template(path), method.upper())
        for path, item in document()["paths"].items()
        for method in item
        if method.upper() not in IMPLICIT
    }
    assert routes - described == set(), "routes missing from service/openapi.json"
    assert described - routes == set(), "described operations the app does not have"


def test_every_admin_operation_needs_the_bearer_token() -> None:
    described = document()
    scheme = described["components"]["securitySchemes"]["bearerAuth"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    for path, item in described["paths"].items():
        for method, operation in item.items():
            is_admin = path.startswith(("/v1/subscribers", "/v1/candidates", "/v1/deliveries"))
            assert (operation.get("security") == [{"bearerAuth": []}]) == is_admin, (method, path)
            if is_admin:
                assert "401" in operation["responses"], (method, path)
            assert "500" in operation["responses"], (method, path)


def test_the_document_is_served_as_it_is_kept() -> None:
    answer = admin_app().test_client().get("/openapi.json")
    assert answer.status_code == 200 and answer.mimetype == "application/json"
    assert answer.get_json() == document()


def described_path(target: str) -> str:
    """The document's path for a concrete one: /v1/subscribers/{subscriberId} for /v1/subscribers/1."""
    path = target.partition("?")[0]
    for described in document()["paths"]:
        if re.fullmatch(re.sub(r"\{[^}]+\}", "[^/]+", described), path):
            return str(described)
    raise AssertionError(f"{path} is not described")


def documented_codes(path: str, method: str, status: int) -> list[str]:
    """The error codes the document gives for one answer of one operation."""
    described = document()
    answer = described["paths"][path][method.lower()]["responses"][str(status)]
    if "$ref" in answer:
        answer = described["components"]["responses"][answer["$ref"].rsplit("/", 1)[1]]
    schema = answer["content"]["application/json"]["schema"]
    return list(schema["properties"]["error"]["properties"]["code"]["enum"])


@pytest.fixture
def admin(settings: Settings, redis: Redis, db: Database) -> Iterator[Any]:
    app = create_app(replace(settings, admin_token=TOKEN, blockpass_webhook_secret=None), redis=redis)
    yield app.test_client()
    if "kyc.db" in app.extensions:
        app.extensions["kyc.db"].dispose()


DEEP = "[" * 15000
HUGE = "1" * 5000
URL = "https://hooks.example/kyc"


# Inputs that answered 500, or an answer the document does not describe, on SQLite, PostgreSQL or both.
@pytest.mark.parametrize(
    ("method", "target", "data", "status", "code"),
    [
        # Nested too deep for the JSON parser, and a number over Python's 4300 digits.
        ("POST", "/v1/callbacks", DEEP, 400, "invalid_json"),
        ("POST", "/v1/callbacks", HUGE, 400, "invalid_json"),
        ("POST", "/v1/blockpass/webhooks", DEEP, 400, "invalid_json"),
        ("POST", "/v1/subscribers", DEEP, 400, "invalid_json"),
        # An event that is not a string.
        ("POST", "/v1/blockpass/webhooks", '{"event": ["user.created"], "refId": "u"}', 200, None),
        ("POST", "/v1/blockpass/webhooks", '{"event": {"a": 1}, "refId": "u"}', 200, None),
        # Werkzeug's own 413 keeps the documented code.
        ("POST", "/v1/subscribers", "{" * 70000, 413, "payload_too_large"),
        # A rate limit too large for a float; text no database stores.
        ("POST", "/v1/subscribers", f'{{"url": "{URL}", "rateLimit": 1{"0" * 400}}}', 400, "invalid_field"),
        ("POST", "/v1/subscribers", f'{{"url": "{URL}", "description": "a\\u0000b"}}', 400, "invalid_field"),
        ("POST", "/v1/subscribers", f'{{"url": "{URL}", "description": "a\\ud800b"}}', 400, "invalid_field"),
        ("POST", "/v1/subscribers", f'{{"url": "{URL}\\u0000"}}', 400, "invalid_field"),
        ("PATCH", "/v1/subscribers/1", '{"url": "https://h.example/\\udfff"}', 400, "invalid_field"),
        ("GET", "/v1/candidates/a%00b", "", 404, "not_found"),
        ("GET", "/v1/candidates?status=a%00b", "", 400, "invalid_status"),
        # A time whose UTC equivalent is out of range.
        ("POST", "/v1/subscribers/1/recover", '{"since": "0001-01-01T00:00:00+01:00"}', 400, "invalid_field"),
        ("POST", "/v1/subscribers/1/recover", '{"since": "9999-12-31T23:59:59-01:00"}', 400, "invalid_field"),
    ],
)
def test_awkward_inputs_get_documented_answers(
    admin: Any, method: str, target: str, data: str, status: int, code: str | None
) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    answer = admin.open(target, method=method, data=data, content_type="application/json", headers=headers)
    assert answer.status_code == status, answer.get_data(as_text=True)
    path = described_path(target)
    assert str(status) in document()["paths"][path][method.lower()]["responses"]
    if code is not None:
        assert answer.get_json()["error"]["code"] == code
        assert code in documented_codes(path, method, status)


def test_a_method_a_path_lacks_gets_405_with_allow(admin: Any) -> None:
    answer = admin.put("/v1/callbacks")
    assert answer.status_code == 405
    assert sorted(answer.headers["Allow"].split(", ")) == ["OPTIONS", "POST"]
    assert answer.get_json()["error"]["code"] == "method_not_allowed"


# The running app, fuzzed


@dataclass
class Served:
    url: str
    # What the database holds, for the fuzzer to name now and then: random ids rarely exist.
    delivery_ids: list[int]
    ref_ids: list[str]


def failed_deliveries(db: Database) -> int:
    with db.transaction() as session:
        return int(session.scalar(select(func.count()).where(Delivery.status == "failed")) or 0)


@pytest.fixture
def served(
    settings: Settings,
    redis: Redis,
    db: Database,
    ctx: Any,
    drain: Any,
    sandbox: Any,
    receiver: Any,
    caplog: pytest.LogCaptureFixture,
) -> Iterator[Served]:
    """The admin-enabled app on a loopback port, over a database with candidates, their history and
    events, and delivered and failed deliveries.

    Blockpass webhooks are accepted unsigned here, so the fuzzer reaches their parsing; the signature
    check has its own tests.
    """
    caplog.set_level(logging.WARNING, logger="werkzeug")  # not a line per request
    app = create_app(replace(settings, admin_token=TOKEN, blockpass_webhook_secret=None), redis=redis)
    client = app.test_client()

    def callback(ref_id: str) -> None:
        assert client.post("/v1/callbacks", json={"refId": ref_id}).status_code == 202

    sandbox.bp.create(refId="user-1", status="waiting", customFields={"RiskLevel": "Low"})
    callback("user-1")
    drain(until=lambda: len(receiver.received) == 1)
    sandbox.bp.move("user-1", "inreview")
    callback("user-1")
    drain(until=lambda: len(receiver.received) == 2)
    receiver.fail_next(*[500] * (len(settings.delivery_retry_schedule) + 1))
    sandbox.bp.create(refId="user-2", status="waiting")
    callback("user-2")
    drain(until=lambda: failed_deliveries(db) == 1)
    with db.transaction() as session:
        delivery_ids = list(session.scalars(select(Delivery.id).order_by(Delivery.id)))
    with start_background(app) as server:
        yield Served(server.url, delivery_ids, ["user-1", "user-2"])
    if "kyc.db" in app.extensions:
        app.extensions["kyc.db"].dispose()


def test_the_running_app_answers_as_documented(served: Served, tmp_path: Path) -> None:
    config = tmp_path / "schemathesis.toml"
    config.write_text(
        f"""
[dictionaries.deliveries]
values = {json.dumps(served.delivery_ids)}

[dictionaries.candidates]
values = {json.dumps(served.ref_ids)}

[parameters]
"path.deliveryId" = {{ dictionary = "deliveries", probability = 0.5 }}
"path.refId" = {{ dictionary = "candidates", probability = 0.5 }}
"""
    )
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--config-file",
        str(config),
        "--no-color",
        "run",
        f"{served.url}/openapi.json",
        "--checks",
        ",".join(CHECKS),
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        SEED,
        "--header",
        f"Authorization: Bearer {TOKEN}",
        # One worker: hypothesis's lambda descriptions are not thread-safe on Python 3.11.
        "--workers",
        "1",
        "--request-timeout",
        "10",
        "--generation-database",
        "none",
        "--output-truncate",
        "false",
    ]
    # Only loopback: no proxy in between, whatever the environment says.
    env = {**os.environ, "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}
    result = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False
    )
    print(result.stdout[-6000:])  # the summary, shown with -rP
    assert result.returncode == 0, (
        f"schemathesis found problems:\n{result.stdout[-20000:]}\n{result.stderr[-4000:]}"
    )
