"""CORS for the widget's page: only the origins in CORS_ORIGINS, preflight included."""

from __future__ import annotations

from flask import Flask, Response, request

ALLOWED_METHODS = "POST, OPTIONS"
ALLOWED_HEADERS = "Content-Type"
PREFLIGHT_MAX_AGE = "600"
CORS_PATHS = ("/v1/callbacks",)


def register_cors(app: Flask, origins: tuple[str, ...]) -> None:
    allow_any = "*" in origins

    @app.after_request
    def _cors(response: Response) -> Response:
        origin = request.headers.get("Origin")
        if not origin or not request.path.startswith(CORS_PATHS):
            return response
        response.vary.add("Origin")
        if allow_any or origin.rstrip("/") in origins:
            response.headers["Access-Control-Allow-Origin"] = origin
            if request.method == "OPTIONS":
                response.headers["Access-Control-Allow-Methods"] = ALLOWED_METHODS
                response.headers["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
                response.headers["Access-Control-Max-Age"] = PREFLIGHT_MAX_AGE
        return response
