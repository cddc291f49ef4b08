"""xAI's error body ``{"code": <gRPC status text>, "error": <message>}``, raised by handlers."""

from __future__ import annotations

from collections.abc import Mapping

from ..kit import EmulatedError

# xAI puts the gRPC status text in `code` (its REST layer sits on gRPC).
INVALID_ARGUMENT = "Client specified an invalid argument"
NOT_FOUND = "Some requested entity was not found"
FAILED_PRECONDITION = "The system is not in a state required for the operation's execution"
UNAUTHENTICATED = "The request does not have valid authentication credentials"
RESOURCE_EXHAUSTED = "Some resource has been exhausted"
INTERNAL = "Internal error"
UNAVAILABLE = "The service is currently unavailable"
_CODE_OF_STATUS = {
    400: INVALID_ARGUMENT,
    401: UNAUTHENTICATED,
    404: NOT_FOUND,
    405: NOT_FOUND,
    412: FAILED_PRECONDITION,
    429: RESOURCE_EXHAUSTED,
    503: UNAVAILABLE,
}


class XAIError(EmulatedError):
    """An xAI API error.

    Example::

        raise XAIError(404, "Batch batch_x not found.")
    """

    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None) -> None:
        code = _CODE_OF_STATUS.get(status, INTERNAL if status >= 500 else INVALID_ARGUMENT)
        super().__init__(status, {"code": code, "error": message}, headers)
