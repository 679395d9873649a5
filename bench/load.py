"""Load on POST /v1/callbacks: wrk when it is on PATH, else a Python load generator.

Every request names a distinct refId (`<prefix>-<thread>-<n>`), so kyc-relay never coalesces two of
them. The Python generator runs `connections` threads, each with a keep-alive http.client connection
(reopened when the server closes it, as gunicorn's sync workers do after each answer), bounded by a
request count and a duration.
"""

from __future__ import annotations

import http.client
import itertools
import json
import re
import shutil
import subprocess
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench.stats import ms, percentile

LUA_SCRIPT = Path(__file__).with_name("callbacks.lua")
HEADERS = {"Content-Type": "application/json"}
TIMEOUT = 10.0


@dataclass
class LoadResult:
    loader: str
    connections: int
    seconds: float
    requests: int
    errors: int
    rps: float
    p50_ms: float | None
    p99_ms: float | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Poster:
    """POSTs JSON bodies over one keep-alive connection, reconnecting whenever the server closed it."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.path = parts.path or "/"
        self.connection = self._connect()

    def _connect(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self.host, self.port, timeout=TIMEOUT)

    def post(self, body: bytes) -> int:
        """The answer's status code; raises OSError or HTTPException on a transport failure."""
        try:
            self.connection.request("POST", self.path, body, HEADERS)
            response = self.connection.getresponse()
            response.read()
            return response.status
        except (OSError, http.client.HTTPException):
            self.connection.close()
            self.connection = self._connect()
            raise

    def close(self) -> None:
        self.connection.close()


def callback_body(ref_id: str) -> bytes:
    return json.dumps({"refId": ref_id}).encode()


def run_python(url: str, connections: int, duration: float, max_requests: int, prefix: str) -> LoadResult:
    numbers = itertools.count()  # next() on it is atomic under the GIL
    deadline = time.monotonic() + duration
    latencies: list[list[float]] = [[] for _ in range(connections)]
    errors = [0] * connections
    accepted = [0] * connections

    def drive(slot: int) -> None:
        poster = Poster(url)
        own = latencies[slot]
        try:
            while time.monotonic() < deadline:
                number = next(numbers)
                if number >= max_requests:
                    return
                body = callback_body(f"{prefix}-{slot}-{number}")
                started = time.perf_counter()
                try:
                    status = poster.post(body)
                except (OSError, http.client.HTTPException):
                    errors[slot] += 1
                    continue
                own.append(time.perf_counter() - started)
                if status == 202:
                    accepted[slot] += 1
                else:
                    errors[slot] += 1
        finally:
            poster.close()

    threads = [threading.Thread(target=drive, args=(slot,), daemon=True) for slot in range(connections)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(duration + 2 * TIMEOUT)
    seconds = time.monotonic() - started
    merged = [value for own in latencies for value in own]
    return LoadResult(
        loader="python",
        connections=connections,
        seconds=round(seconds, 3),
        requests=len(merged),
        errors=sum(errors),
        rps=round(sum(accepted) / seconds, 1) if seconds > 0 else 0.0,
        p50_ms=ms(percentile(merged, 50)),
        p99_ms=ms(percentile(merged, 99)),
    )


def wrk_path() -> str | None:
    return shutil.which("wrk")


def run_wrk(url: str, connections: int, duration: float, prefix: str, threads: int = 2) -> LoadResult:
    wrk = wrk_path()
    if wrk is None:
        raise RuntimeError("wrk is not on PATH")
    seconds = max(1, round(duration))
    argv = [wrk, f"-t{min(threads, connections)}", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s"]
    argv += ["-s", str(LUA_SCRIPT), url, "--", prefix]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60, check=False)
    match = re.search(r"^BENCH-JSON (\{.*\})$", done.stdout, re.MULTILINE)
    if done.returncode != 0 or match is None:
        raise RuntimeError(f"wrk failed (exit {done.returncode}): {done.stderr[-500:]} {done.stdout[-500:]}")
    figures = json.loads(match.group(1))
    elapsed = figures["duration_us"] / 1e6
    errors = sum(figures[kind] for kind in ("connect", "read", "write", "status", "timeout"))
    return LoadResult(
        loader="wrk",
        connections=connections,
        seconds=round(elapsed, 3),
        requests=figures["requests"],
        errors=errors,
        rps=round((figures["requests"] - figures["status"]) / elapsed, 1) if elapsed > 0 else 0.0,
        p50_ms=round(figures["p50_us"] / 1000, 2),
        p99_ms=round(figures["p99_us"] / 1000, 2),
    )


def choose(loader: str) -> str:
    """'auto' means wrk when it is on PATH, else the Python generator."""
    if loader == "auto":
        return "wrk" if wrk_path() else "python"
    if loader == "wrk" and wrk_path() is None:
        raise SystemExit("--loader wrk: wrk is not on PATH")
    return loader


def run(
    loader: str, url: str, connections: int, duration: float, prefix: str, max_requests: int = 10_000_000
) -> LoadResult:
    if loader == "wrk":
        return run_wrk(url, connections, duration, prefix)
    return run_python(url, connections, duration, max_requests, prefix)
