"""Gemini's synchronous `models/{model}:generateContent`, `:embedContent` and
`:batchEmbedContents` (several texts in one call, not the Batch API): the response a
batch entry would carry, sent straight back, or its error as Google's HTTP error
(`{"error": {code, message, status}}`). Requests fail the same ways as in a batch:
`emulate-error:<status>`, a broken model rule, the `failure_rate` coin."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from ..kit import EmulatorConfig, json_response, requested_error
from ..kit.fakes import hex_digest, unit
from ..kit.realtime import body_key, json_object
from .errors import GeminiError
from .fakes import asked_error, fails, fake_embed, fake_generate, rule_error

if TYPE_CHECKING:
    from .app import GeminiEmulator

# google.rpc codes of the emulated failures (`fakes._ERRORS`) as HTTP statuses.
_FAILURES = ((500, "Internal error encountered."), (400, "Request contains an invalid argument."))


def answer(raw: bytes, model: str, verb: str, config: EmulatorConfig) -> Response:
    """The answer to `verb` (`generateContent`, `embedContent`, `batchEmbedContents`)."""
    embed = verb != "generateContent"
    request = json_object(raw, lambda: GeminiError(400, "Invalid JSON payload received."))
    key = body_key(raw)
    asked = requested_error(raw)
    if asked is not None:
        raise GeminiError(asked, asked_error(asked)["message"])
    refused = None if embed else rule_error(request, model)
    if refused is not None:
        raise GeminiError(400, refused["message"])
    if fails(config.seed, config.failure_rate, f"sync-{key}", 0):
        status, message = _FAILURES[int(unit(config.seed, "kind", key) * 2)]
        raise GeminiError(status, message)
    try:
        if verb == "batchEmbedContents":
            # Several texts in one synchronous call (what google-genai's embed_content uses).
            vectors = [fake_embed(item)["embedding"] for item in request["requests"]]
            result: dict[str, Any] = {"embeddings": vectors}
        elif embed:
            result = fake_embed(request)
        else:
            result = fake_generate(request, model, hex_digest(key))
    except (TypeError, KeyError, AttributeError, IndexError):
        raise GeminiError(400, "Request contains an invalid argument.") from None
    return json_response(result)


def route(emulator: GeminiEmulator, verb: str) -> Callable[[Request], Awaitable[Response]]:
    """The handler of `models/{model}:<verb>`."""

    async def call(request: Request) -> Response:
        raw = await request.body()
        model = request.path_params["model"]
        config = emulator.config
        tokens = max(1, len(raw) // 4)
        return await emulator.realtime_answer(
            request, raw, tokens, lambda: answer(raw, model, verb, config)
        )

    return call
