"""Why an operator's request cannot be carried out, in words the caller can act on.

The domain raises these; the web layer turns them into 400/404/409 answers and the
CLI into an error line. Messages never echo identity data.
"""

from __future__ import annotations

# Ids are 64-bit in PostgreSQL: a larger number can name nothing, and would fail in the driver.
MAX_ID = 2**63 - 1


class DomainError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Invalid(DomainError):
    """A field is missing, unknown or malformed."""


class NotFound(DomainError):
    """The named subscriber, candidate or delivery does not exist."""


class Conflict(DomainError):
    """The request is well formed but the record's state does not allow it."""


def valid_id(value: int) -> bool:
    return 0 < value <= MAX_ID
