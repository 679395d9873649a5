"""Downstream delivery: schedule, Retry-After, 410, auto-disable, ordering, rotation, SSRF, isolation."""

from __future__ import annotations

import ipaddress
import itertools
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from standardwebhooks.webhooks import Webhook

from kyc.models import Attempt, Delivery, Subscriber
from kyc.sender import is_public, vetted_addresses
from kyc.signing import generate_secret


def add_subscriber(db: Any, url: str, secret: str, **fields: Any) -> int:
    with db.transaction() as session:
        subscriber = Subscriber(url=url, secret=secret, created_at=datetime.now(UTC), enabled=True, **fields)
        session.add(subscriber)
        session.flush()
        return subscriber.id


def subscriber(db: Any, subscriber_id: int) -> Subscriber:
    with db.transaction() as session:
        found = session.get(Subscriber, subscriber_id)
        assert found is not None
        return found


def attempts(db: Any) -> list[Attempt]:
    with db.transaction() as session:
        return list(session.scalars(select(Attempt).order_by(Attempt.id)))


def deliveries(db: Any) -> list[Delivery]:
    with db.transaction() as session:
        return list(session.scalars(select(Delivery).order_by(Delivery.id)))


def start_candidate(sandbox: Any, client: Any, ref: str, status: str = "waiting") -> None:
    sandbox.bp.create(refId=ref, status=status)
    assert client.post("/v1/callbacks", json={"refId": ref}).status_code == 202


def gaps(times: list[float]) -> list[float]:
    return [later - earlier for earlier, later in itertools.pairwise(times)]


def test_retries_follow_the_schedule(ctx: Any, sandbox: Any, client: Any, receiver: Any, drain: Any) -> None:
    ctx.settings = replace(ctx.settings, delivery_retry_schedule=(1.0, 2.0))
    receiver.fail_next(500, 500)
    start_candidate(sandbox, client, "user-1")
    drain(until=lambda: len(receiver.received) == 1, timeout=30)
    # Never earlier than the schedule allows, jitter (±20 %) included.
    first, second = gaps(receiver.arrivals)
    assert first >= 0.8 - 0.05 and second >= 1.6 - 0.05


def test_retry_after_from_the_receiver_is_honoured(
    ctx: Any, sandbox: Any, client: Any, receiver: Any, drain: Any
) -> None:
    receiver.fail_next((429, {"Retry-After": "3"}))
    start_candidate(sandbox, client, "user-1")
    drain(until=lambda: len(receiver.received) == 1, timeout=30)
    assert gaps(receiver.arrivals)[0] >= 3.0 - 0.05  # the schedule alone would have waited about 1 s


def test_410_gone_disables_the_subscriber_at_once(
    ctx: Any, sandbox: Any, client: Any, receiver: Any, drain: Any, db: Any
) -> None:
    receiver.fail_next(410)
    start_candidate(sandbox, client, "user-1", status="approved")  # three events
    drain(until=lambda: any(not s.enabled for s in _all_subscribers(db)))
    drain()
    assert len(receiver.arrivals) == 1  # nothing more is sent
    disabled = _all_subscribers(db)[0]
    assert disabled.disabled_reason == "the receiver answered 410 Gone" and disabled.disabled_at is not None
    assert [d.status for d in deliveries(db)] == ["failed", "pending", "pending"]


def test_a_subscriber_failing_for_too_long_is_disabled(
    ctx: Any, sandbox: Any, client: Any, receiver: Any, drain: Any, db: Any
) -> None:
    ctx.settings = replace(ctx.settings, delivery_disable_after=2.0, delivery_retry_schedule=(1.0,) * 10)
    receiver.fail_next(*([503] * 20))
    start_candidate(sandbox, client, "user-1")
    drain(until=lambda: not _all_subscribers(db)[0].enabled, timeout=30)
    reason = _all_subscribers(db)[0].disabled_reason
    assert reason is not None and reason.startswith("every attempt failed for")
    assert deliveries(db)[0].status == "failed"


def test_receiver_can_abort_a_message(
    ctx: Any, sandbox: Any, client: Any, receiver: Any, drain: Any, db: Any
) -> None:
    receiver.fail_next((500, {"webhook-delivery": "abort-message"}))
    start_candidate(sandbox, client, "user-1")
    drain()
    assert len(receiver.arrivals) == 1
    (delivery,) = deliveries(db)
    assert delivery.status == "failed" and "abort" in (delivery.last_error or "")


def test_order_per_candidate_holds_while_a_receiver_fails_and_recovers(
    ctx: Any, sandbox: Any, client: Any, receiver: Any, drain: Any
) -> None:
    receiver.fail_next(*([500] * 5))
    for ref in ("a", "b"):
        start_candidate(sandbox, client, ref, status="approved")  # waiting, inreview, approved each
    drain(until=lambda: len(receiver.received) == 6, timeout=40)
    for ref in ("a", "b"):
        mine = [r.payload["data"]["sequence"] for r in receiver.received if r.payload["data"]["refId"] == ref]
        assert mine == [1, 2, 3]


def test_during_rotation_both_secrets_verify(
    ctx: Any, sandbox: Any, client: Any, receiver: Any, drain: Any, db: Any
) -> None:
    old, new = receiver.secret, generate_secret()
    with db.transaction() as session:
        rotated = session.scalars(select(Subscriber)).one()
        rotated.secret, rotated.previous_secret = new, old
        rotated.previous_secret_expires_at = datetime.now(UTC) + timedelta(hours=24)
    start_candidate(sandbox, client, "user-1")
    drain(until=lambda: len(receiver.received) == 1)
    delivered = receiver.received[0]
    assert len(delivered.headers["webhook-signature"].split(" ")) == 2
    for secret in (old, new):
        assert Webhook(secret).verify(delivered.body, delivered.headers)["type"] == "candidate.waiting"


def test_an_expired_previous_secret_is_no_longer_sent(
    ctx: Any, sandbox: Any, client: Any, receiver: Any, drain: Any, db: Any
) -> None:
    with db.transaction() as session:
        rotated = session.scalars(select(Subscriber)).one()
        rotated.previous_secret = generate_secret()
        rotated.previous_secret_expires_at = datetime.now(UTC) - timedelta(seconds=1)
    start_candidate(sandbox, client, "user-1")
    drain(until=lambda: len(receiver.received) == 1)
    assert len(receiver.received[0].headers["webhook-signature"].split(" ")) == 1


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_loopback_destinations_are_refused_unless_allowed(
    ctx: Any, sandbox: Any, client: Any, drain: Any, db: Any, make_receiver: Any, host: str
) -> None:
    target = make_receiver(host)
    ctx.settings = replace(ctx.settings, allow_private_destinations=False, delivery_retry_schedule=(1.0,))
    from kyc.sender import Sender

    ctx.sender = Sender(ctx.settings.delivery_timeout, allow_private=False)
    with db.transaction() as session:
        session.scalars(select(Subscriber)).one().url = target.url
    start_candidate(sandbox, client, "user-1")
    drain()
    assert target.arrivals == []  # not one request reached it
    errors = [a.error or "" for a in attempts(db)]
    assert len(errors) == 2 and all(e.startswith("destination refused") for e in errors)


@pytest.mark.parametrize(
    "address",
    ["10.0.0.1", "172.16.0.1", "192.168.1.1", "100.64.0.1", "169.254.169.254", "fd00::1", "::ffff:10.0.0.1"],
)
def test_private_and_reserved_addresses_are_refused_without_connecting(address: str) -> None:
    # A literal address resolves without any lookup or connection.
    assert not is_public(ipaddress.ip_address(address))
    with pytest.raises(ValueError, match="non-public"):
        vetted_addresses(address, 443, allow_private=False)
    assert vetted_addresses(address, 443, allow_private=True) == [address]


def test_public_addresses_pass_the_check() -> None:
    assert vetted_addresses("93.184.216.34", 443, allow_private=False) == ["93.184.216.34"]


def test_a_slow_subscriber_does_not_delay_another(
    ctx: Any, sandbox: Any, client: Any, receiver: Any, drain: Any, db: Any, make_receiver: Any
) -> None:
    fast = make_receiver()
    add_subscriber(db, fast.url, fast.secret)
    receiver.delay = 4.0  # the NOTIFY_URL subscriber thinks long about every event
    for n in range(4):
        start_candidate(sandbox, client, f"user-{n}")
    drain(until=lambda: len(fast.received) == 4, timeout=30)
    assert len(receiver.received) < 4  # the fast one got everything while the slow one was still busy
    drain(until=lambda: len(receiver.received) == 4, timeout=30)


def test_a_subscriber_rate_cap_spaces_its_deliveries(
    ctx: Any, sandbox: Any, client: Any, receiver: Any, drain: Any, db: Any
) -> None:
    with db.transaction() as session:
        session.scalars(select(Subscriber)).one().rate_limit = 2.0
    for n in range(6):
        start_candidate(sandbox, client, f"user-{n}")
    drain(until=lambda: len(receiver.received) == 6, timeout=30)
    start = receiver.arrivals[0]
    for k, at in enumerate(receiver.arrivals):
        # Two per second after a first burst of two.
        assert at - start >= (k - 2) / 2.0 - 0.05


def test_attempts_record_status_latency_and_the_answer(
    ctx: Any, sandbox: Any, client: Any, receiver: Any, drain: Any, db: Any
) -> None:
    receiver.fail_next(503)
    start_candidate(sandbox, client, "user-1")
    drain(until=lambda: len(receiver.received) == 1)
    first, second = attempts(db)
    assert (first.status_code, first.response_body) == (503, "not now")
    assert second.status_code == 204 and first.duration_ms >= 0 and first.attempted_at <= second.attempted_at


def _all_subscribers(db: Any) -> list[Subscriber]:
    with db.transaction() as session:
        return list(session.scalars(select(Subscriber).order_by(Subscriber.id)))
