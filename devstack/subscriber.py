"""A demo webhook subscriber: verifies each delivery and prints one readable line per event.

    python -m devstack.subscriber --port 8091 --secret whsec_...

POST /hook answers 204 for a verified delivery and 400 for a bad signature; GET /received
lists what was accepted (JSON), which is what `python -m devstack --check` waits on.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

HOOK_PATH = "/hook"
RECEIVED_PATH = "/received"
# Relay events are a few hundred bytes; anything far larger is not one.
MAX_BODY = 1024 * 1024


class Inbox:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: list[dict[str, Any]] = []

    def add(self, event: dict[str, Any]) -> None:
        with self._lock:
            self._events.append(event)

    def all(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._events)


def summary(payload: Any, webhook_id: str) -> dict[str, Any]:
    """The fields worth a glance, from a verified body (read defensively: it is someone's JSON)."""
    body: dict[str, Any] = payload if isinstance(payload, dict) else {}
    data: dict[str, Any] = body["data"] if isinstance(body.get("data"), dict) else {}
    return {
        "type": body.get("type"),
        "refId": data.get("refId"),
        "previousStatus": data.get("previousStatus"),
        "status": data.get("status"),
        "sequence": data.get("sequence"),
        "webhookId": webhook_id,
        "receivedAt": datetime.now(UTC).isoformat(timespec="milliseconds"),
    }


def describe(event: dict[str, Any]) -> str:
    previous = event["previousStatus"] or "(new)"
    return (
        f"{event['type']}  refId={event['refId']}  {previous} → {event['status']}  "
        f"sequence={event['sequence']}  webhook-id={event['webhookId']}"
    )


def make_handler(webhook: Webhook, inbox: Inbox) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "devstack-subscriber"

        def do_POST(self) -> None:
            if self.path != HOOK_PATH:
                self._answer(404)
                return
            length = int(self.headers.get("Content-Length") or 0)
            if not 0 < length <= MAX_BODY:
                self._answer(400 if length == 0 else 413)
                return
            body = self.rfile.read(length)
            try:
                payload = webhook.verify(body, dict(self.headers.items()))
            except (WebhookVerificationError, ValueError) as exc:
                # ValueError: what the library lets through (malformed signature lists, bad base64, bad JSON).
                print(f"rejected a delivery: {exc or type(exc).__name__}", flush=True)
                self._answer(400)
                return
            event = summary(payload, self.headers.get("webhook-id", ""))
            inbox.add(event)
            print(describe(event), flush=True)
            self._answer(204)

        def do_GET(self) -> None:
            if self.path != RECEIVED_PATH:
                self._answer(404)
                return
            data = json.dumps(inbox.all()).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _answer(self, status: int) -> None:
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            # One line per event is printed above; access lines would double it.
            return

    return Handler


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.subscriber", description="a demo subscriber")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8091)
    parser.add_argument("--secret", default=os.environ.get("NOTIFY_SECRET"), help="whsec_... (NOTIFY_SECRET)")
    args = parser.parse_args(argv)
    if not args.secret:
        parser.error("give --secret whsec_... or set NOTIFY_SECRET")
    try:
        webhook = Webhook(args.secret)
    except Exception as exc:  # the library raises several kinds for a malformed secret
        parser.error(f"--secret is not a usable whsec_ secret ({type(exc).__name__})")
    server = ThreadingHTTPServer((args.host, args.port), make_handler(webhook, Inbox()))
    server.daemon_threads = True
    # SIGTERM is how devstack and container runtimes stop it: leave serve_forever and exit 0.
    signal.signal(signal.SIGTERM, _exit)
    print(f"demo subscriber on http://{args.host}:{args.port}{HOOK_PATH}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def _exit(_signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(0)


if __name__ == "__main__":
    sys.exit(main())
