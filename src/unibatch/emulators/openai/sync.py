"""OpenAI's synchronous endpoints (chat completions, completions, embeddings, responses):
the answer a batch line would get, sent straight back.

The body is the one a batch result row carries (`fakes.FAKERS`), and a request fails the
same ways as in a batch: `emulate-error:<status>` in its text, a broken model rule (400)
or the `failure_rate` coin, thrown per request body. Errors use OpenAI's envelope
(https://platform.openai.com/docs/guides/error-codes) and carry `x-request-id`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING

import orjson
from starlette.requests import Request
from starlette.responses import Response

from unibatch.providers.openai.rules import RULES
from unibatch.providers.rules import RuleTable

from ..kit import EmulatorConfig, json_response, requested_error
from ..kit.fakes import hex_digest, tokens
from ..kit.realtime import body_key, json_object
from .errors import OpenAIError
from .fakes import FAKERS, Faker
from .results import RowContext, _http_error, asked_error, fails, rule_error

if TYPE_CHECKING:
    from ..kit import ProviderEmulator

Answer = Callable[[], Response]
_UNREADABLE = "We could not parse the JSON body of your request."


def prompt_tokens(raw: bytes) -> int:
    """Tokens a request counts against a TPM limit when it arrives (about four bytes a
    token, plus the output it asks for, as OpenAI counts `max_tokens`)."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return tokens(raw.decode("utf-8", "replace"))
    most = 0
    if isinstance(body, dict):
        found = body.get("max_completion_tokens") or body.get("max_tokens") or 0
        most = found if isinstance(found, int) else 0
    return max(1, len(raw) // 4) + most


def answer_for(
    endpoint: str,
    raw: bytes,
    config: EmulatorConfig,
    now: float,
    seq: int,
    rules: RuleTable = RULES,
    fakers: Mapping[str, Faker] = FAKERS,
) -> Answer:
    """How to answer one request to `endpoint` (`/v1/chat/completions`, ...), refusing
    what `rules` (the provider's table) refuse."""

    def answer() -> Response:
        body = json_object(raw, lambda: OpenAIError(400, _UNREADABLE))
        if not isinstance(body.get("model"), str):
            raise OpenAIError(400, "you must provide a model parameter", param="model")
        rid = hex_digest("sync", seq, body_key(raw))
        headers = {"x-request-id": f"req_{rid}"}
        key = body_key(raw)
        ctx = RowContext("sync", endpoint, int(now), config.failure_rate, config.seed)
        asked = requested_error(raw)
        if asked is not None:
            return json_response({"error": asked_error(asked)}, asked, headers)
        refused = rule_error(body, rules)
        if refused is not None:
            return json_response({"error": refused}, 400, headers)
        if fails(ctx, key):
            status, error = _http_error(ctx, key)
            return json_response({"error": error}, status, headers)
        try:
            response, _ = fakers[endpoint](body, rid, int(now))
        except (TypeError, ValueError, KeyError, AttributeError):
            raise OpenAIError(400, "The emulator could not interpret this request body.") from None
        return json_response(response, 200, headers)

    return answer


class SyncRoutes:
    """The synchronous routes of an OpenAI-shaped emulator (OpenAI's own, and the
    OpenAI-compatible servers `local` stands for)."""

    ENDPOINTS = ("/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/responses")

    def __init__(
        self,
        emulator: ProviderEmulator,
        endpoints: tuple[str, ...] = ENDPOINTS,
        rules: RuleTable = RULES,
        root: str = "",
        fakers: Mapping[str, Faker] = FAKERS,
    ) -> None:
        self.emulator = emulator
        self.endpoints = endpoints
        self.rules = rules
        # What the provider's paths start with before the endpoint (Groq: /openai/v1).
        self.root = root
        self.fakers = fakers
        self.count = 0

    def routes(self) -> list[tuple[str, str, Callable[[Request], Awaitable[Response]]]]:
        return [
            ("POST", self.root + path.removeprefix("/v1"), self._handler(path))
            for path in self.endpoints
        ]

    def _handler(self, endpoint: str) -> Callable[[Request], Awaitable[Response]]:
        async def handle(request: Request) -> Response:
            raw = await request.body()
            self.count += 1
            emulator = self.emulator
            answer = answer_for(
                endpoint,
                raw,
                emulator.config,
                emulator.clock(),
                self.count,
                self.rules,
                self.fakers,
            )
            return await emulator.realtime_answer(request, raw, prompt_tokens(raw), answer)

        return handle
