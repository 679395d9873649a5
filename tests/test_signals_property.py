"""Out of order and duplicated, proven: whatever mix of callbacks, Blockpass webhooks, sweeps and polls
reports a candidate's life, duplicated, delayed or answered from a stale cache, the stored history and
the outbox come out the same: each transition once, in order, numbered 1, 2, 3 …"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, update

from kyc.models import Candidate, Event, StatusChange
from worker import jobs

# The transitions Blockpass is seen to make (shared/docs/blockpass.md).
MOVES = {
    "incomplete": ["waiting"],
    "waiting": ["inreview"],
    "inreview": ["approved", "rejected", "review_requested"],
    "rejected": ["waiting"],
    "review_requested": ["waiting"],
    "approved": ["blocked", "waiting"],
    "blocked": [],
}
OBSERVERS = ("callback", "webhook", "sweep", "poll")
EXTRAS = ("callback", "webhook", "sweep", "poll", "stale")
WEBHOOK_SECRET = "bp-webhook-secret"


@st.composite
def lives(draw: st.DrawFn) -> list[tuple[str, list[str], list[str]]]:
    """A true timeline, each step with the signal that observes it and extra noise signals.

    Every step is observed by at least one sync before the next step happens, except a step into
    inreview followed by another step, which may go unseen: its date lets the next sync recover it.
    """
    status = draw(st.sampled_from(["incomplete", "waiting"]))
    steps: list[tuple[str, list[str], list[str]]] = []
    for index in range(draw(st.integers(1, 6))):
        if index:
            options = MOVES[status]
            if not options:
                break
            status = draw(st.sampled_from(options))
        allowed = [o for o in OBSERVERS if not (index == 0 and o in ("poll", "sweep"))]
        observers = draw(st.lists(st.sampled_from(allowed), min_size=1, max_size=2))
        if status == "inreview" and draw(st.booleans()):
            observers = []
        extras = draw(st.lists(st.sampled_from(EXTRAS), max_size=3))
        steps.append((status, observers, extras))
    last_status, last_observers, last_extras = steps[-1]
    if not last_observers:  # nothing after it would reveal it
        steps[-1] = (last_status, ["callback"], last_extras)
    return steps


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(life=lives(), delays=st.lists(st.integers(0, 3), max_size=6), data=st.data())
def test_history_and_outbox_are_the_same_whatever_the_signals(
    life: list[tuple[str, list[str], list[str]]],
    delays: list[int],
    data: st.DataObject,
    ctx: Any,
    sandbox: Any,
    client: Any,
    drain: Any,
) -> None:
    ref = f"p-{uuid.uuid4().hex[:12]}"
    signal = _signals(ctx, sandbox, client, drain, ref)
    delayed: list[tuple[int, str]] = []
    for index, (status, observers, extras) in enumerate(life):
        if index == 0:
            sandbox.bp.create(refId=ref, status=status)
        else:
            sandbox.bp.move(ref, status)
        # Noise: extra signals now, and some held back to arrive steps later (a slow network).
        for position, kind in enumerate(extras):
            wait = delays[position % len(delays)] if delays else 0
            if wait:
                delayed.append((index + wait, kind))
            else:
                signal(kind)
        for kind in [k for at, k in delayed if at == index]:
            signal(kind)
        if data.draw(st.booleans()):
            drain(maintain=False)  # sometimes the workers keep up, sometimes signals pile up
        for kind in observers:
            signal(kind)
        if observers:
            drain(maintain=False)
    for kind in [k for at, k in delayed if at >= len(life)]:
        signal(kind)
    drain(maintain=False)

    truth = [status for status, _, _ in life]
    expected = list(zip([None, *truth[:-1]], truth, strict=True))
    with ctx.db.transaction() as session:
        candidate = session.scalars(select(Candidate).where(Candidate.ref_id == ref)).one()
        changes = session.scalars(
            select(StatusChange)
            .where(StatusChange.candidate_id == candidate.id)
            .order_by(StatusChange.sequence)
        ).all()
        events = session.scalars(
            select(Event).where(Event.candidate_id == candidate.id).order_by(Event.sequence)
        ).all()
    assert [(c.from_status, c.to_status) for c in changes] == expected
    assert [e.type for e in events] == [f"candidate.{s}" for s in truth]
    assert [e.sequence for e in events] == list(range(1, len(truth) + 1))
    assert [json.loads(e.body)["data"]["sequence"] for e in events] == list(range(1, len(truth) + 1))


def _signals(ctx: Any, sandbox: Any, client: Any, drain: Any, ref: str) -> Callable[[str], None]:
    def signal(kind: str) -> None:
        if kind == "callback":
            assert client.post("/v1/callbacks", json={"refId": ref}).status_code == 202
        elif kind == "webhook":
            body = json.dumps({"guid": uuid.uuid4().hex, "event": "user.inReview", "refId": ref}).encode()
            digest = hmac.new(WEBHOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()
            answer = client.post(
                "/v1/blockpass/webhooks",
                data=body,
                content_type="application/json",
                headers={"X-Hub-Signature": digest},
            )
            assert answer.status_code == 200
        elif kind == "sweep":
            jobs.sweep()
        elif kind == "poll":
            with ctx.db.transaction() as session:
                session.execute(
                    update(Candidate).where(Candidate.ref_id == ref).values(next_sync_at=datetime.now(UTC))
                )
            jobs.maintain()
        elif kind == "stale":
            # A sync answered from an old cache. It is drained at once: a stale answer that looks
            # current (same status, no dates yet) cannot be told apart, and would stand in for
            # the observation the test guarantees each step.
            sandbox.bp.stale(ref, 0)
            client.post("/v1/callbacks", json={"refId": ref})
            drain(maintain=False)

    return signal
