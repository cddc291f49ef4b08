"""OpenAI's error envelope ``{"error": {message, type, param, code}}``, raised by handlers."""

from __future__ import annotations

from collections.abc import Mapping

from ..kit import EmulatedError


class OpenAIError(EmulatedError):
    """An OpenAI API error.

    Example::

        raise OpenAIError(404, "No such File object: file-abc", param="id")
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        body = {"error": {"message": message, "type": type, "param": param, "code": code}}
        super().__init__(status, body, headers)


def missing_param(param: str) -> OpenAIError:
    """400 ``missing_required_parameter`` for ``param``."""
    msg = f"Missing required parameter: '{param}'."
    return OpenAIError(400, msg, param=param, code="missing_required_parameter")
