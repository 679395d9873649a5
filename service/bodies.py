"""Reading request bodies: bounded in size, parsed as one JSON object, refused in the one error shape."""

from __future__ import annotations

import json
from typing import Any

from flask import request

from service.errors import ApiError


def read_limited(limit: int) -> bytes:
    """The raw body, refused with 413 past `limit` bytes (declared or actually sent)."""
    if request.content_length is not None and request.content_length > limit:
        raise ApiError(413, "payload_too_large", f"the body must be at most {limit} bytes")
    raw = request.stream.read(limit + 1)
    if len(raw) > limit:
        raise ApiError(413, "payload_too_large", f"the body must be at most {limit} bytes")
    return raw


def json_object(raw: bytes, expected: str = "a JSON object") -> dict[str, Any]:
    try:
        body = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError):
        # ValueError: not UTF-8, not JSON, or a number over Python's 4300 digits; RecursionError: nested
        # too deep. Each is the caller's malformed body, not our failure.
        raise ApiError(400, "invalid_json", "the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, "not_an_object", f"the body must be {expected}")
    return body
