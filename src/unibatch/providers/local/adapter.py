"""The adapter of OpenAI-compatible servers without a Batch API: the OpenAI adapter's
real-time path, and no batch methods (the planner gives such a provider real-time jobs
only, so they are never called)."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from typing import NoReturn

from unibatch.errors import ConfigurationError
from unibatch.providers.base import JobSpec, ProviderJob, RequestLine, ResultRow
from unibatch.providers.openai.adapter import OpenAIProvider
from unibatch.providers.openai.translate import OpenAITranslator
from unibatch.providers.translate import NATIVE_FLAG, Body


class LocalTranslator(OpenAITranslator):
    """Bodies go to the server as written, without OpenAI's rules: each server has its own
    (and extra fields, such as vLLM's `guided_json`), which it enforces itself. Usage is
    read as OpenAI's."""

    verbatim = True

    def to_native(self, endpoint: str, body: Body) -> Body:
        if NATIVE_FLAG in body:
            return {k: v for k, v in body.items() if k != NATIVE_FLAG}
        return body


class LocalProvider(OpenAIProvider):
    translator = LocalTranslator()

    @classmethod
    def auth_headers(cls, api_key: str) -> dict[str, str]:
        # Servers started without a key take requests without the header.
        return {"Authorization": f"Bearer {api_key}"} if api_key else {}

    def _no_batches(self) -> NoReturn:
        raise ConfigurationError(f"{self.name} has no Batch API: its jobs run in real time")

    async def submit(self, spec: JobSpec, lines: AsyncIterable[RequestLine]) -> ProviderJob:
        self._no_batches()

    async def find(
        self, tag: str, *, since: float, request_count: int | None = None
    ) -> ProviderJob | None:
        self._no_batches()

    async def get(self, job: ProviderJob) -> ProviderJob:
        self._no_batches()

    async def cancel(self, job: ProviderJob) -> ProviderJob:
        self._no_batches()

    def results(self, job: ProviderJob) -> AsyncIterator[list[ResultRow]]:
        self._no_batches()


__all__ = ["LocalProvider", "LocalTranslator"]
