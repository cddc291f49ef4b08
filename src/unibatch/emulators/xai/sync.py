"""xAI's synchronous chat completions (`POST /v1/chat/completions`): the completion a batch
row would carry, sent straight back, or the error it would carry as xAI's HTTP error
(`{"code": <gRPC status text>, "error": <message>}`). Requests fail the same ways as in a
batch: `emulate-error:<status>`, `max_tokens` not positive, a broken model rule, the
`failure_rate` coin."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response

from ..kit import json_response, requested_error
from ..kit.fakes import hex_digest
from ..kit.realtime import body_key, json_object
from .batch import (
    ASKED_ERROR,
    BAD_MAX_TOKENS,
    EMULATED_FAILURE,
    FAILURE_MESSAGE,
    RULE_BROKEN,
    asked_message,
    fake_completion,
    request_kind,
    rule_error,
)
from .errors import XAIError

if TYPE_CHECKING:
    from .app import XAIEmulator

_UNREADABLE = "Failed to deserialize the JSON body into the target type"


def answer(raw: bytes, seed: int, failure_rate: float, now: float) -> Response:
    body = json_object(raw, lambda: XAIError(400, _UNREADABLE))
    key = body_key(raw)
    kind = request_kind(body, key, seed, failure_rate)
    if kind == ASKED_ERROR:
        raise XAIError(requested_error(raw) or 500, asked_message(body))
    if kind == BAD_MAX_TOKENS:
        limit = body.get("max_tokens", body.get("max_completion_tokens"))
        message = f"Maximum number of tokens max_tokens must be positive but max_tokens = {limit}"
        raise XAIError(400, message)
    if kind == RULE_BROKEN:
        raise XAIError(400, str(rule_error(body)))
    if kind == EMULATED_FAILURE:
        raise XAIError(500, FAILURE_MESSAGE)
    return json_response(fake_completion(body, hex_digest("sync", key), int(now)))


async def chat_completions(emulator: XAIEmulator, request: Request) -> Response:
    raw = await request.body()
    config = emulator.config
    now = emulator.clock()
    tokens = max(1, len(raw) // 4)
    return await emulator.realtime_answer(
        request, raw, tokens, lambda: answer(raw, config.seed, config.failure_rate, now)
    )
