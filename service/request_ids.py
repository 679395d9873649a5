"""A request id on every request: taken from X-Request-Id when sane (platform routers set one), else made;
echoed in the answer and carried by every log line of the request."""

from __future__ import annotations

import re
import uuid

from flask import Flask, Response, g, has_request_context, request

from kyc import logs

HEADER = "X-Request-Id"
_SANE = re.compile(r"[A-Za-z0-9._-]{1,64}")


def register_request_ids(app: Flask) -> None:
    logs.add_context_provider(_log_context)

    @app.before_request
    def _assign() -> None:
        given = request.headers.get(HEADER, "")
        g.request_id = given if _SANE.fullmatch(given) else uuid.uuid4().hex

    @app.after_request
    def _echo(response: Response) -> Response:
        if "request_id" in g:
            response.headers[HEADER] = g.request_id
        return response


def _log_context() -> dict[str, str]:
    if has_request_context() and "request_id" in g:
        return {"request_id": g.request_id}
    return {}
