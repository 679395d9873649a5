"""The admin API: bearer auth, subscriber management, candidate and delivery inspection, resending."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from kyc.db import Database
from kyc.models import Delivery, Subscriber
from kyc.subscribers import CONFIGURED
from service import create_app

TOKEN = "t" * 40
AUTH = {"Authorization": f"Bearer {TOKEN}"}
IDENTITY = {"given_name": "Helmer", "family_name": "StromanBot", "email": "helmer@example.org"}
IDENTITY_MARKERS = ("given_name", "family_name", "identities", "selfie", "passport", "@", *IDENTITY.values())
RETRIES = 3  # the settings fixture's DELIVERY_RETRY_SCHEDULE: a delivery fails for good on the 4th refusal


@pytest.fixture
def admin_app(settings: Any, redis: Any, db: Database) -> Iterator[Flask]:
    app = create_app(replace(settings, admin_token=TOKEN), redis=redis)
    yield app
    if "kyc.db" in app.extensions:
        app.extensions["kyc.db"].dispose()


@pytest.fixture
def admin(admin_app: Flask) -> Any:
    return admin_app.test_client()


def call(admin: Any, method: str, path: str, body: Any = None, **options: Any) -> Any:
    headers = {**AUTH, **options.pop("headers", {})}
    if body is not None:
        options["json"] = body
    return admin.open(path, method=method, headers=headers, **options)


def new_subscriber(admin: Any, **fields: Any) -> dict[str, Any]:
    answer = call(admin, "POST", "/v1/subscribers", {"url": "https://hooks.example/kyc", **fields})
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()


def deliveries_in(db: Database, status: str) -> int:
    with db.transaction() as session:
        query = select(func.count()).select_from(Delivery).where(Delivery.status == status)
        return int(session.scalar(query) or 0)


def configured_id(db: Database) -> int:
    with db.transaction() as session:
        return int(session.scalars(select(Subscriber.id).where(Subscriber.source == CONFIGURED)).one())


def sync(client: Any, sandbox: Any, drain: Any, ref_id: str, until: Any, **candidate: Any) -> None:
    """A candidate appears at Blockpass and its widget callback arrives; workers run until `until()`."""
    sandbox.bp.create(refId=ref_id, status="waiting", **candidate)
    assert client.post("/v1/callbacks", json={"refId": ref_id}).status_code == 202
    drain(until=until)


# Auth


def test_routes_do_not_exist_without_an_admin_token(client: Any) -> None:
    answer = client.get("/v1/subscribers", headers=AUTH)
    assert answer.status_code == 404
    assert answer.get_json()["error"]["code"] == "not_found"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer " + "x" * 40},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": TOKEN},
    ],
)
def test_missing_or_wrong_bearer_token_is_refused(admin: Any, headers: dict[str, str]) -> None:
    for method, path in (("GET", "/v1/subscribers"), ("POST", "/v1/deliveries/1/retry")):
        answer = admin.open(path, method=method, headers=headers)
        assert answer.status_code == 401
        assert answer.get_json()["error"]["code"] == "unauthorized"
        assert answer.headers["WWW-Authenticate"].startswith("Bearer")


# Subscribers


def test_created_subscriber_shows_its_secret_once(admin: Any) -> None:
    created = new_subscriber(admin, description="billing", eventTypes=["candidate.approved"], rateLimit=5)
    secret = created["secret"]
    assert secret.startswith("whsec_") and len(base64.b64decode(secret[6:])) == 32
    assert created["eventTypes"] == ["candidate.approved"]
    assert created["rateLimit"] == 5.0 and created["enabled"] is True and created["source"] is None
    shown = call(admin, "GET", f"/v1/subscribers/{created['id']}")
    listed = call(admin, "GET", "/v1/subscribers")
    assert shown.status_code == 200 and listed.status_code == 200
    assert {**shown.get_json(), "secret": secret} == created
    for answer in (shown, listed):
        assert secret not in answer.get_data(as_text=True)
        assert "secret" not in answer.get_json()
    assert [item["id"] for item in listed.get_json()["items"]] == [created["id"]]


def test_a_given_secret_is_kept(admin: Any) -> None:
    secret = "whsec_" + base64.b64encode(b"k" * 24).decode()
    assert new_subscriber(admin, secret=secret)["secret"] == secret


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"description": "no url"}, "missing_field"),
        ({"url": "ftp://hooks.example/kyc"}, "invalid_field"),
        ({"url": "https://"}, "invalid_field"),
        ({"url": "https://hooks.example/" + "a" * 2048}, "invalid_field"),
        ({"url": 42}, "invalid_field"),
        ({"url": "https://hooks.example", "description": "d" * 513}, "invalid_field"),
        ({"url": "https://hooks.example", "eventTypes": []}, "invalid_field"),
        ({"url": "https://hooks.example", "eventTypes": ["approved"]}, "invalid_field"),
        ({"url": "https://hooks.example", "eventTypes": "candidate.approved"}, "invalid_field"),
        ({"url": "https://hooks.example", "enabled": "yes"}, "invalid_field"),
        ({"url": "https://hooks.example", "secret": "s3cret"}, "invalid_field"),
        (
            {"url": "https://hooks.example", "secret": "whsec_" + base64.b64encode(b"k" * 16).decode()},
            "invalid_field",
        ),
        ({"url": "https://hooks.example", "secret": "whsec_not base64!"}, "invalid_field"),
        ({"url": "https://hooks.example", "rateLimit": 0}, "invalid_field"),
        ({"url": "https://hooks.example", "rateLimit": -1}, "invalid_field"),
        ({"url": "https://hooks.example", "rateLimit": True}, "invalid_field"),
        ({"url": "https://hooks.example", "eventType": ["candidate.approved"]}, "unknown_field"),
    ],
)
def test_invalid_subscriber_fields_are_refused(admin: Any, body: dict[str, Any], code: str) -> None:
    answer = call(admin, "POST", "/v1/subscribers", body)
    assert answer.status_code == 400
    assert answer.get_json()["error"]["code"] == code
    assert call(admin, "GET", "/v1/subscribers").get_json()["items"] == []


@pytest.mark.parametrize(
    ("data", "content_type", "status", "code"),
    [
        ('{"url": "https://hooks.example"}', "text/plain", 415, "unsupported_media_type"),
        ("{not json", "application/json", 400, "invalid_json"),
        ('["https://hooks.example"]', "application/json", 400, "not_an_object"),
    ],
)
def test_bodies_must_be_json_objects(
    admin: Any, data: str, content_type: str, status: int, code: str
) -> None:
    answer = call(admin, "POST", "/v1/subscribers", data=data, content_type=content_type)
    assert answer.status_code == status
    assert answer.get_json()["error"]["code"] == code


def test_update_changes_only_the_fields_given(admin: Any, db: Database) -> None:
    created = new_subscriber(admin, eventTypes=["candidate.approved"], description="before")
    path = f"/v1/subscribers/{created['id']}"
    changed = call(admin, "PATCH", path, {"url": "http://other.example/hook", "rateLimit": 2.5}).get_json()
    assert changed["url"] == "http://other.example/hook" and changed["rateLimit"] == 2.5
    assert changed["description"] == "before" and changed["eventTypes"] == ["candidate.approved"]
    assert changed["updatedAt"] >= created["updatedAt"]
    cleared = call(admin, "PATCH", path, {"eventTypes": None, "rateLimit": None}).get_json()
    assert cleared["eventTypes"] is None and cleared["rateLimit"] is None
    refused = call(admin, "PATCH", path, {"secret": created["secret"]})
    assert refused.status_code == 400 and "rotate-secret" in refused.get_json()["error"]["message"]
    assert call(admin, "PATCH", path, {"enabled": 1}).status_code == 400


def test_reenabling_clears_why_it_was_disabled(admin: Any, db: Database) -> None:
    created = new_subscriber(admin)
    path = f"/v1/subscribers/{created['id']}"
    disabled = call(admin, "PATCH", path, {"enabled": False}).get_json()
    assert disabled["enabled"] is False
    assert disabled["disabledReason"] == "disabled by an operator" and disabled["disabledAt"]
    with db.transaction() as session:
        session.get(Subscriber, created["id"]).failing_since = datetime.now(UTC)  # type: ignore[union-attr]
    assert call(admin, "GET", path).get_json()["failingSince"] is not None
    enabled = call(admin, "PATCH", path, {"enabled": True}).get_json()
    assert enabled["enabled"] is True
    assert (
        enabled["disabledReason"] is None
        and enabled["disabledAt"] is None
        and enabled["failingSince"] is None
    )


def test_unknown_subscriber_is_not_found(admin: Any) -> None:
    for method, path, body in (
        ("GET", "/v1/subscribers/999", None),
        ("GET", "/v1/subscribers/99999999999999999999", None),
        ("PATCH", "/v1/subscribers/999", {"enabled": False}),
        ("DELETE", "/v1/subscribers/999", None),
        ("POST", "/v1/subscribers/999/rotate-secret", None),
        ("POST", "/v1/subscribers/999/recover", {"since": "2026-01-01T00:00:00Z"}),
        ("GET", "/v1/subscribers/abc", None),
    ):
        answer = call(admin, method, path, body)
        assert answer.status_code == 404, (method, path)
        assert answer.get_json()["error"]["code"] == "not_found"


def test_rotation_keeps_the_previous_secret_for_a_day(admin: Any, db: Database) -> None:
    created = new_subscriber(admin)
    path = f"/v1/subscribers/{created['id']}/rotate-secret"
    before = datetime.now(UTC)
    rotated = call(admin, "POST", path)
    assert rotated.status_code == 200
    answer = rotated.get_json()
    assert answer["secret"].startswith("whsec_") and answer["secret"] != created["secret"]
    expires = datetime.fromisoformat(answer["previousSecretExpiresAt"])
    assert (
        before + timedelta(hours=24) - timedelta(seconds=1)
        <= expires
        <= datetime.now(UTC) + timedelta(hours=24)
    )
    with db.transaction() as session:
        stored = session.get(Subscriber, created["id"])
        assert stored is not None
        assert (stored.secret, stored.previous_secret) == (answer["secret"], created["secret"])
    given = "whsec_" + base64.b64encode(b"g" * 32).decode()
    assert call(admin, "POST", path, {"secret": given}).get_json()["secret"] == given
    assert call(admin, "POST", path, {"secret": given}).status_code == 400  # the one in force already
    assert call(admin, "POST", path, {"secret": "whsec_short"}).status_code == 400
    assert call(admin, "POST", path, {"other": 1}).get_json()["error"]["code"] == "unknown_field"


def test_after_rotation_a_receiver_on_the_old_secret_still_verifies(
    admin: Any, sandbox: Any, receiver: Any, db: Database, drain: Any
) -> None:
    call(admin, "PATCH", f"/v1/subscribers/{configured_id(db)}", {"enabled": False})
    created = new_subscriber(admin, url=receiver.url + "?rotated", secret=receiver.secret)
    call(admin, "POST", f"/v1/subscribers/{created['id']}/rotate-secret")
    sync(admin, sandbox, drain, "user-1", until=lambda: len(receiver.received) == 1)
    assert receiver.rejected == 0
    assert len(receiver.received[0].headers["webhook-signature"].split(" ")) == 2


def test_the_configured_subscriber_follows_the_environment(admin: Any, db: Database, ctx: Any) -> None:
    path = f"/v1/subscribers/{configured_id(db)}"
    assert call(admin, "GET", path).get_json()["source"] == "env"
    for method, sub, body in (
        ("PATCH", "", {"url": "https://elsewhere.example"}),
        ("PATCH", "", {"eventTypes": ["candidate.approved"]}),
        ("POST", "/rotate-secret", None),
        ("DELETE", "", None),
    ):
        answer = call(admin, method, path + sub, body)
        assert answer.status_code == 409, (method, sub)
        assert answer.get_json()["error"]["code"] == "managed_by_configuration"
    assert call(admin, "PATCH", path, {"description": "ops note", "rateLimit": 1}).status_code == 200


def test_deleting_a_subscriber_deletes_its_deliveries(
    admin: Any, sandbox: Any, receiver: Any, db: Database, drain: Any
) -> None:
    created = new_subscriber(admin, url=receiver.url + "?second", secret=receiver.secret)
    sync(admin, sandbox, drain, "user-1", until=lambda: len(receiver.received) == 2)
    assert deliveries_in(db, "delivered") == 2
    assert call(admin, "DELETE", f"/v1/subscribers/{created['id']}").status_code == 204
    assert call(admin, "GET", f"/v1/subscribers/{created['id']}").status_code == 404
    assert deliveries_in(db, "delivered") == 1


# Candidates


def test_candidate_shows_history_and_deliveries_and_no_identity_data(
    admin: Any, sandbox: Any, receiver: Any, db: Database, drain: Any
) -> None:
    identities = {name: {"type": "string", "value": value} for name, value in IDENTITY.items()}
    sync(
        admin,
        sandbox,
        drain,
        "user-1",
        until=lambda: len(receiver.received) == 1,
        customFields={"RiskLevel": "Low"},
        identities=identities,
    )
    sandbox.bp.move("user-1", "inreview")
    admin.post("/v1/callbacks", json={"refId": "user-1"})
    drain(until=lambda: len(receiver.received) == 2)

    answer = call(admin, "GET", "/v1/candidates/user-1")
    assert answer.status_code == 200
    text = answer.get_data(as_text=True)
    assert not any(marker in text for marker in IDENTITY_MARKERS), text
    candidate = answer.get_json()
    assert candidate["status"] == "inreview" and candidate["refId"] == "user-1"
    assert len(candidate["recordId"]) == 24 and candidate["blockPassID"]
    assert candidate["customFields"] == {"RiskLevel": "Low"} and candidate["isArchived"] is False
    assert [(h["sequence"], h["from"], h["to"], h["dated"]) for h in candidate["history"]] == [
        (1, None, "waiting", True),
        (2, "waiting", "inreview", True),
    ]
    events = candidate["events"]
    assert [(e["type"], e["sequence"]) for e in events] == [
        ("candidate.waiting", 1),
        ("candidate.inreview", 2),
    ]
    assert events[0]["id"] == receiver.received[0].headers["webhook-id"]
    for event in events:
        assert [(d["subscriberId"], d["status"], d["attempts"]) for d in event["deliveries"]] == [
            (configured_id(db), "delivered", 1)
        ]
    missing = call(admin, "GET", "/v1/candidates/nobody")
    assert missing.status_code == 404 and missing.get_json()["error"]["code"] == "not_found"


def test_candidates_and_deliveries_are_paged_newest_first(
    admin: Any, sandbox: Any, receiver: Any, db: Database, drain: Any
) -> None:
    for ref_id in ("user-1", "user-2", "user-3"):
        sync(admin, sandbox, drain, ref_id, until=lambda: True)
    drain(until=lambda: len(receiver.received) == 3)

    first = call(admin, "GET", "/v1/candidates?limit=2").get_json()
    assert [c["refId"] for c in first["items"]] == ["user-3", "user-2"] and first["nextCursor"]
    second = call(admin, "GET", f"/v1/candidates?limit=2&cursor={first['nextCursor']}").get_json()
    assert [c["refId"] for c in second["items"]] == ["user-1"] and second["nextCursor"] is None
    assert len(call(admin, "GET", "/v1/candidates?status=waiting").get_json()["items"]) == 3
    assert call(admin, "GET", "/v1/candidates?status=approved").get_json()["items"] == []

    page = call(admin, "GET", f"/v1/deliveries?subscriber={configured_id(db)}&limit=2").get_json()
    assert [d["refId"] for d in page["items"]] == ["user-3", "user-2"]
    assert page["items"][0]["status"] == "delivered" and page["items"][0]["eventType"] == "candidate.waiting"
    rest = call(admin, "GET", f"/v1/deliveries?limit=2&cursor={page['nextCursor']}").get_json()
    assert [d["refId"] for d in rest["items"]] == ["user-1"] and rest["nextCursor"] is None
    assert call(admin, "GET", "/v1/deliveries?status=failed").get_json()["items"] == []


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("/v1/candidates?limit=0", "invalid_limit"),
        ("/v1/candidates?limit=201", "invalid_limit"),
        ("/v1/candidates?limit=ten", "invalid_limit"),
        ("/v1/candidates?cursor=abc", "invalid_cursor"),
        ("/v1/deliveries?cursor=-1", "invalid_cursor"),
        ("/v1/deliveries?status=lost", "invalid_status"),
        ("/v1/deliveries?subscriber=first", "invalid_field"),
    ],
)
def test_bad_query_parameters_are_refused(admin: Any, query: str, code: str) -> None:
    answer = call(admin, "GET", query)
    assert answer.status_code == 400
    assert answer.get_json()["error"]["code"] == code


# Failed deliveries


def fail_deliveries(
    admin: Any, sandbox: Any, receiver: Any, db: Database, drain: Any, ref_ids: tuple[str, ...]
) -> None:
    receiver.fail_next(*[500] * ((RETRIES + 1) * len(ref_ids)))
    for ref_id in ref_ids:
        sync(admin, sandbox, drain, ref_id, until=lambda: True)
    drain(until=lambda: deliveries_in(db, "failed") == len(ref_ids))


def test_failed_delivery_is_listed_retried_and_delivered(
    admin: Any, sandbox: Any, receiver: Any, db: Database, drain: Any
) -> None:
    fail_deliveries(admin, sandbox, receiver, db, drain, ("user-1",))
    failed = call(admin, "GET", "/v1/deliveries?status=failed").get_json()["items"]
    assert [(d["refId"], d["attempts"]) for d in failed] == [("user-1", RETRIES + 1)]
    assert failed[0]["lastError"].startswith("HTTP 500")
    path = f"/v1/deliveries/{failed[0]['id']}"
    detail = call(admin, "GET", path).get_json()
    assert [(a["statusCode"], a["responseBody"]) for a in detail["history"]] == [(500, "not now")] * (
        RETRIES + 1
    )
    assert all(a["durationMs"] >= 0 and a["error"] is None for a in detail["history"])

    retried = call(admin, "POST", path + "/retry")
    assert retried.status_code == 202
    assert (retried.get_json()["status"], retried.get_json()["attempts"]) == ("pending", 0)
    drain(until=lambda: len(receiver.received) == 1)
    assert receiver.types() == ["candidate.waiting"]
    after = call(admin, "GET", path).get_json()
    assert (after["status"], after["attempts"], len(after["history"])) == ("delivered", 1, RETRIES + 2)
    again = call(admin, "POST", path + "/retry")
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "not_failed"
    assert call(admin, "POST", "/v1/deliveries/999999/retry").status_code == 404
    assert call(admin, "GET", "/v1/deliveries/999999").status_code == 404


def test_recover_resends_every_failed_delivery_since_a_time(
    admin: Any, sandbox: Any, receiver: Any, db: Database, drain: Any
) -> None:
    started = datetime.now(UTC) - timedelta(seconds=1)
    fail_deliveries(admin, sandbox, receiver, db, drain, ("user-1", "user-2"))
    path = f"/v1/subscribers/{configured_id(db)}/recover"
    later = (datetime.now(UTC) + timedelta(minutes=1)).isoformat()
    assert call(admin, "POST", path, {"since": later}).get_json() == {"recovered": 0}

    answer = call(admin, "POST", path, {"since": started.isoformat().replace("+00:00", "Z")})
    assert answer.status_code == 202 and answer.get_json() == {"recovered": 2}
    drain(until=lambda: len(receiver.received) == 2)
    assert sorted(item.payload["data"]["refId"] for item in receiver.received) == ["user-1", "user-2"]
    assert deliveries_in(db, "failed") == 0


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({}, "missing_field"),
        ({"since": "yesterday"}, "invalid_field"),
        ({"since": "2026-11-27T10:00:00"}, "invalid_field"),
        ({"since": 1764237600}, "invalid_field"),
        ({"since": "2026-11-27T10:00:00Z", "until": "now"}, "unknown_field"),
    ],
)
def test_recover_needs_a_time_with_its_zone(admin: Any, db: Database, ctx: Any, body: Any, code: str) -> None:
    answer = call(admin, "POST", f"/v1/subscribers/{configured_id(db)}/recover", body)
    assert answer.status_code == 400
    assert answer.get_json()["error"]["code"] == code


def test_a_disabled_subscriber_is_not_recovered(admin: Any, db: Database, ctx: Any) -> None:
    path = f"/v1/subscribers/{configured_id(db)}"
    call(admin, "PATCH", path, {"enabled": False})
    answer = call(admin, "POST", path + "/recover", {"since": "2026-01-01T00:00:00Z"})
    assert answer.status_code == 409 and answer.get_json()["error"]["code"] == "subscriber_disabled"
