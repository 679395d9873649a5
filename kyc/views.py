"""What the admin read models share: times as JSON strings, and keyset pages.

A page is ordered newest first by id; its cursor is the last id it holds, and the
next page starts below it, so rows written meanwhile never shift a page.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from kyc.errors import Invalid, valid_id
from kyc.transitions import format_date

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
_SURROGATE = re.compile("[\ud800-\udfff]")

Row = TypeVar("Row")


def storable(text: str) -> bool:
    """Text every database can hold and compare: PostgreSQL refuses NUL characters, and no driver
    encodes a lone surrogate (JSON's \\ud800 escapes make one)."""
    return "\x00" not in text and _SURROGATE.search(text) is None


def iso(value: datetime | None) -> str | None:
    return None if value is None else format_date(value)


def limit_from(raw: str | int | None) -> int:
    if raw is None or raw == "":
        return DEFAULT_LIMIT
    limit = raw if isinstance(raw, int) else _whole(raw)
    if limit is None or not 1 <= limit <= MAX_LIMIT:
        raise Invalid("invalid_limit", f"limit must be a whole number from 1 to {MAX_LIMIT}")
    return limit


def cursor_from(raw: str | None) -> int | None:
    """The id to continue below, from a previous page's nextCursor."""
    if raw is None or raw == "":
        return None
    number = _whole(raw)
    if number is None:
        raise Invalid("invalid_cursor", "cursor must be a nextCursor from a previous page")
    return number


def id_from(raw: str | None, name: str) -> int | None:
    """An optional id given as text (a query parameter)."""
    if raw is None or raw == "":
        return None
    number = _whole(raw)
    if number is None:
        raise Invalid("invalid_field", f"{name} must be an id (a positive whole number)")
    return number


def page(
    rows: Sequence[Row], limit: int, key: Callable[[Row], int], view: Callable[[Row], Any]
) -> dict[str, Any]:
    """One page from up to limit + 1 rows: the extra row only says that another page follows."""
    shown = rows[:limit]
    more = len(rows) > limit
    return {
        "items": [view(row) for row in shown],
        "nextCursor": str(key(shown[-1])) if more else None,
    }


def _whole(raw: str) -> int | None:
    """A positive id-sized number written in ASCII digits, else None."""
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 19:
        return None
    number = int(raw)
    return number if valid_id(number) else None
