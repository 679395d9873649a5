"""`python -m sandbox --host 127.0.0.1 --port 8090` runs the simulator."""

from __future__ import annotations

import argparse
import logging
import os
import time

from flask import Flask, Response, g, request
from werkzeug.serving import run_simple

from sandbox.app import create_app


def _access_log(app: Flask) -> None:
    """One line per request: method, path and status only, so no identity data reaches the log."""
    log = logging.getLogger("sandbox.access")

    @app.before_request
    def _start() -> None:
        g.sandbox_started = time.perf_counter()

    @app.after_request
    def _line(response: Response) -> Response:
        took = (time.perf_counter() - g.get("sandbox_started", time.perf_counter())) * 1000
        log.info("%s %s %s %.1fms", request.method, request.path, response.status_code, took)
        return response


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description="Blockpass KYC Connect simulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    # werkzeug's own request lines would duplicate ours.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)

    client_id = os.environ.get("SANDBOX_CLIENT_ID", "sandbox")
    api_key = os.environ.get("SANDBOX_API_KEY", "sandbox-key")
    app = create_app(client_id=client_id, api_keys={api_key: "attributes_pictures"})
    _access_log(app)
    logging.getLogger("sandbox").info(
        "Blockpass simulator on http://%s:%d/kyc/1.0/connect/%s", args.host, args.port, client_id
    )
    run_simple(args.host, args.port, app, threaded=True, use_reloader=False, use_debugger=False)


if __name__ == "__main__":
    main()
