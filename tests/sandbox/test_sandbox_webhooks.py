"""Blockpass-style webhooks delivered to a real local receiver."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid

from sandbox.testing import Delivery, SandboxClient, WebhookReceiver

SECRET = "whsec-test"


def _verify(delivery: Delivery, prefix: bool) -> None:
    expected = hmac.new(SECRET.encode(), delivery.body, hashlib.sha256).hexdigest()
    assert delivery.headers["X-Hub-Signature"] == (f"sha256={expected}" if prefix else expected)


def test_state_changes_send_documented_events_signed(bp: SandboxClient, receiver: WebhookReceiver) -> None:
    bp.set_webhook(receiver.url, secret=SECRET)
    record_id = bp.create(refId="u")["recordId"]
    for status in ("waiting", "inreview", "review_requested", "approved", "blocked"):
        bp.move("u", status)
    bp.delete("u")
    deliveries = receiver.wait_for(6)
    bodies = [json.loads(d.body) for d in deliveries]
    # review_requested has no documented event, so it sends nothing.
    assert [(b["event"], b["status"]) for b in bodies] == [
        ("user.created", "incomplete"),
        ("user.readyToReview", "waiting"),
        ("user.inReview", "inreview"),
        ("review.approved", "approved"),
        ("user.blocked", "blocked"),
        ("user.deleted", "blocked"),
    ]
    for delivery, body in zip(deliveries, bodies, strict=True):
        _verify(delivery, prefix=False)
        assert delivery.headers["Content-Type"] == "application/json"
        assert delivery.headers["X-Blockpass-Event"] == body["event"]
        assert delivery.headers["X-Blockpass-Delivery"] == body["guid"]
        uuid.UUID(body["guid"])
        assert body["clientId"] == "acme" and body["recordId"] == record_id and body["refId"] == "u"
        assert body["isPing"] is False and body["env"] == "prod" and body["webhookId"] is None
    assert len({b["guid"] for b in bodies}) == 6


def test_rejection_event_and_prefixed_signature(bp: SandboxClient, receiver: WebhookReceiver) -> None:
    bp.set_webhook(receiver.url, secret=SECRET, signature_prefix=True)
    bp.create(refId="u", status="inreview")
    bp.move("u", "rejected")
    deliveries = receiver.wait_for(2)
    assert [json.loads(d.body)["event"] for d in deliveries] == ["user.created", "review.rejected"]
    for delivery in deliveries:
        _verify(delivery, prefix=True)


def test_unsigned_without_secret(bp: SandboxClient, receiver: WebhookReceiver) -> None:
    bp.set_webhook(receiver.url)
    bp.create(refId="u")
    (delivery,) = receiver.wait_for(1)
    assert "X-Hub-Signature" not in delivery.headers


def test_ping(bp: SandboxClient, receiver: WebhookReceiver) -> None:
    assert bp.control("POST", "/webhooks/ping").status_code == 409
    bp.set_webhook(receiver.url, secret=SECRET)
    bp.ping()
    (delivery,) = receiver.wait_for(1)
    body = json.loads(delivery.body)
    assert body["isPing"] is True and body["clientId"] == "acme"
    _verify(delivery, prefix=False)


def test_drop_one_sends_nothing(bp: SandboxClient, receiver: WebhookReceiver) -> None:
    bp.set_webhook(receiver.url, secret=SECRET, drop=1.0)
    bp.create(refId="u")
    bp.move("u", "waiting")
    bp.ping()
    flushed = bp.flush_webhooks()
    assert flushed["idle"] is True
    assert flushed["stats"]["dropped"] == 3 and flushed["stats"]["sent"] == 0
    assert receiver.deliveries == []


def test_delete_webhook_stops_deliveries(bp: SandboxClient, receiver: WebhookReceiver) -> None:
    bp.set_webhook(receiver.url)
    bp.create(refId="u")
    receiver.wait_for(1)
    bp.clear_webhook()
    bp.move("u", "waiting")
    bp.flush_webhooks()
    assert len(receiver.deliveries) == 1


def test_unreachable_receiver_is_ignored(bp: SandboxClient, receiver: WebhookReceiver) -> None:
    url = receiver.url
    receiver.stop()
    bp.set_webhook(url)
    bp.create(refId="u")
    stats = bp.flush_webhooks()["stats"]
    assert stats["failed"] == 1
    assert bp.api("/refId/u").status_code == 200


def test_on_prem_approved_body_adds_record_fields(bp: SandboxClient, receiver: WebhookReceiver) -> None:
    bp.set_webhook(receiver.url, onPrem=True)
    bp.create(refId="u", status="inreview")
    bp.move("u", "approved")
    body = json.loads(receiver.wait_for(2)[1].body)
    assert body["event"] == "review.approved"
    assert {"submitCount", "blockPassID", "isArchived", "inreviewDate", "waitingDate", "approvedDate"} <= set(
        body
    )
