"""LateIntError -> HTTP: one status per error class and one JSON shape for every error.

Every error body is ``{"error": {"type": "<class name>", "message": "..."}}``;
docs/server.md lists the statuses.
"""

from __future__ import annotations

from ..errors import (
    CorruptIndexError,
    DiskFullError,
    DocumentNotFoundError,
    DuplicateIdError,
    EmptyIndexError,
    IndexBusyError,
    InvalidInputError,
    LateIntError,
    ReadOnlyError,
)


class RequestTooLargeError(InvalidInputError):
    """The request body is larger than ``ServerLimits.max_body_bytes`` (HTTP 413)."""


class UnauthorizedError(LateIntError):
    """The server has an API key and the request did not present it (HTTP 401)."""


#: Most specific class first: the first match decides.
STATUS_BY_ERROR: tuple[tuple[type[LateIntError], int], ...] = (
    (RequestTooLargeError, 413),
    (DuplicateIdError, 409),
    (InvalidInputError, 400),
    (DocumentNotFoundError, 404),
    (EmptyIndexError, 409),
    (ReadOnlyError, 403),
    (IndexBusyError, 503),
    (DiskFullError, 507),
    (CorruptIndexError, 500),
)

#: Seconds a client should wait before retrying a write that met a busy index.
RETRY_AFTER_S = 1


def status_of(exc: LateIntError) -> int:
    """The HTTP status for an error (500 for anything not listed: storage, internal, model)."""
    if isinstance(exc, UnauthorizedError):
        return 401
    for kind, status in STATUS_BY_ERROR:
        if isinstance(exc, kind):
            return status
    return 500


def error_payload(kind: str, message: str) -> dict[str, dict[str, str]]:
    """The JSON body of an error response."""
    return {"error": {"type": kind, "message": message}}


def error_headers(exc: LateIntError) -> dict[str, str]:
    """Extra headers: Retry-After for a busy index, WWW-Authenticate for a missing key."""
    if isinstance(exc, IndexBusyError):
        return {"Retry-After": str(RETRY_AFTER_S)}
    if isinstance(exc, UnauthorizedError):
        return {"WWW-Authenticate": "Bearer"}
    return {}
