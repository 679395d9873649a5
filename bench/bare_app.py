"""The accept path's baseline: a bare Flask app that parses the same JSON and answers 202.

Served by the same gunicorn command as kyc-relay (`bench.bare_app:app` in place of
`service:create_app()`), so the difference is what kyc-relay does per callback.
"""

from __future__ import annotations

import json

from flask import Flask, Response, jsonify, request

MAX_BODY = 16 * 1024

app = Flask(__name__)


@app.post("/v1/callbacks")
def accept() -> tuple[Response, int]:
    try:
        body = json.loads(request.get_data(cache=False)[: MAX_BODY + 1])
    except ValueError:
        return jsonify(error="invalid_json"), 400
    if not isinstance(body, dict) or not (body.get("refId") or body.get("recordId")):
        return jsonify(error="missing_id"), 400
    return jsonify(accepted=True, refId=body.get("refId"), recordId=body.get("recordId")), 202


@app.get("/healthz")
def healthz() -> Response:
    return jsonify(ok=True)
