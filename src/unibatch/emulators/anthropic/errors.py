"""Anthropic's error envelope, raised by handlers; every response carries a ``request-id``."""

from __future__ import annotations

from collections.abc import Mapping

from ..kit import EmulatedError
from .results import ERROR_TYPES
from .wire import new_id


class AnthropicError(EmulatedError):
    """An Anthropic API error; its body and ``request-id`` header share one fresh id.

    Example::

        raise AnthropicError(404, "Message Batch msgbatch_x not found.")
    """

    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None) -> None:
        request_id = new_id("req_")
        body = {
            "type": "error",
            "error": {"type": ERROR_TYPES.get(status, "api_error"), "message": message},
            "request_id": request_id,
        }
        super().__init__(status, body, {"request-id": request_id, **(headers or {})})
