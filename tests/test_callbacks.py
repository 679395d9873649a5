"""POST /v1/callbacks: validation, the error shape, CORS, coalescing."""

from __future__ import annotations

import json
from typing import Any

import pytest
from redis import Redis

from worker.hints import Inbox


def queued(redis: Redis) -> int:
    """Syncs waiting to be taken up: hints in the inbox."""
    return Inbox(redis).counts()["hints_pending"]


def post(client: Any, body: Any, content_type: str = "application/json", **headers: str) -> Any:
    data = body if isinstance(body, str | bytes) else json.dumps(body)
    return client.post("/v1/callbacks", data=data, content_type=content_type, headers=headers)


def test_accepts_a_refid_and_queues_one_sync(client: Any, redis: Redis) -> None:
    answer = post(client, {"refId": "user-1"})
    assert answer.status_code == 202
    assert answer.get_json() == {"accepted": True, "refId": "user-1", "recordId": None}
    assert queued(redis) == 1


def test_accepts_text_plain_as_sent_by_sendbeacon(client: Any, redis: Redis) -> None:
    answer = post(
        client, '{"refId": "user-1", "recordId": "5e5884feb785310019346655"}', "text/plain;charset=UTF-8"
    )
    assert answer.status_code == 202
    assert answer.get_json()["recordId"] == "5e5884feb785310019346655"


def test_accepts_a_recordid_alone(client: Any) -> None:
    assert post(client, {"recordId": "5e5884feb785310019346655"}).status_code == 202


def test_unknown_fields_are_ignored(client: Any) -> None:
    assert post(client, {"refId": "user-1", "status": "approved", "extra": [1]}).status_code == 202


def test_repeated_callbacks_collapse_into_one_pending_sync(client: Any, redis: Redis) -> None:
    for _ in range(5):
        assert post(client, {"refId": "user-1"}).status_code == 202
    assert queued(redis) == 1
    post(client, {"refId": "user-2"})
    assert queued(redis) == 2


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code"),
    [
        ("{not json", "application/json", 400, "invalid_json"),
        (b"\xff\xfe", "application/json", 400, "invalid_json"),
        ("[]", "application/json", 400, "not_an_object"),
        ('"user-1"', "application/json", 400, "not_an_object"),
        ("{}", "application/json", 400, "missing_id"),
        ('{"refId": null}', "application/json", 400, "missing_id"),
        ('{"refId": 42}', "application/json", 400, "invalid_field"),
        ('{"recordId": ["a"]}', "application/json", 400, "invalid_field"),
        ('{"refId": ""}', "application/json", 400, "invalid_field"),
        (json.dumps({"refId": "a" * 129}), "application/json", 400, "invalid_field"),
        ('{"refId": "user 1"}', "application/json", 400, "invalid_field"),
        ('{"refId": "<script>"}', "application/json", 400, "invalid_field"),
        ('{"refId": "ok", "recordId": "bad/id"}', "application/json", 400, "invalid_field"),
        ('{"refId": "user-1"}', "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
        ('{"refId": "user-1"}', "", 415, "unsupported_media_type"),
    ],
)
def test_bad_input_is_refused_with_one_error_shape_and_queues_nothing(
    client: Any, redis: Redis, body: Any, content_type: str, status: int, code: str
) -> None:
    answer = post(client, body, content_type)
    assert answer.status_code == status
    error = answer.get_json()["error"]
    assert error["code"] == code and error["message"]
    assert set(answer.get_json()) == {"error"}
    assert queued(redis) == 0


def test_oversized_body_is_refused_with_413(client: Any, redis: Redis) -> None:
    answer = post(client, json.dumps({"refId": "user-1", "pad": "x" * 17000}))
    assert answer.status_code == 413
    assert answer.get_json()["error"]["code"] == "payload_too_large"
    assert queued(redis) == 0


def test_a_body_of_exactly_the_limit_is_accepted(client: Any) -> None:
    head = '{"refId": "user-1", "pad": "'
    body = head + "x" * (16 * 1024 - len(head) - 2) + '"}'
    assert len(body) == 16 * 1024
    assert post(client, body).status_code == 202


def test_an_id_of_128_characters_is_accepted(client: Any) -> None:
    assert post(client, {"refId": "a" * 128}).status_code == 202


def test_the_invalid_value_is_not_echoed_back(client: Any) -> None:
    answer = post(client, {"refId": "jane.doe@example.com secret"})
    assert "jane.doe" not in answer.get_data(as_text=True)


def test_other_methods_and_paths_use_the_error_shape(client: Any) -> None:
    assert client.get("/v1/callbacks").get_json()["error"]["code"] == "method_not_allowed"
    assert client.get("/nowhere").get_json()["error"]["code"] == "not_found"


def test_cors_preflight_for_an_allowed_origin(client: Any) -> None:
    answer = client.options(
        "/v1/callbacks",
        headers={
            "Origin": "https://shop.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert answer.status_code == 200
    assert answer.headers["Access-Control-Allow-Origin"] == "https://shop.example"
    assert "POST" in answer.headers["Access-Control-Allow-Methods"]
    assert "Content-Type" in answer.headers["Access-Control-Allow-Headers"]


def test_cors_headers_on_the_answer_for_an_allowed_origin(client: Any) -> None:
    answer = post(client, {"refId": "user-1"}, Origin="https://shop.example")
    assert answer.headers["Access-Control-Allow-Origin"] == "https://shop.example"
    assert "Origin" in answer.headers["Vary"]


def test_no_cors_grant_for_another_origin(client: Any) -> None:
    answer = client.options(
        "/v1/callbacks", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
    )
    assert "Access-Control-Allow-Origin" not in answer.headers


def test_redis_down_is_a_503_in_the_error_shape(settings: Any) -> None:
    from redis import Redis as Client

    from service import create_app

    app = create_app(settings, redis=Client.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2))
    answer = app.test_client().post("/v1/callbacks", json={"refId": "user-1"})
    assert answer.status_code == 503
    assert answer.get_json()["error"]["code"] == "unavailable"
