"""POST /v1/blockpass/webhooks: Blockpass says a candidate changed; we go and look.

The signature is checked on the raw bytes before anything is parsed. The body
is a hint like a widget callback: it triggers the same coalesced sync, and the
API's answer is the truth. Answered within milliseconds: only Redis is touched.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request
from redis.exceptions import RedisError

from kyc import hub_signature
from kyc.config import Settings
from kyc.metrics import Metrics
from service.bodies import json_object, read_limited
from service.errors import ApiError
from worker.dispatch import Dispatcher

log = logging.getLogger("kyc.web")

MAX_BODY = 64 * 1024
# The seven documented events. Each triggers a sync; the API says what happened.
EVENTS = frozenset(
    {
        "user.created",
        "user.readyToReview",
        "user.inReview",
        "review.approved",
        "review.rejected",
        "user.blocked",
        "user.deleted",
    }
)
# Blockpass retries are not documented; a day covers any sane retry policy.
DEDUPE_SECONDS = 48 * 3600
MAX_ID = 256

blockpass_webhooks = Blueprint("blockpass_webhooks", __name__)


@blockpass_webhooks.post("/v1/blockpass/webhooks")
def receive() -> tuple[Response, int]:
    settings: Settings = current_app.extensions["kyc.settings"]
    metrics: Metrics = current_app.extensions["kyc.metrics"]
    raw = read_limited(MAX_BODY)
    if settings.blockpass_webhook_secret and not hub_signature.verify(
        settings.blockpass_webhook_secret, raw, request.headers.get("X-Hub-Signature")
    ):
        metrics.incr("kyc_blockpass_webhooks_total", outcome="bad_signature")
        raise ApiError(401, "invalid_signature", "X-Hub-Signature is missing or does not match the body")
    body = json_object(raw)
    event = (
        request.headers.get("X-Blockpass-Event")
        or request.headers.get("X-Blockpass-Events")
        or body.get("event")
    )
    if body.get("isPing") is True:
        metrics.incr("kyc_blockpass_webhooks_total", outcome="ping")
        return jsonify(received=True, ping=True), 200
    # The body's `event` may be any JSON value; only a string can name one of the seven.
    if not isinstance(event, str) or event not in EVENTS:
        shown = str(event)[:64] if event is None or isinstance(event, str) else "not a string"
        log.warning("Blockpass webhook with an unknown event (%s)", shown)
        metrics.incr("kyc_blockpass_webhooks_total", outcome="unknown_event")
        return jsonify(received=True, ignored="unknown event"), 200
    ref_id, record_id = _identifier(body, "refId"), _identifier(body, "recordId")
    if ref_id is None and record_id is None:
        raise ApiError(400, "missing_id", "the webhook names neither refId nor recordId")
    delivery = _identifier(body, "guid") or request.headers.get("X-Blockpass-Delivery", "")[:MAX_ID]
    dispatch: Dispatcher = current_app.extensions["kyc.dispatch"]
    try:
        if delivery and not dispatch.first_sight(f"blockpass-delivery:{delivery}", DEDUPE_SECONDS):
            metrics.incr("kyc_blockpass_webhooks_total", outcome="duplicate")
            return jsonify(received=True, duplicate=True), 200
        dispatch.request_sync(ref_id, record_id, cause=f"blockpass:{event}")
    except RedisError:
        log.exception("could not queue a sync for a Blockpass webhook")
        if delivery:
            dispatch.forget(f"blockpass-delivery:{delivery}")
        raise ApiError(503, "unavailable", "the webhook could not be queued; send it again") from None
    metrics.incr("kyc_blockpass_webhooks_total", outcome="accepted", event=event)
    return jsonify(received=True), 200


def _identifier(body: dict[str, Any], name: str) -> str | None:
    # Blockpass's own ids are not bound to the widget callback's character set;
    # any printable string of sane length will do, as job keys are hashed.
    value = body.get(name)
    if not isinstance(value, str) or not value or len(value) > MAX_ID or not value.isprintable():
        return None
    return value
