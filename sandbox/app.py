"""Flask app factory for the Blockpass KYC Connect simulator."""

from __future__ import annotations

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from sandbox import api, control, widget
from sandbox.errors import SandboxError, error_body
from sandbox.records import SCOPES
from sandbox.state import SandboxState

# Always accepted next to the configured keys, so tests can exercise the narrower scopes.
FIXED_KEYS = {"sandbox-metadata-key": "metadata", "sandbox-attributes-key": "attributes"}
DEFAULT_KEYS = {"sandbox-key": "attributes_pictures"}


def create_app(
    state: SandboxState | None = None,
    client_id: str = "sandbox",
    api_keys: dict[str, str] | None = None,
) -> Flask:
    """Build the simulator; its state is `app.extensions["sandbox"]`.

    `api_keys` maps an API key to its scope: metadata, attributes or attributes_pictures.
    """
    keys = {**FIXED_KEYS, **(DEFAULT_KEYS if api_keys is None else api_keys)}
    unknown = {scope for scope in keys.values() if scope not in SCOPES}
    if unknown:
        raise ValueError(f"unknown API key scopes {sorted(unknown)}; use one of {SCOPES}")
    if state is None:
        state = SandboxState(client_id)
    state.client_id = client_id

    app = Flask("sandbox")
    app.config.update(SANDBOX_CLIENT_ID=client_id, SANDBOX_API_KEYS=keys)
    # Keep key order as given: JSON answers mirror Blockpass's field order.
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions["sandbox"] = state
    app.register_blueprint(api.bp)
    app.register_blueprint(control.bp)
    app.register_blueprint(widget.bp)

    @app.errorhandler(SandboxError)
    def _sandbox_error(exc: SandboxError) -> tuple[Response, int]:
        return jsonify(error_body(exc.code, exc.message)), exc.code

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> tuple[Response, int]:
        code = exc.code or 500
        return jsonify(error_body(code)), code

    @app.errorhandler(Exception)
    def _crash(exc: Exception) -> tuple[Response, int]:
        app.logger.exception("sandbox error")
        return jsonify(error_body(500)), 500

    @app.after_request
    def _log_call(response: Response) -> Response:
        # Only Blockpass API traffic is recorded; control calls would drown what tests assert on.
        if request.path.startswith("/kyc/"):
            state.log_call(request.method, request.full_path.rstrip("?"), response.status_code)
        return response

    return app
