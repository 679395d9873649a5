"""The simulated Blockpass Dashboard API over real HTTP: routes, scopes, errors, paging, status moves."""

from __future__ import annotations

import json
import re
from datetime import datetime

import pytest

from sandbox.testing import SandboxClient

METADATA_KEY = "sandbox-metadata-key"
ATTRIBUTES_KEY = "sandbox-attributes-key"
FULL_KEY = "full-key"

DATE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
ERROR_KEYS = {"status", "message", "code", "data"}


def _error(response_json: dict[str, object], code: int) -> None:
    assert set(response_json) >= ERROR_KEYS
    assert response_json["status"] == "error"
    assert response_json["code"] == code
    assert response_json["data"] == {}
    assert isinstance(response_json["message"], str) and response_json["message"]


def test_single_routes_answer_the_same_record(bp: SandboxClient) -> None:
    created = bp.create(refId="user-1", status="inreview")
    by_ref = bp.api("/refId/user-1")
    by_record = bp.api(f"/recordId/{created['recordId']}")
    assert by_ref.status_code == by_record.status_code == 200
    assert by_ref.json() == by_record.json()
    body = by_ref.json()
    assert body["status"] == "success"
    data = body["data"]
    assert data["status"] == "inreview"
    assert re.fullmatch(r"[0-9a-f]{24}", data["recordId"])
    assert re.fullmatch(r"[0-9a-f]{24}", data["blockPassID"])
    assert data["refId"] == "user-1"
    assert data["isArchived"] is False
    assert data["submitCount"] == 1
    assert DATE.match(data["waitingDate"]) and DATE.match(data["inreviewDate"])
    assert "approvedDate" not in data


def test_full_scope_carries_identities_like_the_seed(bp: SandboxClient) -> None:
    bp.create(refId="u", customFields={"RiskLevel": "Low"})
    data = bp.api("/refId/u").json()["data"]
    assert data["customFields"] == {"RiskLevel": "Low"}
    ids = data["identities"]
    for name in ("given_name", "family_name", "dob", "email", "phone", "address", "selfie", "passport"):
        assert set(ids[name]) == {"type", "value"}
    assert ids["selfie"]["type"] == ids["passport"]["type"] == "base64"
    assert ids["selfie"]["value"].startswith("/9j/")
    # address and phone are JSON documents encoded inside a string.
    assert ids["address"]["type"] == "string"
    assert {"postalCode", "city", "address", "country"} <= set(json.loads(ids["address"]["value"]))
    assert "phoneNumber" in json.loads(ids["phone"]["value"])
    assert isinstance(data["certs"], dict) and data["certs"]


def test_given_identities_accept_plain_and_blockpass_forms(bp: SandboxClient) -> None:
    bp.create(
        refId="u",
        identities={
            "given_name": "Helmer",
            "phone": {"countryCode": "VNM", "phoneNumber": "+84987543212"},
            "selfie": "/9j/abc",
            "dob": {"type": "string", "value": "12/31/2016"},
        },
    )
    ids = bp.api("/refId/u").json()["data"]["identities"]
    assert ids["given_name"] == {"type": "string", "value": "Helmer"}
    assert ids["phone"]["type"] == "string"
    assert json.loads(ids["phone"]["value"])["phoneNumber"] == "+84987543212"
    assert ids["selfie"] == {"type": "base64", "value": "/9j/abc"}
    assert ids["dob"] == {"type": "string", "value": "12/31/2016"}


def test_metadata_scope_hides_attributes(bp: SandboxClient) -> None:
    bp.create(refId="u", customFields={"a": 1})
    data = bp.api("/refId/u", key=METADATA_KEY).json()["data"]
    assert "identities" not in data and "customFields" not in data and "certs" not in data
    assert data["refId"] == "u"


def test_attributes_scope_hides_pictures(bp: SandboxClient) -> None:
    bp.create(refId="u")
    data = bp.api("/refId/u", key=ATTRIBUTES_KEY).json()["data"]
    assert "given_name" in data["identities"] and "address" in data["identities"]
    assert all(v["type"] != "base64" for v in data["identities"].values())
    assert "selfie" not in data["identities"] and "passport" not in data["identities"]
    assert "customFields" in data and "certs" in data


@pytest.mark.parametrize("key", ["", "wrong-key", f"Bearer {FULL_KEY}", "sandbox-key"])
def test_missing_or_unknown_key_is_401(bp: SandboxClient, key: str) -> None:
    bp.create(refId="u")
    response = bp.api("/refId/u", key=key)
    assert response.status_code == 401
    _error(response.json(), 401)


def test_unknown_client_and_candidate_are_404(bp: SandboxClient) -> None:
    bp.create(refId="u")
    wrong_client = bp.http.get(f"{bp.url}/kyc/1.0/connect/other/refId/u", headers={"Authorization": FULL_KEY})
    assert wrong_client.status_code == 404
    _error(wrong_client.json(), 404)
    for path in ("/refId/nobody", "/recordId/0123456789abcdef01234567", "/no-such-route"):
        response = bp.api(path)
        assert response.status_code == 404, path
        _error(response.json(), 404)


def test_candidate_without_ref_id_is_reachable_by_record_id_only(bp: SandboxClient) -> None:
    created = bp.create()
    data = bp.api(f"/recordId/{created['recordId']}").json()["data"]
    assert "refId" not in data
    assert data["recordId"] == created["recordId"]


def test_duplicate_ref_id_is_409(bp: SandboxClient) -> None:
    bp.create(refId="u")
    response = bp.control("POST", "/candidates", {"refId": "u"})
    assert response.status_code == 409
    _error(response.json(), 409)


def test_list_pages_in_creation_order_and_filters_by_status(bp: SandboxClient) -> None:
    for i in range(25):
        bp.create(refId=f"u{i:02d}", status="approved" if i % 5 == 0 else "waiting")
    first = bp.api("/applicants").json()["data"]
    assert (first["total"], first["skip"], first["limit"]) == (25, 0, 20)
    assert [r["refId"] for r in first["records"]] == [f"u{i:02d}" for i in range(20)]
    rest = bp.api("/applicants", skip=20, limit=10).json()["data"]
    assert [r["refId"] for r in rest["records"]] == [f"u{i:02d}" for i in range(20, 25)]
    capped = bp.api("/applicants", limit=500).json()["data"]
    assert capped["limit"] == 100 and len(capped["records"]) == 25
    approved = bp.api("/applicants/approved", limit=2, skip=1).json()["data"]
    assert approved["total"] == 5
    assert [r["refId"] for r in approved["records"]] == ["u05", "u10"]
    assert bp.api("/applicants/blocked").json()["data"] == {"records": [], "total": 0, "skip": 0, "limit": 20}
    assert bp.api("/applicants", skip=-1).status_code == 400


def test_list_applies_key_scope(bp: SandboxClient) -> None:
    bp.create(refId="u")
    assert "identities" in bp.api("/applicants").json()["data"]["records"][0]
    assert "identities" not in bp.api("/applicants", key=METADATA_KEY).json()["data"]["records"][0]


def test_status_moves_set_dates_and_keep_older_ones(bp: SandboxClient) -> None:
    bp.create(refId="u")
    data = bp.api("/refId/u").json()["data"]
    assert data["status"] == "incomplete" and data["submitCount"] == 0
    assert not [k for k in data if k.endswith("Date")]

    bp.move("u", "waiting")
    bp.control("POST", "/clock", {"advance": 60})
    bp.move("u", "inreview")
    bp.control("POST", "/clock", {"advance": 60})
    bp.move("u", "approved")
    data = bp.api("/refId/u").json()["data"]
    assert data["status"] == "approved"
    waiting, inreview, approved = (
        datetime.fromisoformat(data[k]) for k in ("waitingDate", "inreviewDate", "approvedDate")
    )
    assert (inreview - waiting).total_seconds() >= 60 and (approved - inreview).total_seconds() >= 60

    bp.move("u", "blocked")
    blocked = bp.api("/refId/u").json()["data"]
    assert blocked["status"] == "blocked"
    assert {k for k in blocked if k.endswith("Date")} == {"waitingDate", "inreviewDate", "approvedDate"}
    assert blocked["approvedDate"] == data["approvedDate"]


def test_resubmission_grows_submit_count_and_moves_waiting_date(bp: SandboxClient) -> None:
    bp.create(refId="u", status="inreview")
    first = bp.api("/refId/u").json()["data"]
    assert first["submitCount"] == 1
    bp.move("u", "rejected")
    rejected = bp.api("/refId/u").json()["data"]
    assert "rejectedDate" not in rejected and rejected["inreviewDate"] == first["inreviewDate"]
    bp.control("POST", "/clock", {"advance": 5})
    bp.move("u", "waiting")
    second = bp.api("/refId/u").json()["data"]
    assert second["submitCount"] == 2
    assert second["waitingDate"] > first["waitingDate"]
    bp.move("u", "inreview")
    bp.move("u", "review_requested")
    requested = bp.api("/refId/u").json()["data"]
    assert DATE.match(requested["reviewRequestedDate"])
    bp.move("u", "waiting")
    assert bp.api("/refId/u").json()["data"]["submitCount"] == 3
    # Not a resubmission: inreview back to waiting leaves the count alone.
    bp.move("u", "inreview")
    bp.move("u", "waiting")
    assert bp.api("/refId/u").json()["data"]["submitCount"] == 3


def test_raw_status_is_stored_verbatim_without_dates(bp: SandboxClient) -> None:
    bp.create(refId="u", status="waiting")
    before = bp.api("/refId/u").json()["data"]
    bp.move("u", "approve", raw=True)
    after = bp.api("/refId/u").json()["data"]
    assert after["status"] == "approve"
    assert {k: v for k, v in after.items() if k.endswith("Date")} == {"waitingDate": before["waitingDate"]}
    assert bp.api("/applicants/approve").json()["data"]["total"] == 1
    bad = bp.control("POST", "/candidates/u/status", {"status": "approve"})
    assert bad.status_code == 400


def test_archive_drops_attributes(bp: SandboxClient) -> None:
    bp.create(refId="u", status="approved", customFields={"a": 1})
    bp.control("POST", "/candidates/u/archive")
    data = bp.api("/refId/u").json()["data"]
    assert data["isArchived"] is True
    assert data["identities"] == {} and data["customFields"] == {} and data["certs"] == {}
    assert data["status"] == "approved" and "approvedDate" in data


def test_deleted_candidate_is_404(bp: SandboxClient) -> None:
    created = bp.create(refId="u")
    assert bp.control("DELETE", "/candidates/u").status_code == 200
    assert bp.api("/refId/u").status_code == 404
    assert bp.api(f"/recordId/{created['recordId']}").status_code == 404
    assert bp.control("DELETE", "/candidates/u").status_code == 404
    # The refId is free again, as for a new user.
    bp.create(refId="u")


def test_unknown_key_with_unknown_client_is_401(bp: SandboxClient) -> None:
    response = bp.http.get(f"{bp.url}/kyc/1.0/connect/other/refId/u", headers={"Authorization": "nope"})
    assert response.status_code == 401
