"""The SDK's errors. Every non-2xx answer carries ``{"error": {"code", "message", "details"?,
"retry_after"?}}``; it becomes an ``ApiError`` whose subclass names the status."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An error answer of the server."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: Any = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.retry_after = retry_after


class BadRequestError(ApiError):
    """400: the request is malformed (bad JSON, bad parameter, SQL syntax)."""


class UnauthorizedError(ApiError):
    """401: no credentials, or refused ones (wrong password, expired or revoked token)."""


class ForbiddenError(ApiError):
    """403: the credentials are valid but lack the permission."""


class NotFoundError(ApiError):
    """404: no such resource."""


class ConflictError(ApiError):
    """409: the resource exists already or is in use."""


class ValidationError(ApiError):
    """422: well-formed but invalid."""


class RateLimitError(ApiError):
    """429: over a rate limit; see ``retry_after``."""


class ServerError(ApiError):
    """5xx: the server failed or is unavailable."""


class SubscriptionError(Exception):
    """A WebSocket ``subscribe`` the server refused (``code`` is the protocol's error code)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


_BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequestError,
    401: UnauthorizedError,
    403: ForbiddenError,
    404: NotFoundError,
    409: ConflictError,
    422: ValidationError,
    429: RateLimitError,
}


def api_error_from(status: int, body: Any, retry_after_header: str | None = None) -> ApiError:
    """Builds the error for a non-2xx answer; ``body`` is the parsed JSON, or the raw text."""
    error = body.get("error") if isinstance(body, dict) else None
    fields: dict[str, Any] = error if isinstance(error, dict) else {}
    code = fields.get("code") if isinstance(fields.get("code"), str) else f"HTTP_{status}"
    message = fields.get("message")
    if not isinstance(message, str):
        message = body if isinstance(body, str) and body else "no error body"
    retry: float | None = None
    if isinstance(fields.get("retry_after"), (int, float)):
        retry = float(fields["retry_after"])
    elif retry_after_header:
        try:
            retry = float(retry_after_header)
        except ValueError:
            retry = None
    kind = _BY_STATUS.get(status, ServerError if status >= 500 else ApiError)
    return kind(status, str(code), message, fields.get("details"), retry)
