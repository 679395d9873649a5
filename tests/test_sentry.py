"""Errors reach Sentry from the web and the worker, and identity data never does."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
import sentry_sdk
from flask import Flask
from sentry_sdk.envelope import Envelope
from sentry_sdk.integrations.flask import FlaskIntegration
from sentry_sdk.integrations.rq import RqIntegration
from sentry_sdk.transport import Transport

from kyc.db import Database
from kyc.monitoring import init_sentry
from kyc.scrub import FILTERED, scrub
from service import create_app

IDENTITY = {
    "given_name": "Helmer",
    "family_name": "StromanBot",
    "email": "helmer@example.org",
    "dob": "12/31/2016",
    "phone": "+84987543212",
}


class Capture(Transport):
    """Keeps every envelope instead of sending it: no network."""

    envelopes: list[Envelope] = []

    def capture_envelope(self, envelope: Envelope) -> None:
        Capture.envelopes.append(envelope)


def captured_text() -> str:
    sentry_sdk.flush()
    parts = []
    for envelope in Capture.envelopes:
        for item in envelope.items:
            parts.append(item.payload.get_bytes().decode("utf-8", "replace"))
    return "\n".join(parts)


@pytest.fixture
def capture() -> Iterator[type[Capture]]:
    Capture.envelopes = []
    yield Capture
    sentry_sdk.init()  # back to no client


def test_nothing_is_initialised_without_a_dsn(settings: Any) -> None:
    assert init_sentry(settings, []) is False


def test_web_errors_reach_sentry_without_the_request_body_or_locals(
    settings: Any, redis: Any, capture: Any
) -> None:
    app: Flask = create_app(replace(settings, sentry_dsn="https://key@sentry.invalid/1"), redis=redis)
    init_sentry(
        replace(settings, sentry_dsn="https://key@sentry.invalid/1"), [FlaskIntegration()], transport=Capture
    )

    @app.post("/v1/explode")
    def explode() -> str:
        identities = dict(IDENTITY)  # a local variable holding identity data
        raise RuntimeError(f"failed for candidate with {len(identities)} attributes")

    answer = app.test_client().post("/v1/explode", json={"identities": IDENTITY, "refId": "user-1"})
    assert answer.status_code == 500
    assert answer.get_json()["error"]["code"] == "internal_error"
    text = captured_text()
    assert "failed for candidate" in text  # the error itself was reported
    for value in IDENTITY.values():
        assert value not in text


def test_worker_errors_reach_sentry_with_the_refid_tag_and_no_identity_data(
    settings: Any, ctx: Any, sandbox: Any, client: Any, drain: Any, capture: Any, tmp_path: Any
) -> None:
    init_sentry(
        replace(settings, sentry_dsn="https://key@sentry.invalid/1"), [RqIntegration()], transport=Capture
    )
    identities = {name: {"type": "string", "value": value} for name, value in IDENTITY.items()}
    sandbox.bp.create(refId="user-1", status="waiting", identities=identities)
    # A database that cannot be written makes the sync job fail after Blockpass answered with identities.
    ctx.db = Database(f"sqlite:///{tmp_path}/missing/dir/kyc.db")
    client.post("/v1/callbacks", json={"refId": "user-1"})
    drain(until=lambda: "OperationalError" in captured_text(), maintain=False)
    text = captured_text()
    assert "OperationalError" in text
    assert '"refId":"user-1"' in text.replace(" ", "")
    for value in IDENTITY.values():
        assert value not in text


def test_scrubber_reaches_every_depth() -> None:
    nested = {
        "a": [{"b": {"Given-Name": "x", "ok": 1}}],
        "identities": {"dob": "y"},
        "customFields": {"email": "z"},
    }
    cleaned = scrub(nested)
    assert cleaned["a"][0]["b"] == {"Given-Name": FILTERED, "ok": 1}
    assert cleaned["identities"] == FILTERED
    assert cleaned["customFields"] == {"email": FILTERED}
    assert "x" not in json.dumps(cleaned)
