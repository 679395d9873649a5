"""/v1/candidates and /v1/deliveries: what kyc-relay knows, and sending failed deliveries again."""

from __future__ import annotations

from flask import Response, request

from kyc import inspection, recovery
from kyc.views import cursor_from, id_from, limit_from
from service.admin.base import admin, db, hand, now, ok


@admin.get("/candidates")
def list_candidates() -> tuple[Response, int]:
    args = request.args
    return ok(
        inspection.candidate_page(
            db(), args.get("status") or None, limit_from(args.get("limit")), cursor_from(args.get("cursor"))
        )
    )


@admin.get("/candidates/<ref_id>")
def show_candidate(ref_id: str) -> tuple[Response, int]:
    return ok(inspection.candidate_detail(db(), ref_id))


@admin.get("/deliveries")
def list_deliveries() -> tuple[Response, int]:
    args = request.args
    return ok(
        inspection.delivery_page(
            db(),
            args.get("status") or None,
            id_from(args.get("subscriber"), "subscriber"),
            limit_from(args.get("limit")),
            cursor_from(args.get("cursor")),
        )
    )


@admin.get("/deliveries/<int:delivery_id>")
def show_delivery(delivery_id: int) -> tuple[Response, int]:
    return ok(inspection.delivery_detail(db(), delivery_id))


@admin.post("/deliveries/<int:delivery_id>/retry")
def retry_delivery(delivery_id: int) -> tuple[Response, int]:
    reopened = recovery.retry(db(), delivery_id, now())
    # Read before handing, so the answer shows the reopened state rather than a race with the worker.
    answer = inspection.delivery_detail(db(), reopened)
    hand([reopened])
    return ok(answer, 202)
