"""The error shape Blockpass answers with, shared by the API and the control routes."""

from __future__ import annotations

from typing import Any

MESSAGES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    429: "Too many requests",
    500: "Internal server error",
    502: "Bad gateway",
    503: "Service unavailable",
}


class SandboxError(Exception):
    def __init__(self, code: int, message: str | None = None) -> None:
        super().__init__(message or MESSAGES.get(code, "Error"))
        self.code = code
        self.message = message or MESSAGES.get(code, "Error")


def error_body(code: int, message: str | None = None, retry_after: float | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "status": "error",
        "message": message or MESSAGES.get(code, "Error"),
        "code": code,
        "data": {},
    }
    # Blockpass's own client script reads extra.retryAfter from 429 answers.
    if retry_after is not None:
        body["extra"] = {"retryAfter": retry_after}
    return body
