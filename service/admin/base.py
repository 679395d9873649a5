"""The admin blueprint's common ground: bearer auth, JSON bodies, domain errors, the queue."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request
from redis.exceptions import RedisError

from kyc.config import Settings
from kyc.db import Database
from kyc.errors import Conflict, DomainError, Invalid, NotFound
from service.bodies import json_object
from service.database import database
from service.errors import ApiError, error_response
from worker.dispatch import Dispatcher

log = logging.getLogger("kyc.web")

admin = Blueprint("admin", __name__, url_prefix="/v1")

STATUS_OF = {Invalid: 400, NotFound: 404, Conflict: 409}


@admin.before_request
def authenticate() -> tuple[Response, int] | None:
    settings: Settings = current_app.extensions["kyc.settings"]
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    expected = settings.admin_token or ""
    # compare_digest on bytes: its time does not depend on where the strings differ.
    if (
        expected
        and scheme.lower() == "bearer"
        and hmac.compare_digest(given.strip().encode(), expected.encode())
    ):
        return None
    response, status = error_response(401, "unauthorized", "send Authorization: Bearer <ADMIN_TOKEN>")
    response.headers["WWW-Authenticate"] = 'Bearer realm="kyc-relay admin"'
    return response, status


@admin.errorhandler(DomainError)
def domain_error(exc: DomainError) -> tuple[Response, int]:
    return error_response(STATUS_OF.get(type(exc), 400), exc.code, exc.message)


def db() -> Database:
    return database(current_app)


def now() -> datetime:
    return datetime.now(UTC)


def json_body(required: bool = True) -> dict[str, Any]:
    """The request's JSON object; {} for an absent optional body."""
    raw = request.get_data(cache=False)
    if not raw and not required:
        return {}
    if request.mimetype != "application/json":
        raise ApiError(415, "unsupported_media_type", "send the body as application/json")
    return json_object(raw)


def hand(delivery_ids: Iterable[int]) -> None:
    """Queue reopened deliveries. They are pending and unhanded in the database, so if Redis
    is down the maintenance pass hands them instead: the request still succeeded."""
    dispatch: Dispatcher = current_app.extensions["kyc.dispatch"]
    try:
        for delivery_id in delivery_ids:
            dispatch.hand_delivery(delivery_id)
    except RedisError:
        log.exception("could not queue reopened deliveries; the maintenance pass will")


def no_content() -> Response:
    return Response(status=204)


def ok(body: Any, status: int = 200) -> tuple[Response, int]:
    return jsonify(body), status
