"""The reconciliation sweep finds what every callback and webhook missed."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from kyc.models import Candidate
from worker import jobs


def list_calls(sandbox: Any) -> int:
    return sum(1 for call in sandbox.bp.calls() if "/applicants" in call["path"])


def statuses(db: Any) -> dict[str, str]:
    with db.transaction() as session:
        return {c.ref_id: c.status for c in session.scalars(select(Candidate))}


def test_sweep_picks_up_candidates_whose_callback_was_lost(
    ctx: Any, sandbox: Any, receiver: Any, db: Any, drain: Any
) -> None:
    for n in range(3):
        sandbox.bp.create(refId=f"lost-{n}", status="waiting")
    jobs.sweep()
    drain(until=lambda: len(receiver.received) == 3, maintain=False)
    assert statuses(db) == {"lost-0": "waiting", "lost-1": "waiting", "lost-2": "waiting"}


def test_sweep_finds_changes_of_known_candidates(
    ctx: Any, client: Any, sandbox: Any, receiver: Any, db: Any, drain: Any
) -> None:
    sandbox.bp.create(refId="a", status="waiting")
    sandbox.bp.create(refId="b", status="waiting")
    sandbox.bp.create(refId="c", status="approved")
    for ref in ("a", "b", "c"):
        client.post("/v1/callbacks", json={"refId": ref})
    drain(until=lambda: len(receiver.received) == 5, maintain=False)
    sandbox.bp.move("a", "inreview")  # still listed, other status
    sandbox.bp.move("b", "inreview")
    sandbox.bp.move("b", "approved")  # left every swept list
    sandbox.bp.move("c", "blocked")  # approved → blocked, found in the blocked list
    sandbox.bp.clear_calls()
    jobs.sweep()
    drain(until=lambda: statuses(db) == {"a": "inreview", "b": "approved", "c": "blocked"}, maintain=False)
    single = [c for c in sandbox.bp.calls() if "/refId/" in c["path"]]
    assert len(single) == 3  # one sync per difference, nothing for the unchanged


def test_sweep_of_an_unchanged_world_costs_one_call_per_page(
    ctx: Any, sandbox: Any, drain: Any, db: Any
) -> None:
    for n in range(250):
        sandbox.state.create(ref_id=f"w-{n}", status="waiting")
    jobs.sweep()
    drain(until=lambda: len(statuses(db)) == 250, maintain=False, timeout=60)
    sandbox.bp.clear_calls()
    result = jobs.sweep()
    # waiting: 3 pages of 100; inreview, review_requested, blocked: one empty page each.
    assert list_calls(sandbox) == 6
    assert "differences:0" in result
    assert len(sandbox.bp.calls()) == 6


def test_a_failing_list_call_ends_the_sweep_without_false_differences(
    ctx: Any, client: Any, sandbox: Any, receiver: Any, drain: Any
) -> None:
    sandbox.bp.create(refId="a", status="waiting")
    client.post("/v1/callbacks", json={"refId": "a"})
    drain(until=lambda: len(receiver.received) == 1, maintain=False)
    sandbox.bp.fault(status=503, times=1)
    result = jobs.sweep()
    assert "complete:False" in result and "differences:0" in result


def test_maintenance_starts_a_sweep_once_per_interval(ctx: Any, sandbox: Any, redis: Any) -> None:
    from rq import Queue

    from worker.dispatch import QUEUE_NAME

    assert ctx.dispatch.request_sweep_if_due(600) is True
    assert ctx.dispatch.request_sweep_if_due(600) is False
    assert [job.func_name for job in Queue(QUEUE_NAME, connection=redis).jobs] == ["worker.jobs.sweep"]
