"""POST /v1/callbacks: the widget's page says a candidate finished; we go and look.

The callback is a hint, never the truth: it only names whom to sync. The
accept path validates and enqueues, nothing slower.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request
from redis.exceptions import RedisError

from kyc.metrics import Metrics
from service.bodies import json_object, read_limited
from service.errors import ApiError
from worker.dispatch import Dispatcher

log = logging.getLogger("kyc.web")

MAX_BODY = 16 * 1024
ID_PATTERN = re.compile(r"[A-Za-z0-9._:@-]{1,128}")
# text/plain lets a page post without a CORS preflight, and is what sendBeacon sends for a string.
ACCEPTED_TYPES = ("application/json", "text/plain")

callbacks = Blueprint("callbacks", __name__)


@callbacks.post("/v1/callbacks")
def accept_callback() -> tuple[Response, int]:
    metrics: Metrics = current_app.extensions["kyc.metrics"]
    try:
        ref_id, record_id = parse_callback()
    except ApiError as exc:
        metrics.incr("kyc_callbacks_total", outcome="rejected", reason=exc.code)
        raise
    dispatch: Dispatcher = current_app.extensions["kyc.dispatch"]
    try:
        dispatch.request_sync(ref_id, record_id, cause="callback")
    except RedisError:
        log.exception("could not queue a sync")
        metrics.incr("kyc_callbacks_total", outcome="rejected", reason="unavailable")
        raise ApiError(503, "unavailable", "the callback could not be queued; try again shortly") from None
    metrics.incr("kyc_callbacks_total", outcome="accepted")
    return jsonify(accepted=True, refId=ref_id, recordId=record_id), 202


def parse_callback() -> tuple[str | None, str | None]:
    if request.mimetype not in ACCEPTED_TYPES:
        raise ApiError(415, "unsupported_media_type", "send the body as application/json or text/plain")
    body = json_object(read_limited(MAX_BODY), "a JSON object with refId and/or recordId")
    ref_id = _identifier(body, "refId")
    record_id = _identifier(body, "recordId")
    if ref_id is None and record_id is None:
        raise ApiError(400, "missing_id", "give refId, recordId or both")
    return ref_id, record_id


def _identifier(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ApiError(400, "invalid_field", f"{name} must be a string")
    if not ID_PATTERN.fullmatch(value):
        # The value is not echoed back: it may be anything a browser sent.
        raise ApiError(400, "invalid_field", f"{name} must be 1 to 128 characters from A-Z a-z 0-9 . _ : @ -")
    return value
