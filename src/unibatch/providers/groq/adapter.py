"""Groq Batch API adapter: OpenAI's adapter under `/openai/v1`, with Groq's rules, error
classes, completion windows and list paging.

`UNIBATCH_GROQ_COMPLETION_WINDOW` (`24h` up to `7d`, default `24h`) is the window every
batch asks for; the batch's maximum age follows it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import httpx

from unibatch.errors import ConfigurationError
from unibatch.providers.base import ProviderJob
from unibatch.providers.groq.classify import retryable
from unibatch.providers.groq.rules import RULES
from unibatch.providers.groq.window import DEFAULT, window_seconds
from unibatch.providers.openai.adapter import TAG_KEY, OpenAIProvider
from unibatch.providers.openai.translate import OpenAITranslator
from unibatch.providers.spec import ProviderSpec

# Every Groq path starts here under the host (the `groq` SDK's paths say so).
API_ROOT = "/openai/v1"
WINDOW_ENV = "UNIBATCH_GROQ_COMPLETION_WINDOW"


class GroqProvider(OpenAIProvider):
    translator = OpenAITranslator("groq", RULES)

    def __init__(
        self,
        spec: ProviderSpec,
        api_key: str,
        base_url: str | None = None,
        *,
        timeout: float = 60.0,
        transport: httpx.AsyncBaseTransport | None = None,
        completion_window: str = DEFAULT,
    ) -> None:
        seconds = window_seconds(completion_window)
        if seconds is None:
            raise ConfigurationError(
                f"{WINDOW_ENV}={completion_window!r}: Groq takes a completion window "
                "from 24h to 7d, in whole hours or days (e.g. 48h, 7d)"
            )
        host = (base_url or spec.default_base_url).rstrip("/")
        # The spec this adapter serves: paths under /openai/v1, and a maximum age that
        # follows the window asked for.
        own = dataclasses.replace(
            spec,
            default_base_url=spec.default_base_url.rstrip("/") + API_ROOT,
            completion_window=seconds,
        )
        super().__init__(own, api_key, host + API_ROOT, timeout=timeout, transport=transport)
        self._window = completion_window.strip()

    @classmethod
    def env_options(cls, env: Mapping[str, str]) -> dict[str, Any]:
        return {"completion_window": env.get(WINDOW_ENV) or DEFAULT}

    def completion_window(self) -> str:
        return self._window

    def classify(self, status_code: int | None, code: str | None, error_type: str | None) -> bool:
        return retryable(status_code, code, error_type)

    async def find(
        self, tag: str, *, since: float, request_count: int | None = None
    ) -> ProviderJob | None:
        # Groq pages its list with `cursor` and `paging.next_cursor`, newest first
        # (https://console.groq.com/docs/api-reference#batches-list).
        params: dict[str, str] = {}
        while True:
            page = await self._call("GET", "batches", params=params)
            data = [b for b in page.get("data") or [] if isinstance(b, dict)]
            for batch in data:
                if (batch.get("metadata") or {}).get(TAG_KEY) == tag:
                    return self._job(batch)
            cursor = (page.get("paging") or {}).get("next_cursor")
            if not cursor or not data or data[-1].get("created_at", 0) < since:
                return None
            params = {"cursor": str(cursor)}
