"""Anthropic's synchronous Messages endpoint (`POST /v1/messages`): the Message a batch
row would carry, sent straight back, or the error it would carry as the HTTP error
Anthropic answers (https://docs.claude.com/en/api/errors). Requests fail the same ways as
in a batch: `emulate-error:<status>`, params Claude refuses, the `failure_rate` coin."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response

from ..kit import json_response
from ..kit.fakes import hex_digest
from ..kit.realtime import body_key, json_object
from .errors import AnthropicError
from .results import ERROR_TYPES, RowContext, result_of

if TYPE_CHECKING:
    from .app import AnthropicEmulator

_UNREADABLE = "There was an issue with the formatting or content of your request."
_STATUS = {error_type: status for status, error_type in ERROR_TYPES.items()}


def answer(raw: bytes, ctx: RowContext) -> Response:
    params = json_object(raw, lambda: AnthropicError(400, _UNREADABLE))
    key = body_key(raw)
    result = result_of(ctx, key, params, raw)
    if result["type"] == "succeeded":
        message = dict(result["message"])
        message["usage"] = {**message["usage"], "service_tier": "standard"}
        request_id = f"req_{hex_digest('sync', key, size=12)}"
        return json_response(message, 200, {"request-id": request_id})
    error = result["error"]["error"]
    raise AnthropicError(_STATUS.get(error["type"], 500), error["message"])


async def messages(emulator: AnthropicEmulator, request: Request) -> Response:
    raw = await request.body()
    config = emulator.config
    ctx = RowContext("sync", config.failure_rate, config.seed)
    # Anthropic counts input tokens and the max_tokens asked for against its limits.
    tokens = max(1, len(raw) // 4)
    return await emulator.realtime_answer(request, raw, tokens, lambda: answer(raw, ctx))
