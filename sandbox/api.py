"""The Blockpass KYC Connect Dashboard API routes, as documented."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request

from sandbox.errors import SandboxError, error_body
from sandbox.state import SandboxState

API_PREFIX = "/kyc/1.0/connect/<client_id>"
DEFAULT_LIMIT = 20
MAX_LIMIT = 100

bp = Blueprint("blockpass_api", __name__, url_prefix=API_PREFIX)


def _state() -> SandboxState:
    state: SandboxState = current_app.extensions["sandbox"]
    return state


def _error(code: int, message: str | None = None, retry_after: float | None = None) -> tuple[Response, int]:
    return jsonify(error_body(code, message, retry_after)), code


@bp.before_request
def _gate() -> tuple[Response, int] | None:
    """Latency, injected faults, then auth and client id, in the order a real edge would apply them."""
    state = _state()
    state.clock.sleep(state.latency)
    fault = state.take_fault()
    if fault is not None:
        state.clock.sleep(fault.delay)
        if fault.status is not None:
            retry_after = fault.retry_after if fault.status == 429 else None
            return _error(fault.status, retry_after=retry_after)
    key = request.headers.get("Authorization", "")
    if key not in current_app.config["SANDBOX_API_KEYS"]:
        return _error(401, "Invalid API key" if key else "Missing API key")
    client_id = (request.view_args or {}).get("client_id")
    if client_id != current_app.config["SANDBOX_CLIENT_ID"]:
        return _error(404, "Client not found")
    return None


def _scope() -> str:
    scope: str = current_app.config["SANDBOX_API_KEYS"][request.headers.get("Authorization", "")]
    return scope


def _single(ref_id: str | None = None, record_id: str | None = None) -> Any:
    candidate = _state().read_single(ref_id=ref_id, record_id=record_id)
    if candidate is None:
        return _error(404, "Candidate not found")
    return jsonify({"status": "success", "data": candidate.render(_scope())})


@bp.get("/refId/<ref_id>")
def by_ref_id(client_id: str, ref_id: str) -> Any:
    return _single(ref_id=ref_id)


@bp.get("/recordId/<record_id>")
def by_record_id(client_id: str, record_id: str) -> Any:
    return _single(record_id=record_id)


def _int_arg(name: str, default: int) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SandboxError(400, f"{name} must be an integer") from None
    if value < 0:
        raise SandboxError(400, f"{name} must not be negative")
    return value


@bp.get("/applicants", defaults={"status": None})
@bp.get("/applicants/<status>")
def applicants(client_id: str, status: str | None) -> Any:
    skip = _int_arg("skip", 0)
    limit = min(_int_arg("limit", DEFAULT_LIMIT), MAX_LIMIT)
    # The filter compares the stored string, so quirky raw statuses are listed under their own name.
    records, total = _state().list_candidates(status, skip, limit)
    scope = _scope()
    return jsonify(
        {
            "status": "success",
            "data": {
                "records": [c.render(scope) for c in records],
                "total": total,
                "skip": skip,
                "limit": limit,
            },
        }
    )
