"""POST /v1/blockpass/webhooks: signature, events, pings, dedupe, and the sync it triggers."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import pytest
from redis import Redis
from sqlalchemy import select

from kyc.models import Candidate, StatusChange
from worker.hints import Inbox

SECRET = "bp-webhook-secret"
# The documented sample body (docs: Blockpass webhooks), with its ids filled in.
SAMPLE = {
    "guid": "a3c5e6a0-8f1e-4d59-9a57-1d3f2c9d7b11",
    "status": "incomplete",
    "clientId": "acme",
    "event": "user.created",
    "recordId": "5e5884feb785310019346655",
    "refId": "1849-4849-3848-1944",
    "isPing": False,
    "env": "prod",
    "webhookId": None,
}
ON_PREM_APPROVED = {
    **SAMPLE,
    "guid": "b1",
    "status": "approved",
    "event": "review.approved",
    "submitCount": 1,
    "blockPassID": "5fe95a995f8c44000e972445",
    "isArchived": False,
    "inreviewDate": "2018-11-12T10:49:17.973Z",
    "waitingDate": "2018-11-12T10:49:03.017Z",
    "approvedDate": "2018-11-12T11:02:40.311Z",
}


def sign(body: bytes, secret: str = SECRET) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def send(client: Any, payload: Any, signature: str | None = "auto", **headers: str) -> Any:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    if signature == "auto":
        signature = sign(body)
    if signature is not None:
        headers["X-Hub-Signature"] = signature
    return client.post("/v1/blockpass/webhooks", data=body, content_type="application/json", headers=headers)


def queued(redis: Redis) -> int:
    """Syncs waiting to be taken up: hints in the inbox."""
    return Inbox(redis).counts()["hints_pending"]


def test_documented_sample_with_a_valid_signature_queues_a_sync(client: Any, redis: Redis) -> None:
    answer = send(
        client, SAMPLE, **{"X-Blockpass-Event": "user.created", "X-Blockpass-Delivery": SAMPLE["guid"]}
    )
    assert answer.status_code == 200
    assert queued(redis) == 1


def test_on_prem_approved_sample_is_accepted(client: Any, redis: Redis) -> None:
    assert send(client, ON_PREM_APPROVED).status_code == 200
    assert queued(redis) == 1


def test_prefixed_signature_is_accepted_too(client: Any, redis: Redis) -> None:
    body = json.dumps(SAMPLE).encode()
    assert send(client, body, signature="sha256=" + sign(body)).status_code == 200


@pytest.mark.parametrize("signature", [None, "", "0" * 64, "sha256=" + "f" * 64, "not-hex"])
def test_missing_or_wrong_signature_is_refused_and_queues_nothing(
    client: Any, redis: Redis, signature: str | None
) -> None:
    answer = send(client, SAMPLE, signature=signature)
    assert answer.status_code == 401
    assert answer.get_json()["error"]["code"] == "invalid_signature"
    assert queued(redis) == 0


def test_signature_of_other_bytes_is_refused(client: Any, redis: Redis) -> None:
    body = json.dumps(SAMPLE).encode()
    reserialised = json.dumps(SAMPLE, indent=2).encode()  # same JSON, other bytes
    assert send(client, body, signature=sign(reserialised)).status_code == 401


def test_without_a_secret_webhooks_are_accepted(settings: Any, redis: Redis, caplog: Any) -> None:
    from dataclasses import replace

    from service import create_app

    app = create_app(replace(settings, blockpass_webhook_secret=None), redis=redis)
    assert "BLOCKPASS_WEBHOOK_SECRET is not set" in caplog.text
    assert send(app.test_client(), SAMPLE, signature=None).status_code == 200


@pytest.mark.parametrize("header", ["X-Blockpass-Event", "X-Blockpass-Events"])
def test_event_named_by_either_header(client: Any, redis: Redis, header: str) -> None:
    payload = {key: value for key, value in SAMPLE.items() if key != "event"}
    assert send(client, payload, **{header: "user.inReview"}).status_code == 200
    assert queued(redis) == 1


def test_ping_is_answered_and_does_nothing(client: Any, redis: Redis) -> None:
    answer = send(client, {**SAMPLE, "isPing": True})
    assert answer.status_code == 200 and answer.get_json()["ping"] is True
    assert queued(redis) == 0


def test_unknown_event_is_answered_logged_and_counted(client: Any, redis: Redis, app: Any) -> None:
    answer = send(client, {**SAMPLE, "event": "user.teleported"})
    assert answer.status_code == 200
    assert queued(redis) == 0
    metrics = app.extensions["kyc.metrics"]
    metrics.flush()
    assert metrics.counter("kyc_blockpass_webhooks_total", outcome="unknown_event") == 1


def test_unknown_fields_are_fine(client: Any, redis: Redis) -> None:
    assert send(client, {**SAMPLE, "newField": {"nested": [1, 2]}}).status_code == 200


def test_redelivery_is_answered_and_does_nothing(client: Any, redis: Redis, drain: Any) -> None:
    assert send(client, SAMPLE).status_code == 200
    drain(maintain=False)
    answer = send(client, SAMPLE)
    assert answer.status_code == 200 and answer.get_json()["duplicate"] is True
    assert queued(redis) == 0


def test_redelivery_is_recognised_by_the_delivery_header_alone(client: Any, redis: Redis, drain: Any) -> None:
    payload = {key: value for key, value in SAMPLE.items() if key != "guid"}
    send(client, payload, **{"X-Blockpass-Delivery": "d-1"})
    drain(maintain=False)
    assert send(client, payload, **{"X-Blockpass-Delivery": "d-1"}).get_json()["duplicate"] is True


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"{oops", "invalid_json"),
        (b"[1]", "not_an_object"),
        (json.dumps({"event": "user.created"}).encode(), "missing_id"),
    ],
)
def test_bad_bodies_get_the_error_shape(client: Any, redis: Redis, body: bytes, code: str) -> None:
    answer = send(client, body)
    assert answer.status_code == 400
    assert answer.get_json()["error"]["code"] == code
    assert queued(redis) == 0


def test_oversized_webhook_is_refused(client: Any) -> None:
    body = json.dumps({**SAMPLE, "pad": "x" * 70000}).encode()
    assert send(client, body).status_code == 413


def test_blockpass_webhooks_alone_drive_the_whole_lifecycle(
    sandbox: Any, web: str, receiver: Any, drain: Any
) -> None:
    sandbox.bp.set_webhook(f"{web}/v1/blockpass/webhooks", secret=SECRET)
    sandbox.bp.create(refId="user-1")
    sandbox.bp.flush_webhooks()
    drain(until=lambda: len(receiver.received) == 1, maintain=False)
    sandbox.bp.move("user-1", "waiting")
    sandbox.bp.flush_webhooks()
    drain(until=lambda: len(receiver.received) == 2, maintain=False)
    sandbox.bp.move("user-1", "inreview")
    sandbox.bp.move("user-1", "approved")
    sandbox.bp.flush_webhooks()
    drain(until=lambda: len(receiver.received) == 4, maintain=False)
    assert receiver.types() == [
        "candidate.incomplete",
        "candidate.waiting",
        "candidate.inreview",
        "candidate.approved",
    ]


def test_user_deleted_marks_the_candidate_deleted_once_the_api_confirms(
    sandbox: Any, web: str, receiver: Any, drain: Any, db: Any
) -> None:
    sandbox.bp.set_webhook(f"{web}/v1/blockpass/webhooks", secret=SECRET, signature_prefix=True)
    sandbox.bp.create(refId="user-1", status="waiting")
    sandbox.bp.flush_webhooks()
    drain(until=lambda: len(receiver.received) >= 1, maintain=False)
    sandbox.bp.delete("user-1")
    sandbox.bp.flush_webhooks()
    drain(until=lambda: receiver.types()[-1:] == ["candidate.deleted"], maintain=False)
    with db.transaction() as session:
        candidate = session.scalars(select(Candidate)).one()
        assert candidate.status == "deleted" and candidate.next_sync_at is None
        assert (
            session.scalars(select(StatusChange.to_status).order_by(StatusChange.sequence)).all()[-1]
            == "deleted"
        )
