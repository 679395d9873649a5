"""Helpers for tests that drive the simulator over HTTP and collect its webhooks.

Kept in the package (not a conftest) so any test suite in the project can import them.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import requests
from flask import Flask, request

from sandbox.server import RunningServer, start_background


def loopback_session() -> requests.Session:
    session = requests.Session()
    # Environment proxy settings must never reroute traffic meant for the local simulator.
    session.trust_env = False
    return session


class SandboxClient:
    """Thin wrapper over the Dashboard API and the /_sandbox control API of one running simulator."""

    def __init__(
        self,
        url: str,
        client_id: str = "sandbox",
        api_key: str = "sandbox-key",
        session: requests.Session | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.url = url.rstrip("/")
        self.client_id = client_id
        self.api_key = api_key
        self.http = session or loopback_session()
        self.timeout = timeout

    @property
    def base(self) -> str:
        """The Dashboard API base URL, as configured in a Blockpass client."""
        return f"{self.url}/kyc/1.0/connect/{self.client_id}"

    def api(self, path: str, key: str | None = None, **params: Any) -> requests.Response:
        """GET an API path; `key=None` uses the client's key, `key=""` sends no Authorization header."""
        key = self.api_key if key is None else key
        headers = {"Authorization": key} if key else {}
        return self.http.get(f"{self.base}{path}", headers=headers, params=params, timeout=self.timeout)

    def control(self, method: str, path: str, json: Any = None) -> requests.Response:
        return self.http.request(method, f"{self.url}/_sandbox{path}", json=json, timeout=self.timeout)

    def _ok(self, method: str, path: str, json: Any = None) -> dict[str, Any]:
        response = self.control(method, path, json)
        if response.status_code >= 300:
            raise AssertionError(f"{method} /_sandbox{path} -> {response.status_code}: {response.text}")
        data: dict[str, Any] = response.json()
        return data

    def create(self, **body: Any) -> dict[str, Any]:
        return self._ok("POST", "/candidates", body)

    def move(self, ident: str, status: str, raw: bool = False) -> dict[str, Any]:
        return self._ok("POST", f"/candidates/{ident}/status", {"status": status, "raw": raw})

    def archive(self, ident: str) -> dict[str, Any]:
        return self._ok("POST", f"/candidates/{ident}/archive")

    def delete(self, ident: str) -> dict[str, Any]:
        return self._ok("DELETE", f"/candidates/{ident}")

    def stale(self, ident: str, version: int) -> dict[str, Any]:
        return self._ok("POST", f"/candidates/{ident}/stale", {"version": version})

    def fault(self, **body: Any) -> dict[str, Any]:
        return self._ok("POST", "/faults", body)

    def clear_faults(self) -> dict[str, Any]:
        return self._ok("DELETE", "/faults")

    def set_latency(self, seconds: float) -> dict[str, Any]:
        return self._ok("PUT", "/latency", {"seconds": seconds})

    def calls(self) -> list[dict[str, Any]]:
        calls: list[dict[str, Any]] = self._ok("GET", "/calls")["calls"]
        return calls

    def clear_calls(self) -> dict[str, Any]:
        return self._ok("DELETE", "/calls")

    def advance_clock(self, seconds: float) -> dict[str, Any]:
        return self._ok("POST", "/clock", {"advance": seconds})

    def set_webhook(
        self,
        url: str,
        secret: str | None = None,
        signature_prefix: bool = False,
        drop: float = 0.0,
        **extra: Any,
    ) -> dict[str, Any]:
        body = {"url": url, "secret": secret, "signaturePrefix": signature_prefix, "drop": drop, **extra}
        return self._ok("POST", "/webhooks", body)

    def ping(self) -> dict[str, Any]:
        return self._ok("POST", "/webhooks/ping")

    def flush_webhooks(self, timeout: float = 5.0) -> dict[str, Any]:
        return self._ok("POST", "/webhooks/flush", {"timeout": timeout})

    def clear_webhook(self) -> dict[str, Any]:
        return self._ok("DELETE", "/webhooks")

    def reset(self) -> dict[str, Any]:
        return self._ok("POST", "/reset")


@dataclass
class Delivery:
    headers: dict[str, str]
    body: bytes


@dataclass
class WebhookReceiver:
    """A real local HTTP endpoint recording each POST's headers and exact body bytes."""

    server: RunningServer
    path: str = "/hook"
    deliveries: list[Delivery] = field(default_factory=list)
    status_code: int = 204
    _arrived: threading.Condition = field(default_factory=threading.Condition)

    @property
    def url(self) -> str:
        return f"{self.server.url}{self.path}"

    def record(self, headers: dict[str, str], body: bytes) -> int:
        with self._arrived:
            self.deliveries.append(Delivery(headers, body))
            self._arrived.notify_all()
        return self.status_code

    def wait_for(self, count: int, timeout: float = 5.0) -> list[Delivery]:
        """Wait until at least `count` deliveries arrived (or time out) and return all of them."""
        with self._arrived:
            self._arrived.wait_for(lambda: len(self.deliveries) >= count, timeout)
            return list(self.deliveries)

    def stop(self) -> None:
        self.server.stop()

    def __enter__(self) -> WebhookReceiver:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def start_receiver(host: str = "127.0.0.1", path: str = "/hook") -> WebhookReceiver:
    app = Flask("webhook-receiver")
    holder: list[WebhookReceiver] = []

    def hook() -> tuple[str, int]:
        return "", holder[0].record(dict(request.headers), request.get_data())

    app.add_url_rule(path, "hook", hook, methods=["POST"])
    receiver = WebhookReceiver(start_background(app, host=host), path=path)
    holder.append(receiver)
    return receiver
