"""Outgoing event bodies: what downstream systems are told about a transition.

Only status facts and the integrator's own identifiers go out. Identity
attributes never do: the event is built from the tracked fields of a Snapshot,
which does not carry them.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from kyc import statuses
from kyc.transitions import format_date


def new_event_id() -> str:
    return "msg_" + uuid.uuid4().hex


def event_body(
    *,
    status: str,
    previous_status: str | None,
    changed_at: datetime,
    sequence: int,
    ref_id: str | None,
    record_id: str | None,
    blockpass_id: str | None,
    custom_fields: Mapping[str, Any] | None,
    created_at: datetime,
) -> tuple[str, str]:
    """(type, JSON body) for one transition, serialised once so every retry sends the same bytes."""
    kind = statuses.event_type(status)
    body = {
        "type": kind,
        "timestamp": format_date(created_at),
        "data": {
            "refId": ref_id,
            "recordId": record_id,
            "blockPassID": blockpass_id,
            "status": status,
            "previousStatus": previous_status,
            "changedAt": format_date(changed_at),
            "sequence": sequence,
            "customFields": dict(custom_fields) if custom_fields else {},
        },
    }
    return kind, json.dumps(body, separators=(",", ":"), sort_keys=True)
