"""Azure OpenAI Batch adapter: OpenAI's Batch API under `{endpoint}/openai/...`.

The wire format is OpenAI's, so everything but the addressing is `OpenAIProvider`:
the `api-key` header instead of a bearer token, an `api-version` query parameter on every
call, the create request's `endpoint` without `/v1` (Microsoft's examples send
`/chat/completions`), deployment names as models, and Azure's error codes
(`classify.py`); a create that Azure's fail-fast regions refuse for a full enqueued-token
quota (HTTP 400 `token_limit_exceeded`) is tried again later rather than failed.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Mapping
from typing import Any

import httpx

from unibatch.errors import PermanentProviderError, TransientProviderError
from unibatch.providers.azure.classify import quota_full
from unibatch.providers.azure.classify import retryable as azure_retryable
from unibatch.providers.azure.rules import RULES
from unibatch.providers.base import JobSpec, ProviderJob, RequestLine, ResultRow
from unibatch.providers.openai.adapter import OpenAIProvider, realtime_row
from unibatch.providers.openai.translate import OpenAITranslator
from unibatch.providers.spec import ProviderSpec
from unibatch.providers.upstream import Upstream

# The GA version that has the Batch API (Azure OpenAI REST reference, "API versions");
# newer models and the Responses API need a newer one: set AZURE_OPENAI_API_VERSION.
DEFAULT_API_VERSION = "2024-10-21"
# Where Azure's own paths start, for messages that must not show the user's endpoint.
_PROVIDER_ROOT = "https://resource.openai.azure.com/openai"


class AzureOpenAIProvider(OpenAIProvider):
    translator = OpenAITranslator("azure", RULES)

    def __init__(
        self,
        spec: ProviderSpec,
        api_key: str,
        base_url: str | None = None,
        *,
        api_version: str = DEFAULT_API_VERSION,
        timeout: float = 60.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.api_version = api_version
        root = (base_url or spec.default_base_url).rstrip("/") + "/openai"
        super().__init__(spec, api_key, root, timeout=timeout, transport=transport)
        self.upstream = Upstream(root, _PROVIDER_ROOT)

    def classify(self, status_code: int | None, code: str | None, error_type: str | None) -> bool:
        return azure_retryable(status_code, code, error_type)

    @classmethod
    def auth_headers(cls, api_key: str) -> dict[str, str]:
        return {"api-key": api_key}

    def client_options(self) -> dict[str, Any]:
        return {"params": {"api-version": self.api_version}}

    @classmethod
    def env_options(cls, env: Mapping[str, str]) -> dict[str, Any]:
        # OPENAI_API_VERSION is what `openai.AzureOpenAI` reads.
        version = env.get("AZURE_OPENAI_API_VERSION") or env.get("OPENAI_API_VERSION")
        return {"api_version": version or DEFAULT_API_VERSION}

    def batch_endpoint(self, endpoint: str) -> str:
        return endpoint.removeprefix("/v1")

    async def submit(self, spec: JobSpec, lines: AsyncIterable[RequestLine]) -> ProviderJob:
        try:
            return await super().submit(spec, lines)
        except PermanentProviderError as exc:
            if exc.status_code == 400 and quota_full(str(exc)):
                raise TransientProviderError(str(exc), status_code=400) from exc
            raise

    async def realtime(self, endpoint: str, model: str, line: RequestLine) -> ResultRow:
        native = self.translator.to_native(endpoint, line.body)
        # Chat goes to the deployment; the Responses API takes the deployment in `model`.
        path = endpoint.removeprefix("/v1/")
        if path != "responses":
            path = f"deployments/{model}/{path}"
        response = await self.post_realtime(path, native)
        return realtime_row(line.custom_id, response, self.classify)
