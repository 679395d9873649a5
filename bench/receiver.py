"""A stand-in subscriber: records when each candidate's event arrived, then answers 204 after a delay.

    python -m bench.receiver --port 8091 --delay 0.05

Any POST counts: the arrival time (time.monotonic(), which on Linux and macOS is one clock for every
process, so it compares with the bench's own) is recorded under the body's data.refId, with the
webhook-id header if any. Nothing heavy is verified: the point is to cost the sender a realistic
wait, not CPU. GET /count and GET /arrivals report; DELETE /arrivals starts over.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType
from typing import Any

import requests

MAX_BODY = 1024 * 1024


class Arrivals:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.times: dict[str, list[float]] = {}
        self.ids: dict[str, list[str]] = {}
        self.posts = 0

    def add(self, ref_id: str, at: float, webhook_id: str) -> None:
        with self._lock:
            self.posts += 1
            self.times.setdefault(ref_id, []).append(at)
            self.ids.setdefault(ref_id, []).append(webhook_id)

    def count(self) -> dict[str, int]:
        with self._lock:
            return {"posts": self.posts, "distinct": len(self.times)}

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {"posts": self.posts, "times": dict(self.times), "ids": dict(self.ids)}

    def reset(self) -> None:
        with self._lock:
            self.times, self.ids, self.posts = {}, {}, 0


def _ref_id(body: bytes) -> str:
    try:
        payload = json.loads(body)
        return str(payload["data"]["refId"])
    except (ValueError, KeyError, TypeError):
        return ""


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # A burst of deliveries from several workers must not overflow the accept queue.
    request_queue_size = 512

    def __init__(self, address: tuple[str, int], delay: float) -> None:
        self.delay = delay
        self.arrivals = Arrivals()
        super().__init__(address, Handler)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a real subscriber's server would allow
    server: Server

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(min(length, MAX_BODY))
        self.server.arrivals.add(_ref_id(body), time.monotonic(), self.headers.get("webhook-id", ""))
        time.sleep(self.server.delay)
        self._answer(204)

    def do_GET(self) -> None:
        if self.path == "/count":
            self._answer(200, self.server.arrivals.count())
        elif self.path == "/arrivals":
            self._answer(200, self.server.arrivals.snapshot())
        else:
            self._answer(404)

    def do_DELETE(self) -> None:
        self.server.arrivals.reset()
        self._answer(204)

    def _answer(self, status: int, payload: object = None) -> None:
        data = b"" if payload is None else json.dumps(payload).encode()
        self.send_response(status)
        if data:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        return


class ReceiverClient:
    def __init__(self, url: str) -> None:
        self.url = url
        self.http = requests.Session()
        self.http.trust_env = False

    def count(self) -> dict[str, int]:
        answer = self.http.get(f"{self.url}/count", timeout=10)
        answer.raise_for_status()
        counts: dict[str, int] = answer.json()
        return counts

    def arrivals(self) -> dict[str, Any]:
        answer = self.http.get(f"{self.url}/arrivals", timeout=30)
        answer.raise_for_status()
        data: dict[str, Any] = answer.json()
        return data

    def reset(self) -> None:
        self.http.delete(f"{self.url}/arrivals", timeout=10).raise_for_status()

    def close(self) -> None:
        self.http.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.receiver", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--delay", type=float, default=0.05, help="seconds before answering")
    args = parser.parse_args(argv)
    server = Server((args.host, args.port), args.delay)
    signal.signal(signal.SIGTERM, _exit)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def _exit(_signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(0)


if __name__ == "__main__":
    sys.exit(main())
