"""/v1/subscribers: where events go, managed by operators."""

from __future__ import annotations

from flask import Response

from kyc import recovery, subscriptions
from kyc.errors import Invalid
from service.admin.base import admin, db, hand, json_body, no_content, now, ok


@admin.post("/subscribers")
def create_subscriber() -> tuple[Response, int]:
    # The only answer that carries the secret, besides a rotation's.
    return ok(subscriptions.create(db(), json_body(), now()), 201)


@admin.get("/subscribers")
def list_subscribers() -> tuple[Response, int]:
    return ok({"items": subscriptions.list_all(db())})


@admin.get("/subscribers/<int:subscriber_id>")
def show_subscriber(subscriber_id: int) -> tuple[Response, int]:
    return ok(subscriptions.show(db(), subscriber_id))


@admin.patch("/subscribers/<int:subscriber_id>")
def update_subscriber(subscriber_id: int) -> tuple[Response, int]:
    return ok(subscriptions.update(db(), subscriber_id, json_body(), now()))


@admin.delete("/subscribers/<int:subscriber_id>")
def delete_subscriber(subscriber_id: int) -> Response:
    subscriptions.delete(db(), subscriber_id)
    return no_content()


@admin.post("/subscribers/<int:subscriber_id>/rotate-secret")
def rotate_secret(subscriber_id: int) -> tuple[Response, int]:
    body = subscriptions.read_fields(json_body(required=False), frozenset({"secret"}))
    return ok(subscriptions.rotate_secret(db(), subscriber_id, now(), body.get("secret")))


@admin.post("/subscribers/<int:subscriber_id>/recover")
def recover(subscriber_id: int) -> tuple[Response, int]:
    body = json_body()
    unknown = sorted(set(body) - {"since"})
    if unknown:
        raise Invalid("unknown_field", f"unknown field {unknown[0]!r}; known: since")
    if "since" not in body:
        raise Invalid("missing_field", "since is required, e.g. 2026-11-27T10:00:00Z")
    reopened = recovery.recover(db(), subscriber_id, recovery.parse_since(body["since"]), now())
    hand(reopened)
    return ok({"recovered": len(reopened)}, 202)
