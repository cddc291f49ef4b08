"""Google's error envelope ``{"error": {code, message, status, details?}}``, raised by handlers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..kit import EmulatedError

_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


class GeminiError(EmulatedError):
    """A Gemini API error; ``status`` names the HTTP status as Google's canonical code.

    Example::

        raise GeminiError(404, "Batch batches/abc not found.")
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        details: list[dict[str, Any]] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        error: dict[str, Any] = {
            "code": status,
            "message": message,
            "status": _STATUS.get(status, "UNKNOWN"),
        }
        if details:
            error["details"] = details
        super().__init__(status, {"error": error}, headers)
