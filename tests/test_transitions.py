"""Transition detection: the rules, without I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from kyc.transitions import Known, Snapshot, detect, is_stale

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def snap(status: str, **dates: int) -> Snapshot:
    return Snapshot(status=status, record_id="r1", ref_id="u1", dates={k: at(v) for k, v in dates.items()})


def steps(transitions: list) -> list[tuple]:
    return [(t.from_status, t.to_status) for t in transitions]


def test_first_sight_records_the_status_as_seen() -> None:
    result = detect(None, snap("incomplete"), at(5))
    assert steps(result) == [(None, "incomplete")]
    assert result[0].changed_at == at(5) and not result[0].dated


def test_first_sight_of_an_approved_candidate_records_its_dated_path() -> None:
    result = detect(None, snap("approved", waitingDate=1, inreviewDate=2, approvedDate=3), at(9))
    assert steps(result) == [(None, "waiting"), ("waiting", "inreview"), ("inreview", "approved")]
    assert [t.changed_at for t in result] == [at(1), at(2), at(3)]
    assert all(t.dated for t in result)


def test_skipped_intermediate_status_is_recorded_in_date_order() -> None:
    known = Known("waiting", at(1), {"waitingDate": at(1)})
    result = detect(known, snap("approved", waitingDate=1, inreviewDate=2, approvedDate=3), at(9))
    assert steps(result) == [("waiting", "inreview"), ("inreview", "approved")]


def test_steps_sharing_one_date_follow_the_usual_order() -> None:
    result = detect(None, snap("approved", waitingDate=1, inreviewDate=1, approvedDate=1), at(9))
    assert steps(result) == [(None, "waiting"), ("waiting", "inreview"), ("inreview", "approved")]


def test_same_answer_twice_changes_nothing() -> None:
    known = Known("inreview", at(2), {"waitingDate": at(1), "inreviewDate": at(2)})
    assert detect(known, snap("inreview", waitingDate=1, inreviewDate=2), at(9)) == []


def test_stale_answer_never_moves_a_candidate_backwards() -> None:
    known = Known("approved", at(3), {"waitingDate": at(1), "inreviewDate": at(2), "approvedDate": at(3)})
    stale = snap("inreview", waitingDate=1, inreviewDate=2)
    assert is_stale(known, stale)
    assert detect(known, stale, at(9)) == []


def test_stale_answer_after_an_undated_status_is_ignored() -> None:
    # Rejected carries no date: seen at minute 5. An old answer still saying inreview is stale.
    known = Known("rejected", at(5), {"waitingDate": at(1), "inreviewDate": at(2)})
    assert detect(known, snap("inreview", waitingDate=1, inreviewDate=2), at(9)) == []


def test_an_answer_missing_a_date_already_seen_is_stale() -> None:
    known = Known("waiting", at(1), {"waitingDate": at(1)})
    assert detect(known, snap("incomplete"), at(9)) == []


def test_an_older_date_for_the_same_field_is_stale() -> None:
    known = Known("waiting", at(6), {"waitingDate": at(6)})
    assert detect(known, snap("inreview", waitingDate=1, inreviewDate=2), at(9)) == []


def test_resubmission_after_rejection_is_a_real_backward_move() -> None:
    known = Known("rejected", at(5), {"waitingDate": at(1), "inreviewDate": at(2)})
    result = detect(known, snap("waiting", waitingDate=7, inreviewDate=2), at(9))
    assert steps(result) == [("rejected", "waiting")]
    assert result[0].changed_at == at(7)


def test_approved_then_blocked_is_recorded_at_the_time_seen() -> None:
    known = Known("approved", at(3), {"waitingDate": at(1), "inreviewDate": at(2), "approvedDate": at(3)})
    result = detect(known, snap("blocked", waitingDate=1, inreviewDate=2, approvedDate=3), at(9))
    assert steps(result) == [("approved", "blocked")]
    assert result[0].changed_at == at(9) and not result[0].dated


def test_new_certificate_request_moves_approved_back_to_waiting() -> None:
    known = Known("approved", at(3), {"waitingDate": at(1), "inreviewDate": at(2), "approvedDate": at(3)})
    result = detect(known, snap("waiting", waitingDate=8, inreviewDate=2, approvedDate=3), at(9))
    assert steps(result) == [("approved", "waiting")]


def test_a_whole_second_round_between_two_fetches_is_recovered() -> None:
    known = Known("rejected", at(5), {"waitingDate": at(1), "inreviewDate": at(2)})
    result = detect(known, snap("approved", waitingDate=6, inreviewDate=7, approvedDate=8), at(9))
    assert steps(result) == [("rejected", "waiting"), ("waiting", "inreview"), ("inreview", "approved")]


def test_unknown_status_is_tracked_as_it_came() -> None:
    known = Known("inreview", at(2), {"inreviewDate": at(2)})
    result = detect(
        known, Snapshot.from_api({"status": "onHold", "inreviewDate": "2026-01-01T12:02:00.000Z"}), at(9)
    )
    assert steps(result) == [("inreview", "onHold")]


def test_approve_spelling_counts_as_approved() -> None:
    assert Snapshot.from_api({"status": "approve"}).status == "approved"


def test_changes_never_go_back_in_time() -> None:
    known = Known("waiting", at(10), {"waitingDate": at(1)})
    result = detect(known, snap("inreview", waitingDate=1, inreviewDate=11), at(12))
    assert result[0].changed_at >= at(10)


def test_snapshot_keeps_no_identity_attributes() -> None:
    data = {
        "status": "approved",
        "refId": "u1",
        "identities": {"given_name": {"type": "string", "value": "Helmer"}},
        "certs": {"cert1": "{}"},
        "customFields": {"RiskLevel": "Low"},
    }
    snapshot = Snapshot.from_api(data)
    assert "Helmer" not in repr(snapshot)
    assert snapshot.custom_fields == {"RiskLevel": "Low"}


def test_garbled_dates_are_ignored() -> None:
    assert Snapshot.from_api({"status": "waiting", "waitingDate": "yesterday"}).dates == {}
