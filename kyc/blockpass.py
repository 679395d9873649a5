"""The Blockpass KYC Connect Dashboard API, as kyc-relay uses it.

Answers are sorted into a few outcomes the sync job has a policy for; nothing
here retries or sleeps. Identity attributes in answers are dropped at once: only
the tracked fields of a Snapshot leave this module.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import requests
from requests.adapters import HTTPAdapter

from kyc.budget import BudgetExhausted, CallBudget
from kyc.transitions import Snapshot

CONNECT_TIMEOUT = 3.05
READ_TIMEOUT = 10.0
# Blockpass's 429 answers say how long to wait in extra.retryAfter; when one does
# not, wait this long.
DEFAULT_RETRY_AFTER = 30.0
MAX_RETRY_AFTER = 3600.0
MILLISECONDS_ABOVE = 600.0


class Outcome(enum.Enum):
    FOUND = "found"
    NOT_FOUND = "not_found"  # may simply not be created yet
    RATE_LIMITED = "rate_limited"
    UNAVAILABLE = "unavailable"  # 5xx, timeouts, refused connections, garbled answers
    UNAUTHORIZED = "unauthorized"  # a configuration error: wrong key or client id


@dataclass(frozen=True)
class Answer:
    outcome: Outcome
    status_code: int | None = None
    snapshot: Snapshot | None = None
    retry_after: float | None = None
    # Short and free of identity data: it may reach logs and Sentry.
    detail: str = ""
    elapsed: float = 0.0


@dataclass(frozen=True)
class Page:
    answer: Answer
    records: list[Snapshot] = field(default_factory=list)
    total: int = 0


class BlockpassClient:
    def __init__(
        self,
        api_url: str,
        client_id: str,
        api_key: str,
        budget: CallBudget | None = None,
        pool_size: int = 10,
        observe: Callable[[str, str, float], None] | None = None,
    ) -> None:
        self.base = f"{api_url.rstrip('/')}/{quote(client_id, safe='')}"
        self.budget = budget
        # Told (route, status code or error, seconds) after every call: for metrics.
        self.observe = observe
        self.session = requests.Session()
        adapter = HTTPAdapter(pool_connections=2, pool_maxsize=pool_size)
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        self.session.headers.update({"Authorization": api_key, "Accept": "application/json"})

    def candidate(self, ref_id: str | None = None, record_id: str | None = None) -> Answer:
        """One candidate, by refId when known (the integrator's id), else by recordId."""
        if ref_id:
            path = f"/refId/{quote(ref_id, safe='')}"
        elif record_id:
            path = f"/recordId/{quote(record_id, safe='')}"
        else:
            raise ValueError("a refId or a recordId is needed")
        answer, data = self._get(path)
        if answer.outcome is not Outcome.FOUND:
            return answer
        if not isinstance(data, dict) or not data.get("status"):
            return Answer(Outcome.UNAVAILABLE, answer.status_code, detail="answer without a candidate status")
        return Answer(Outcome.FOUND, answer.status_code, Snapshot.from_api(data), elapsed=answer.elapsed)

    def applicants(self, status: str | None, skip: int, limit: int = 100) -> Page:
        path = f"/applicants/{quote(status, safe='')}" if status else "/applicants"
        answer, data = self._get(path, params={"skip": skip, "limit": limit})
        if answer.outcome is not Outcome.FOUND:
            return Page(answer)
        records = data.get("records") if isinstance(data, dict) else None
        if not isinstance(records, list):
            return Page(Answer(Outcome.UNAVAILABLE, answer.status_code, detail="list answer without records"))
        snapshots = [Snapshot.from_api(r) for r in records if isinstance(r, dict) and r.get("status")]
        total = data.get("total") if isinstance(data.get("total"), int) else len(snapshots)
        return Page(answer, snapshots, total)

    def _get(self, path: str, params: dict[str, Any] | None = None) -> tuple[Answer, Any]:
        if self.budget is not None:
            try:
                self.budget.acquire()
            except BudgetExhausted as exc:
                # Not Blockpass's answer but ours: wait our turn, like a 429.
                return Answer(Outcome.RATE_LIMITED, retry_after=exc.wait, detail="call budget"), None
        route = path.split("/")[1] if path.count("/") > 1 else path.strip("/")
        answer, data = self._call(path, params)
        if self.observe is not None:
            self.observe(route, str(answer.status_code or answer.outcome.value), answer.elapsed)
        return answer, data

    def _call(self, path: str, params: dict[str, Any] | None) -> tuple[Answer, Any]:
        started = time.monotonic()
        try:
            response = self.session.get(
                self.base + path, params=params, timeout=(CONNECT_TIMEOUT, READ_TIMEOUT)
            )
        except requests.Timeout:
            return Answer(Outcome.UNAVAILABLE, detail="timed out", elapsed=time.monotonic() - started), None
        except requests.RequestException as exc:
            detail = f"connection failed: {type(exc).__name__}"
            return Answer(Outcome.UNAVAILABLE, detail=detail, elapsed=time.monotonic() - started), None
        elapsed = time.monotonic() - started
        code = response.status_code
        try:
            payload = response.json()
        except ValueError:
            payload = None
        body = payload if isinstance(payload, dict) else {}
        if code == 429:
            retry_after = _retry_after(body, response)
            if self.budget is not None:
                self.budget.hold_off(retry_after)
            return Answer(Outcome.RATE_LIMITED, code, retry_after=retry_after, elapsed=elapsed), None
        if code in (401, 403):
            return Answer(Outcome.UNAUTHORIZED, code, detail=_message(body), elapsed=elapsed), None
        if code == 404 or (code < 300 and body.get("status") == "error"):
            return Answer(Outcome.NOT_FOUND, code, detail=_message(body), elapsed=elapsed), None
        if code >= 300 or payload is None:
            return Answer(Outcome.UNAVAILABLE, code, detail=f"HTTP {code}", elapsed=elapsed), None
        return Answer(Outcome.FOUND, code, elapsed=elapsed), body.get("data")


def _retry_after(body: dict[str, Any], response: requests.Response) -> float:
    extra = body.get("extra")
    # extra.retryAfter's unit is not documented: a value no server would mean
    # in seconds (over ten minutes) is read as milliseconds.
    in_body = _number(extra.get("retryAfter")) if isinstance(extra, dict) else None
    if in_body is not None:
        return min(in_body / 1000 if in_body > MILLISECONDS_ABOVE else in_body, MAX_RETRY_AFTER)
    in_header = _number(response.headers.get("Retry-After"))
    if in_header is not None:
        return min(in_header, MAX_RETRY_AFTER)
    return DEFAULT_RETRY_AFTER


def _number(value: object) -> float | None:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if number >= 0 and number == number else None


def _message(body: dict[str, Any]) -> str:
    # Blockpass's messages are about the request, not the person; still keep them short.
    message = body.get("message")
    return message[:120] if isinstance(message, str) else ""
