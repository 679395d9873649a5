"""One error shape for every endpoint: {"error": {"code": ..., "message": ...}}."""

from __future__ import annotations

import logging

from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException

log = logging.getLogger("kyc.web")

# Codes of our own where Werkzeug's name differs from the documented one: Werkzeug refuses bodies over
# MAX_CONTENT_LENGTH itself, as "Request Entity Too Large".
HTTP_CODES = {413: "payload_too_large"}


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def error_response(status: int, code: str, message: str) -> tuple[Response, int]:
    return jsonify(error={"code": code, "message": message}), status


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError) -> tuple[Response, int]:
        return error_response(exc.status, exc.code, exc.message)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> tuple[Response, int]:
        status = exc.code or 500
        code = HTTP_CODES.get(status) or (exc.name or "error").lower().replace(" ", "_")
        response, status = error_response(status, code, exc.description or exc.name or "error")
        # Werkzeug's own headers say what to do next (a 405's Allow, which RFC 9110 requires); only
        # its HTML content type gives way to the JSON body.
        for name, value in exc.get_headers():
            if name.lower() != "content-type":
                response.headers[name] = value
        return response, status

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> tuple[Response, int]:
        # The exception goes to Sentry through its Flask integration; the
        # client learns nothing about internals.
        log.exception("unhandled error")
        return error_response(500, "internal_error", "something went wrong on our side; it has been reported")
