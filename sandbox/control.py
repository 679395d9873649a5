"""Control API under /_sandbox/ for tests and benchmarks to steer the simulator (no auth)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, jsonify, request

from sandbox.errors import SandboxError
from sandbox.state import Fault, SandboxState
from sandbox.webhooks import WebhookConfig

FAULT_STATUSES = (429, 401, 403, 404, 500, 502, 503)
FULL_SCOPE = "attributes_pictures"

bp = Blueprint("sandbox_control", __name__, url_prefix="/_sandbox")


def _state() -> SandboxState:
    state: SandboxState = current_app.extensions["sandbox"]
    return state


def _body() -> dict[str, Any]:
    if not request.get_data():
        return {}
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise SandboxError(400, "Body must be a JSON object")
    return body


def _number(body: dict[str, Any], key: str, default: float | None) -> float | None:
    value = body.get(key, default)
    # bool is an int subclass; true/false for a number is a caller mistake worth reporting.
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0):
        raise SandboxError(400, f"{key} must be a non-negative number")
    return value


def _optional_str(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise SandboxError(400, f"{key} must be a string or null")
    return value


def _optional_dict(body: dict[str, Any], key: str) -> dict[str, Any] | None:
    value = body.get(key)
    if value is not None and not isinstance(value, dict):
        raise SandboxError(400, f"{key} must be an object")
    return value


def _record(ident: str) -> dict[str, Any]:
    state = _state()
    return {**state.get(ident).render(FULL_SCOPE), "versions": state.versions(ident)}


@bp.post("/candidates")
def create_candidate() -> Any:
    body = _body()
    status = body.get("status", "incomplete")
    if not isinstance(status, str):
        raise SandboxError(400, "status must be a string")
    candidate = _state().create(
        ref_id=_optional_str(body, "refId"),
        status=status,
        custom_fields=_optional_dict(body, "customFields"),
        identities=_optional_dict(body, "identities"),
        certs=_optional_dict(body, "certs"),
    )
    return jsonify(candidate.render(FULL_SCOPE)), 201


@bp.get("/candidates/<ident>")
def get_candidate(ident: str) -> Any:
    return jsonify(_record(ident))


@bp.post("/candidates/<ident>/status")
def move_candidate(ident: str) -> Any:
    body = _body()
    status = body.get("status")
    if not isinstance(status, str) or not status:
        raise SandboxError(400, "status is required")
    candidate = _state().move(ident, status, raw=bool(body.get("raw", False)))
    return jsonify(candidate.render(FULL_SCOPE))


@bp.post("/candidates/<ident>/archive")
def archive_candidate(ident: str) -> Any:
    return jsonify(_state().archive(ident).render(FULL_SCOPE))


@bp.delete("/candidates/<ident>")
def delete_candidate(ident: str) -> Any:
    candidate = _state().delete(ident)
    return jsonify({"deleted": candidate.record_id})


@bp.post("/candidates/<ident>/stale")
def stale_candidate(ident: str) -> Any:
    version = _body().get("version", 0)
    if isinstance(version, bool) or not isinstance(version, int):
        raise SandboxError(400, "version must be an integer")
    versions = _state().mark_stale(ident, version)
    return jsonify({"version": version, "versions": versions})


@bp.post("/faults")
def add_fault() -> Any:
    body = _body()
    status = body.get("status")
    if status is not None and status not in FAULT_STATUSES:
        raise SandboxError(400, f"status must be one of {list(FAULT_STATUSES)}")
    times = body.get("times", 1)
    if isinstance(times, bool) or not isinstance(times, int) or times < 1:
        raise SandboxError(400, "times must be a positive integer")
    delay = _number(body, "delay", 0.0) or 0.0
    if status is None and delay <= 0:
        raise SandboxError(400, "give a status, a delay, or both")
    retry_after = _number(body, "retryAfter", 1) if status == 429 else None
    _state().add_fault(Fault(status, times, retry_after, delay))
    return jsonify({"faults": _state().pending_faults()}), 201


@bp.get("/faults")
def list_faults() -> Any:
    return jsonify({"faults": _state().pending_faults()})


@bp.delete("/faults")
def clear_faults() -> Any:
    _state().clear_faults()
    return jsonify({"faults": []})


@bp.put("/latency")
def set_latency() -> Any:
    seconds = _number(_body(), "seconds", None)
    if seconds is None:
        raise SandboxError(400, "seconds is required")
    _state().latency = seconds
    return jsonify({"seconds": _state().latency})


@bp.get("/latency")
def get_latency() -> Any:
    return jsonify({"seconds": _state().latency})


@bp.get("/calls")
def list_calls() -> Any:
    calls = _state().calls()
    return jsonify({"calls": calls, "count": len(calls)})


@bp.delete("/calls")
def clear_calls() -> Any:
    _state().clear_calls()
    return jsonify({"calls": [], "count": 0})


def _clock() -> dict[str, Any]:
    clock = _state().clock
    return {"now": clock.now_iso(), "offset": clock.offset}


@bp.post("/clock")
def advance_clock() -> Any:
    body = _body()
    seconds = body.get("advance")
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        raise SandboxError(400, "advance must be a number of seconds")
    _state().clock.advance(float(seconds))
    return jsonify(_clock())


@bp.get("/clock")
def get_clock() -> Any:
    return jsonify(_clock())


def _webhook_view() -> dict[str, Any]:
    state = _state()
    config = state.webhook_config
    shown = None
    if config is not None:
        # The secret itself is not echoed back.
        shown = {
            "url": config.url,
            "signed": config.secret is not None,
            "signaturePrefix": config.signature_prefix,
            "drop": config.drop,
            "onPrem": config.on_prem,
        }
    return {"webhook": shown, "stats": state.webhooks.snapshot_stats()}


@bp.post("/webhooks")
def set_webhook() -> Any:
    body = _body()
    url = body.get("url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise SandboxError(400, "url must be an http(s) URL")
    drop = _number(body, "drop", 0.0) or 0.0
    if drop > 1:
        raise SandboxError(400, "drop is a probability between 0 and 1")
    config = WebhookConfig(
        url=url,
        secret=_optional_str(body, "secret") or None,
        signature_prefix=bool(body.get("signaturePrefix", False)),
        drop=float(drop),
        on_prem=bool(body.get("onPrem", False)),
    )
    _state().configure_webhook(config)
    return jsonify(_webhook_view())


@bp.get("/webhooks")
def get_webhook() -> Any:
    return jsonify(_webhook_view())


@bp.delete("/webhooks")
def clear_webhook() -> Any:
    _state().configure_webhook(None)
    return jsonify(_webhook_view())


@bp.post("/webhooks/ping")
def ping_webhook() -> Any:
    if not _state().ping():
        raise SandboxError(409, "No webhook configured")
    return jsonify({"queued": True}), 202


@bp.post("/webhooks/flush")
def flush_webhooks() -> Any:
    """Wait until queued deliveries were attempted, so a caller can assert what did or did not arrive."""
    timeout = _number(_body(), "timeout", 5.0) or 5.0
    idle = _state().webhooks.wait_idle(timeout)
    return jsonify({"idle": idle, **_webhook_view()})


@bp.post("/reset")
def reset() -> Any:
    _state().reset()
    return jsonify({"reset": True})
