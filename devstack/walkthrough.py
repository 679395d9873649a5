"""The walkthrough: a candidate moves through the sandbox and its events reach the demo subscriber.

The banner shows it as curl commands; --check runs it with requests and waits for the events.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from functools import partial
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests

from devstack.environment import HOOK_PATH, Ports

DEMO_REF_ID = "demo-1"
STEPS = ("waiting", "inreview", "approved")
EXPECTED = tuple(f"candidate.{status}" for status in STEPS)
CHECK_TIMEOUT = 60.0
READY_TIMEOUT = 30.0
REQUEST_TIMEOUT = 5.0

Say = Callable[[str], None]


class Stopped(Exception):
    """devstack is shutting down (a signal, or a process died) while the walkthrough ran."""


def banner(ports: Ports, redis_url: str, database_url: str) -> str:
    web, sandbox = ports.web_url, ports.sandbox_url
    return "\n".join(
        [
            "",
            "kyc-relay is running locally:",
            f"  relay       {web}   (POST /v1/callbacks, GET /healthz)",
            f"  sandbox     {sandbox}/_sandbox   (Blockpass simulator control API)",
            f"  subscriber  {ports.subscriber_url}{HOOK_PATH}   (prints each event it verifies)",
            f"  redis       {_redacted(redis_url)}",
            f"  database    {_redacted(database_url)}",
            "",
            "Walkthrough (a new terminal):",
            "  # 1. a candidate appears in the sandbox",
            _curl(f"{sandbox}/_sandbox/candidates", {"refId": "user-1", "status": "waiting"}),
            "  # 2. the widget's page tells the relay; the subscriber prints candidate.waiting",
            _curl(f"{web}/v1/callbacks", {"refId": "user-1"}),
            "  # 3. the status moves; the next poll (or another callback) brings candidate.approved",
            _curl(f"{sandbox}/_sandbox/candidates/user-1/status", {"status": "approved"}),
            "",
            "Ctrl-C stops everything.",
            "",
        ]
    )


def _redacted(url: str) -> str:
    """The URL without its password, which a developer's own REDIS_URL or DATABASE_URL may hold."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))


def _curl(url: str, body: dict[str, str]) -> str:
    return f"  curl -XPOST {url} -H 'Content-Type: application/json' -d '{json.dumps(body)}'"


class Walkthrough:
    """Drives the sandbox and the relay, and reads what the subscriber accepted."""

    def __init__(self, ports: Ports, stop: threading.Event, say: Say) -> None:
        self.ports = ports
        self.stop = stop
        self.say = say
        self.http = requests.Session()
        # Only loopback is called: a developer's proxy settings must not route it elsewhere.
        self.http.trust_env = False

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        """Until the relay, the sandbox and the subscriber all answer."""
        urls = (
            f"{self.ports.web_url}/healthz",
            f"{self.ports.sandbox_url}/_sandbox/calls",
            f"{self.ports.subscriber_url}/received",
        )
        deadline = time.monotonic() + timeout
        for url in urls:
            self._until(deadline, partial(self._answers, url), f"{url} to answer")

    def run(self, timeout: float = CHECK_TIMEOUT) -> list[dict[str, Any]]:
        """Create the demo candidate, move it through STEPS with a callback after each move, and
        return the events the subscriber verified; raises TimeoutError past the deadline."""
        deadline = time.monotonic() + timeout
        control = f"{self.ports.sandbox_url}/_sandbox/candidates"
        for index, status in enumerate(STEPS):
            if index == 0:
                self._post(control, {"refId": DEMO_REF_ID, "status": status})
            else:
                self._post(f"{control}/{DEMO_REF_ID}/status", {"status": status})
            self.say(f"sandbox: {DEMO_REF_ID} is now {status}; posting the callback")
            self._post(f"{self.ports.web_url}/v1/callbacks", {"refId": DEMO_REF_ID})
            # One step at a time, so each event shows the move it stands for.
            wanted = EXPECTED[: index + 1]
            self._until(deadline, partial(self._has, wanted), f"{wanted[-1]} to be delivered")
        return self._demo_events()

    def _post(self, url: str, body: dict[str, Any]) -> None:
        answer = self.http.post(url, json=body, timeout=REQUEST_TIMEOUT)
        if answer.status_code >= 300:
            raise RuntimeError(f"POST {url} answered {answer.status_code}: {answer.text[:200]}")

    def _answers(self, url: str) -> bool:
        try:
            return self.http.get(url, timeout=REQUEST_TIMEOUT).status_code == 200
        except requests.RequestException:
            return False

    def _demo_events(self) -> list[dict[str, Any]]:
        try:
            answer = self.http.get(f"{self.ports.subscriber_url}/received", timeout=REQUEST_TIMEOUT)
            answer.raise_for_status()
        except requests.RequestException:
            return []
        return [event for event in answer.json() if event.get("refId") == DEMO_REF_ID]

    def _has(self, types: tuple[str, ...]) -> bool:
        seen = {event.get("type") for event in self._demo_events()}
        return all(kind in seen for kind in types)

    def _until(self, deadline: float, done: Callable[[], bool], what: str) -> None:
        while not done():
            if time.monotonic() > deadline:
                raise TimeoutError(f"gave up waiting for {what}")
            if self.stop.wait(0.25):
                raise Stopped
