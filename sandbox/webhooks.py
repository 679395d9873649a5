"""Blockpass-style webhook deliveries, sent in order from one background thread."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import queue
import random
import threading
import urllib.request
import uuid
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

# Short on purpose: Blockpass does not wait long, and a slow receiver must not stall the simulator.
SEND_TIMEOUT = 2.0

# Proxies are bypassed: deliveries go to the configured URL directly, never via environment proxies.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass(frozen=True)
class WebhookConfig:
    url: str
    secret: str | None = None
    signature_prefix: bool = False
    drop: float = 0.0
    # On-prem Blockpass adds some record fields to review.approved bodies.
    on_prem: bool = False


@dataclass(frozen=True)
class Delivery:
    config: WebhookConfig
    event: str
    body: bytes
    guid: str


def build_body(
    *,
    client_id: str,
    event: str,
    status: str,
    record_id: str,
    ref_id: str | None,
    is_ping: bool = False,
    extra: dict[str, Any] | None = None,
) -> tuple[str, bytes]:
    guid = str(uuid.uuid4())
    payload: dict[str, Any] = {
        "guid": guid,
        "status": status,
        "clientId": client_id,
        "event": event,
        "recordId": record_id,
        "refId": ref_id,
        "isPing": is_ping,
        "env": "prod",
        "webhookId": None,
    }
    payload.update(extra or {})
    return guid, json.dumps(payload, separators=(",", ":")).encode("utf-8")


def signature(secret: str, body: bytes, prefix: bool) -> str:
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}" if prefix else digest


class WebhookDispatcher:
    """Queue of deliveries drained by a daemon thread; failures are counted, never retried.

    Blockpass documents no retry policy and webhooks can be lost, so neither is simulated.
    """

    def __init__(self) -> None:
        self._queue: queue.Queue[Delivery] = queue.Queue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._rng = random.Random()
        self.stats = {"queued": 0, "sent": 0, "failed": 0, "dropped": 0}

    def enqueue(self, delivery: Delivery) -> None:
        with self._lock:
            self.stats["queued"] += 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="sandbox-webhooks", daemon=True)
                self._thread.start()
        self._queue.put(delivery)

    def reset_stats(self) -> None:
        with self._lock:
            self.stats = {"queued": 0, "sent": 0, "failed": 0, "dropped": 0}

    def snapshot_stats(self) -> dict[str, int]:
        with self._lock:
            return dict(self.stats)

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Block until every queued delivery was attempted; for tests that want to assert absence."""
        done = threading.Event()

        def waiter() -> None:
            self._queue.join()
            done.set()

        threading.Thread(target=waiter, daemon=True).start()
        return done.wait(timeout)

    def _run(self) -> None:
        while True:
            delivery = self._queue.get()
            try:
                self._send(delivery)
            finally:
                self._queue.task_done()

    def _count(self, key: str) -> None:
        with self._lock:
            self.stats[key] += 1

    def _send(self, delivery: Delivery) -> None:
        config = delivery.config
        if config.drop > 0 and self._rng.random() < config.drop:
            self._count("dropped")
            return
        headers = {
            "Content-Type": "application/json",
            "X-Blockpass-Event": delivery.event,
            "X-Blockpass-Delivery": delivery.guid,
        }
        if config.secret:
            headers["X-Hub-Signature"] = signature(config.secret, delivery.body, config.signature_prefix)
        if not config.url.startswith(("http://", "https://")):
            self._count("failed")
            return
        # The scheme is checked just above, so file: and custom schemes cannot be opened.
        request = urllib.request.Request(  # noqa: S310
            config.url, data=delivery.body, headers=headers, method="POST"
        )
        try:
            with _OPENER.open(request, timeout=SEND_TIMEOUT) as response:
                response.read()
            self._count("sent")
        except Exception as exc:  # any failure is a lost webhook, as with Blockpass
            log.debug("webhook %s to %s failed: %s", delivery.event, config.url, exc)
            self._count("failed")
