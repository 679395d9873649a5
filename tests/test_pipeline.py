"""Callback → sync → transitions → signed deliveries, through real RQ workers, Redis, database and HTTP."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import func, select

from kyc.db import Database
from kyc.models import Attempt, Candidate, Delivery, Event, StatusChange

PII_VALUES = ("given_name", "family_name", "identities", "selfie", "passport", "dob", "@")


def history(db: Database, ref_id: str) -> list[tuple[str | None, str]]:
    with db.transaction() as session:
        candidate = session.scalars(select(Candidate).where(Candidate.ref_id == ref_id)).one()
        changes = session.scalars(
            select(StatusChange)
            .where(StatusChange.candidate_id == candidate.id)
            .order_by(StatusChange.sequence)
        )
        return [(change.from_status, change.to_status) for change in changes]


def count(db: Database, model: Any) -> int:
    with db.transaction() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def api_calls(sandbox: Any) -> int:
    return sum(1 for call in sandbox.bp.calls() if "/refId/" in call["path"] or "/recordId/" in call["path"])


def test_full_lifecycle_reaches_the_subscriber_signed_and_in_order(
    client: Any, sandbox: Any, receiver: Any, db: Database, drain: Any
) -> None:
    sandbox.bp.create(refId="user-1", status="waiting", customFields={"RiskLevel": "Low"})
    assert client.post("/v1/callbacks", json={"refId": "user-1"}).status_code == 202
    drain(until=lambda: len(receiver.received) == 1)

    sandbox.bp.move("user-1", "inreview")
    client.post("/v1/callbacks", json={"refId": "user-1"})
    drain(until=lambda: len(receiver.received) == 2)
    sandbox.bp.move("user-1", "approved")
    client.post("/v1/callbacks", json={"refId": "user-1"})
    drain(until=lambda: len(receiver.received) == 3)

    assert receiver.types() == ["candidate.waiting", "candidate.inreview", "candidate.approved"]
    data = [item.payload["data"] for item in receiver.received]
    assert [d["sequence"] for d in data] == [1, 2, 3]
    assert [d["previousStatus"] for d in data] == [None, "waiting", "inreview"]
    assert data[2]["customFields"] == {"RiskLevel": "Low"}
    assert data[2]["refId"] == "user-1" and len(data[2]["recordId"]) == 24
    assert receiver.rejected == 0
    assert history(db, "user-1") == [(None, "waiting"), ("waiting", "inreview"), ("inreview", "approved")]
    for item in receiver.received:
        # The sandbox's key includes identity attributes; none may leave.
        text = item.body.decode()
        assert not any(marker in text for marker in PII_VALUES), text
        assert item.headers["webhook-id"].startswith("msg_")


def test_duplicate_callbacks_cost_one_blockpass_call(
    client: Any, sandbox: Any, drain: Any, receiver: Any
) -> None:
    sandbox.bp.create(refId="user-1", status="waiting")
    for _ in range(10):
        client.post("/v1/callbacks", json={"refId": "user-1"})
    drain(until=lambda: len(receiver.received) == 1, maintain=False)
    assert api_calls(sandbox) == 1


def test_candidate_not_yet_known_to_blockpass_is_found_on_a_later_try(
    client: Any, sandbox: Any, receiver: Any, drain: Any
) -> None:
    client.post("/v1/callbacks", json={"refId": "late-user"})
    drain(until=lambda: api_calls(sandbox) >= 1)
    assert receiver.received == []
    sandbox.bp.create(refId="late-user", status="waiting")
    drain(until=lambda: len(receiver.received) == 1)
    assert receiver.types() == ["candidate.waiting"]


def test_not_found_gives_up_after_its_schedule(client: Any, sandbox: Any, drain: Any, settings: Any) -> None:
    client.post("/v1/callbacks", json={"refId": "ghost"})
    drain(timeout=30)
    assert api_calls(sandbox) == len(settings.sync_not_found_schedule) + 1


def test_rate_limited_sync_waits_and_then_succeeds(
    client: Any, sandbox: Any, receiver: Any, drain: Any
) -> None:
    sandbox.bp.create(refId="user-1", status="waiting")
    sandbox.bp.fault(status=429, times=2, retryAfter=1)
    client.post("/v1/callbacks", json={"refId": "user-1"})
    drain(until=lambda: len(receiver.received) == 1)
    assert [c["status"] for c in sandbox.bp.calls()] == [429, 429, 200]


def test_server_errors_are_retried_with_backoff(client: Any, sandbox: Any, receiver: Any, drain: Any) -> None:
    sandbox.bp.create(refId="user-1", status="waiting")
    sandbox.bp.fault(status=503, times=1)
    sandbox.bp.fault(status=500, times=1)
    client.post("/v1/callbacks", json={"refId": "user-1"})
    drain(until=lambda: len(receiver.received) == 1)
    assert [c["status"] for c in sandbox.bp.calls()] == [503, 500, 200]


def test_refused_api_key_is_reported_once_and_not_retried(
    client: Any, sandbox: Any, drain: Any, redis: Any, receiver: Any
) -> None:
    sandbox.bp.fault(status=401, times=5)
    client.post("/v1/callbacks", json={"refId": "user-1"})
    client.post("/v1/callbacks", json={"refId": "user-2"})
    drain()
    assert api_calls(sandbox) == 2
    assert redis.exists("kyc:alerted:blockpass-auth")
    assert receiver.received == []


def test_skipped_intermediate_status_is_delivered_too(
    client: Any, sandbox: Any, receiver: Any, db: Database, drain: Any
) -> None:
    sandbox.bp.create(refId="user-1", status="waiting")
    client.post("/v1/callbacks", json={"refId": "user-1"})
    drain(until=lambda: len(receiver.received) == 1)
    sandbox.bp.move("user-1", "inreview")
    sandbox.bp.move("user-1", "approved")
    client.post("/v1/callbacks", json={"refId": "user-1"})
    drain(until=lambda: len(receiver.received) == 3)
    assert receiver.types() == ["candidate.waiting", "candidate.inreview", "candidate.approved"]


def test_stale_answer_changes_nothing(
    client: Any, sandbox: Any, receiver: Any, db: Database, drain: Any
) -> None:
    sandbox.bp.create(refId="user-1", status="waiting")
    sandbox.bp.move("user-1", "inreview")
    sandbox.bp.move("user-1", "approved")
    client.post("/v1/callbacks", json={"refId": "user-1"})
    drain(until=lambda: len(receiver.received) == 3)
    sandbox.bp.stale("user-1", 1)  # the next answer is the waiting-era snapshot
    client.post("/v1/callbacks", json={"refId": "user-1"})
    drain()
    assert history(db, "user-1")[-1] == ("inreview", "approved")
    assert count(db, Event) == 3


def test_unknown_status_is_stored_and_delivered(
    client: Any, sandbox: Any, receiver: Any, db: Database, drain: Any
) -> None:
    sandbox.bp.create(refId="user-1", status="waiting")
    sandbox.bp.move("user-1", "onHold", raw=True)
    client.post("/v1/callbacks", json={"refId": "user-1"})
    drain(until=lambda: len(receiver.received) >= 2)
    assert history(db, "user-1")[-1] == ("waiting", "onHold")
    assert receiver.types()[-1] == "candidate.onhold"
    assert receiver.received[-1].payload["data"]["status"] == "onHold"


def test_receiver_down_then_up_gets_every_event_once_in_order(
    client: Any, sandbox: Any, receiver: Any, db: Database, drain: Any
) -> None:
    receiver.fail_next(503, 500)
    sandbox.bp.create(refId="user-1", status="waiting")
    client.post("/v1/callbacks", json={"refId": "user-1"})
    drain(until=lambda: count(db, Event) == 1)
    sandbox.bp.move("user-1", "inreview")
    client.post("/v1/callbacks", json={"refId": "user-1"})
    drain(until=lambda: len(receiver.received) == 2)
    assert receiver.types() == ["candidate.waiting", "candidate.inreview"]
    with db.transaction() as session:
        attempts = session.scalars(select(Attempt).order_by(Attempt.id)).all()
        assert [a.status_code for a in attempts] == [503, 500, 204, 204]
        assert all(d.status == "delivered" for d in session.scalars(select(Delivery)))


def test_a_delivery_that_never_succeeds_is_kept_as_failed(
    client: Any, sandbox: Any, receiver: Any, db: Database, drain: Any, settings: Any
) -> None:
    receiver.fail_next(*([500] * 40))
    sandbox.bp.create(refId="user-1", status="approved")
    client.post("/v1/callbacks", json={"refId": "user-1"})
    drain(timeout=30)
    with db.transaction() as session:
        deliveries = session.scalars(select(Delivery)).all()
        assert {d.status for d in deliveries} == {"failed"}
        assert all(d.attempts == len(settings.delivery_retry_schedule) + 1 for d in deliveries)


def test_crash_between_saving_a_transition_and_queueing_its_event_loses_nothing(
    ctx: Any, sandbox: Any, receiver: Any, db: Database, drain: Any
) -> None:
    from datetime import timedelta

    from kyc import outbox, syncing
    from worker.context import utcnow

    sandbox.bp.create(refId="user-1", status="waiting")
    # What the sync job does up to its commit, then "dies" before handing the delivery over.
    answer = ctx.blockpass.candidate(ref_id="user-1")
    syncing.record(db, answer, utcnow(), ctx.settings)
    assert receiver.received == []
    # Once the hand-over lease runs out, the maintenance pass finds the event and hands it.
    due = outbox.hand_due(db, utcnow() + outbox.HAND_LEASE + timedelta(seconds=1))
    assert len(due) == 1
    for delivery_id in due:
        ctx.dispatch.hand_delivery(delivery_id)
    drain(until=lambda: len(receiver.received) == 1)
    assert count(db, Event) == 1


def test_follow_up_polls_find_changes_without_any_signal(
    client: Any, sandbox: Any, receiver: Any, drain: Any
) -> None:
    sandbox.bp.create(refId="user-1", status="waiting")
    client.post("/v1/callbacks", json={"refId": "user-1"})
    drain(until=lambda: len(receiver.received) == 1)
    sandbox.bp.move("user-1", "inreview")
    drain(until=lambda: len(receiver.received) == 2)
    assert receiver.types()[-1] == "candidate.inreview"


def test_event_body_is_standard_webhooks_shaped(client: Any, sandbox: Any, receiver: Any, drain: Any) -> None:
    sandbox.bp.create(refId="user-1", status="waiting")
    client.post("/v1/callbacks", json={"refId": "user-1"})
    drain(until=lambda: len(receiver.received) == 1)
    payload = json.loads(receiver.received[0].body)
    assert set(payload) == {"type", "timestamp", "data"}
    assert set(payload["data"]) == {
        "refId",
        "recordId",
        "blockPassID",
        "status",
        "previousStatus",
        "changedAt",
        "sequence",
        "customFields",
    }


def test_a_sync_that_crashes_is_taken_up_again_after_its_lease(
    ctx: Any, client: Any, sandbox: Any, receiver: Any, db: Database, drain: Any, tmp_path: Any
) -> None:

    sandbox.bp.create(refId="user-1", status="waiting")
    ctx.db = Database(f"sqlite:///{tmp_path}/missing/dir/kyc.db")  # the database is away
    client.post("/v1/callbacks", json={"refId": "user-1"})
    ctx.syncs().pump_once()
    ctx.syncs().wait_idle(10)
    assert ctx.dispatch.inbox.counts() == {"hints_pending": 0, "hints_inflight": 1}
    ctx.db = db  # the database is back; the lease (5 s here) runs out, the maintenance pass reclaims
    drain(until=lambda: len(receiver.received) == 1, timeout=30)
    assert receiver.types() == ["candidate.waiting"]
