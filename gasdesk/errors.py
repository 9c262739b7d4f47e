"""Typed domain errors. Domain code raises these; one handler turns them into JSON or a page."""

from __future__ import annotations

from typing import Any


class GasdeskError(Exception):
    """Base error with a machine-readable ``code`` and an HTTP status."""

    status_code = 400
    code = "bad_request"

    def __init__(self, message: str, *, code: str | None = None, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details is not None:
            body["details"] = self.details
        return {"error": body}


class InvalidInput(GasdeskError):
    status_code = 422
    code = "invalid_input"


class NotAuthenticated(GasdeskError):
    status_code = 401
    code = "not_authenticated"


class PermissionDenied(GasdeskError):
    status_code = 403
    code = "forbidden"


class NotFound(GasdeskError):
    status_code = 404
    code = "not_found"


class Conflict(GasdeskError):
    status_code = 409
    code = "conflict"


class PayloadTooLarge(GasdeskError):
    status_code = 413
    code = "payload_too_large"


class AccountLocked(GasdeskError):
    status_code = 423
    code = "account_locked"


class RateLimited(GasdeskError):
    status_code = 429
    code = "rate_limited"


class InsufficientStorage(GasdeskError):
    """The server's disk is full (or over quota): nothing was stored, the caller may try again later."""

    status_code = 507
    code = "insufficient_storage"


class ServiceUnavailable(GasdeskError):
    status_code = 503
    code = "unavailable"


class DatabaseUnavailable(ServiceUnavailable):
    """The database cannot be reached (down, restarting, unreachable): the request fails at once with 503
    instead of hanging or ending in a traceback; the next request connects again."""

    code = "database_unavailable"

    def __init__(self, message: str = "数据库暂时无法连接，请稍后重试") -> None:
        super().__init__(message, details={"retry_after_s": 5})
