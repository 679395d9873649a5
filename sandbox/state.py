"""All simulator state behind one lock, so the API, the control routes and tests can share it."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from sandbox.clock import Clock, object_id
from sandbox.errors import SandboxError
from sandbox.fakes import PICTURE_KEYS, fake_certs, fake_identities
from sandbox.records import CREATION_PATHS, STATUS_EVENTS, STATUSES, Candidate, normalize_identities
from sandbox.webhooks import Delivery, WebhookConfig, WebhookDispatcher, build_body

# Record fields on-prem Blockpass adds to review.approved webhook bodies.
_ON_PREM_FIELDS = ("submitCount", "blockPassID", "isArchived", "inreviewDate", "waitingDate", "approvedDate")


@dataclass
class Fault:
    status: int | None
    remaining: int
    retry_after: float | None = None
    delay: float = 0.0


class SandboxState:
    def __init__(self, client_id: str = "sandbox") -> None:
        self.client_id = client_id
        self.clock = Clock()
        self.webhooks = WebhookDispatcher()
        self._lock = threading.RLock()
        self._clear()

    def _clear(self) -> None:
        # Dict order is creation order, which the list endpoint relies on for stable paging.
        self._candidates: dict[str, Candidate] = {}
        self._by_ref: dict[str, str] = {}
        self._history: dict[str, list[Candidate]] = {}
        self._stale: dict[str, int] = {}
        self._faults: list[Fault] = []
        self._latency = 0.0
        self._calls: list[dict[str, Any]] = []
        self._webhook: WebhookConfig | None = None

    def reset(self) -> None:
        with self._lock:
            self._clear()
            self.clock.reset()
            self.webhooks.reset_stats()

    # Candidates

    def _find(self, ident: str) -> Candidate:
        record_id = ident if ident in self._candidates else self._by_ref.get(ident)
        if record_id is None:
            raise SandboxError(404, "Candidate not found")
        return self._candidates[record_id]

    def _snapshot(self, candidate: Candidate) -> None:
        self._history[candidate.record_id].append(candidate.copy())

    def create(
        self,
        ref_id: str | None = None,
        status: str = "incomplete",
        custom_fields: dict[str, Any] | None = None,
        identities: dict[str, Any] | None = None,
        certs: dict[str, str] | None = None,
    ) -> Candidate:
        if status not in CREATION_PATHS:
            raise SandboxError(400, f"Unknown status {status!r}")
        with self._lock:
            if ref_id is not None and ref_id in self._by_ref:
                raise SandboxError(409, f"refId {ref_id!r} already exists")
            now = self.clock.now()
            record_id = object_id(now)
            candidate = Candidate(
                record_id=record_id,
                ref_id=ref_id,
                blockpass_id=object_id(now),
                custom_fields=dict(custom_fields or {}),
                identities=normalize_identities(
                    identities if identities is not None else fake_identities(record_id), PICTURE_KEYS
                ),
                certs=dict(certs) if certs is not None else fake_certs(record_id),
            )
            for step in CREATION_PATHS[status]:
                candidate.move(step, self.clock.now_iso())
            self._candidates[record_id] = candidate
            if ref_id is not None:
                self._by_ref[ref_id] = record_id
            self._history[record_id] = []
            self._snapshot(candidate)
            self._emit("user.created", candidate)
            return candidate.copy()

    def get(self, ident: str) -> Candidate:
        with self._lock:
            return self._find(ident).copy()

    def read_single(self, *, ref_id: str | None = None, record_id: str | None = None) -> Candidate | None:
        """What the single-candidate API route sees: the current record, or a pending stale snapshot."""
        with self._lock:
            if record_id is None:
                record_id = self._by_ref.get(ref_id or "")
            if record_id is None or record_id not in self._candidates:
                return None
            version = self._stale.pop(record_id, None)
            if version is not None:
                return self._history[record_id][version].copy()
            return self._candidates[record_id].copy()

    def list_candidates(self, status: str | None, skip: int, limit: int) -> tuple[list[Candidate], int]:
        with self._lock:
            matching = [c for c in self._candidates.values() if status is None or c.status == status]
            return [c.copy() for c in matching[skip : skip + limit]], len(matching)

    def move(self, ident: str, status: str, raw: bool = False) -> Candidate:
        if not raw and status not in STATUSES:
            raise SandboxError(400, f"Unknown status {status!r}; send raw=true to store it as is")
        with self._lock:
            candidate = self._find(ident)
            if raw:
                # Quirk simulation: the string is stored verbatim, with no dates or counters.
                candidate.status = status
            else:
                candidate.move(status, self.clock.now_iso())
            self._snapshot(candidate)
            event = STATUS_EVENTS.get(status)
            if event:
                self._emit(event, candidate)
            return candidate.copy()

    def archive(self, ident: str) -> Candidate:
        with self._lock:
            candidate = self._find(ident)
            candidate.archive()
            self._snapshot(candidate)
            # No webhook: archiving has no documented event.
            return candidate.copy()

    def delete(self, ident: str) -> Candidate:
        with self._lock:
            candidate = self._find(ident)
            del self._candidates[candidate.record_id]
            self._history.pop(candidate.record_id, None)
            self._stale.pop(candidate.record_id, None)
            if candidate.ref_id is not None:
                self._by_ref.pop(candidate.ref_id, None)
            self._emit("user.deleted", candidate)
            return candidate

    def mark_stale(self, ident: str, version: int) -> int:
        with self._lock:
            candidate = self._find(ident)
            history = self._history[candidate.record_id]
            if not 0 <= version < len(history):
                raise SandboxError(400, f"version must be between 0 and {len(history) - 1}")
            self._stale[candidate.record_id] = version
            return len(history)

    def versions(self, ident: str) -> int:
        with self._lock:
            return len(self._history[self._find(ident).record_id])

    # Faults, latency and the call log

    def add_fault(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def take_fault(self) -> Fault | None:
        """Consume one use of the oldest queued fault, so several can be chained in order."""
        with self._lock:
            if not self._faults:
                return None
            fault = self._faults[0]
            fault.remaining -= 1
            if fault.remaining <= 0:
                self._faults.pop(0)
            return Fault(fault.status, 1, fault.retry_after, fault.delay)

    def pending_faults(self) -> list[dict[str, Any]]:
        with self._lock:
            return [
                {"status": f.status, "times": f.remaining, "retryAfter": f.retry_after, "delay": f.delay}
                for f in self._faults
            ]

    @property
    def latency(self) -> float:
        with self._lock:
            return self._latency

    @latency.setter
    def latency(self, seconds: float) -> None:
        with self._lock:
            self._latency = max(0.0, seconds)

    def log_call(self, method: str, path: str, status: int) -> None:
        with self._lock:
            self._calls.append({"method": method, "path": path, "status": status, "at": self.clock.now_iso()})

    def calls(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(c) for c in self._calls]

    def clear_calls(self) -> None:
        with self._lock:
            self._calls.clear()

    # Webhooks

    @property
    def webhook_config(self) -> WebhookConfig | None:
        with self._lock:
            return self._webhook

    def configure_webhook(self, config: WebhookConfig | None) -> None:
        with self._lock:
            self._webhook = config

    def ping(self) -> bool:
        with self._lock:
            config = self._webhook
            if config is None:
                return False
            guid, body = build_body(
                client_id=self.client_id,
                event="user.created",
                status="incomplete",
                record_id=object_id(self.clock.now()),
                ref_id=None,
                is_ping=True,
            )
            self.webhooks.enqueue(Delivery(config, "user.created", body, guid))
            return True

    def _emit(self, event: str, candidate: Candidate) -> None:
        # Called under the lock, so deliveries are queued in the order the changes happened.
        config = self._webhook
        if config is None:
            return
        extra: dict[str, Any] = {}
        if config.on_prem and event == "review.approved":
            rendered = candidate.render("metadata")
            extra = {k: rendered[k] for k in _ON_PREM_FIELDS if k in rendered}
        guid, body = build_body(
            client_id=self.client_id,
            event=event,
            status=candidate.status,
            record_id=candidate.record_id,
            ref_id=candidate.ref_id,
            extra=extra,
        )
        self.webhooks.enqueue(Delivery(config, event, body, guid))
