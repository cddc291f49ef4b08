"""Azure OpenAI's Batch API: the OpenAI emulator behind Azure's addressing.

Mount :attr:`AzureOpenAIEmulator.app` at ``/azure`` and point ``openai.AzureOpenAI`` at it::

    AzureOpenAI(azure_endpoint="http://H:P/azure", api_key="k", api_version="2024-10-21")

The files, batches, validation and results are the OpenAI emulator's (the wire format is
the same); what differs is Azure's, as Microsoft documents it
(https://learn.microsoft.com/azure/ai-foundry/openai/how-to/batch and the REST reference):

* routes under ``/openai/...`` with a required ``api-version`` query parameter, and the
  same routes under ``/openai/v1/...`` (the "v1" surface) without it; synchronous chat at
  ``/openai/deployments/{deployment}/chat/completions``;
* the ``api-key`` header (or an Entra bearer token);
* ``endpoint`` written with or without ``/v1`` (Microsoft's examples send
  ``/chat/completions``); 100,000 requests per input file;
* Azure's error envelope for its own refusals (``{"error": {"code", "message"}}``).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from ..kit import Handler
from ..openai import OpenAIEmulator
from ..openai.errors import OpenAIError

MAX_REQUESTS = 100_000
_V1 = "/openai/v1/"
# Microsoft Q&A quotes this message (learn.microsoft.com/answers/questions/2285577).
QUOTA_FULL = (
    "The number of enqueued tokens has surpassed the configured limit of 30K for the "
    "deployment. Please either increase the limit or try again once the current jobs "
    "have finished."
)


class AzureError(OpenAIError):
    """An error Azure itself words (auth, api-version), in its `{code, message}` envelope."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(status, message)
        self.body = {"error": {"code": code, "message": message}}


class AzureOpenAIEmulator(OpenAIEmulator):
    """Azure OpenAI Global Batch; calls are counted under ``"METHOD /openai/route"``."""

    name = "azure"
    max_requests = MAX_REQUESTS
    # The next this many creates are refused as a fail-fast region refuses a create while
    # the deployment's enqueued-token quota is full.
    quota_full_creates = 0

    def api_routes(self) -> list[tuple[str, str, Handler]]:
        routes: list[tuple[str, str, Handler]] = []
        for method, path, handler in super().api_routes():
            routes.append((method, "/openai" + path, handler))
            routes.append((method, "/openai/v1" + path, handler))
            if path in ("/chat/completions", "/completions", "/embeddings"):
                routes.append((method, "/openai/deployments/{deployment}" + path, handler))
        return routes

    def authenticate(self, request: Request) -> None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if not request.headers.get("api-key") and not (scheme.lower() == "bearer" and token):
            msg = (
                "Access denied due to invalid subscription key or wrong API endpoint. Make "
                "sure to provide a valid key for an active subscription and use a correct "
                "regional API endpoint for your resource."
            )
            raise AzureError(401, "401", msg)
        if not request.url.path.startswith(self._v1_path(request)) and not (
            request.query_params.get("api-version")
        ):
            msg = "The api-version query parameter (?api-version=) is required for all requests."
            raise AzureError(400, "MissingApiVersionParameter", msg)

    @staticmethod
    def _v1_path(request: Request) -> str:
        # The mount prefix (`/azure`) comes before Azure's own path.
        return str(request.scope.get("root_path", "")) + _V1

    def not_found_error(self, request: Request, status: int) -> OpenAIError:
        return AzureError(404, "404", "Resource not found")

    def check_create(self, body: dict[str, Any]) -> None:
        if self.quota_full_creates > 0:
            self.quota_full_creates -= 1
            raise OpenAIError(400, QUOTA_FULL, code="token_limit_exceeded")
        endpoint = body.get("endpoint")
        if (
            isinstance(endpoint, str)
            and endpoint.startswith("/")
            and not endpoint.startswith("/v1/")
        ):
            body["endpoint"] = "/v1" + endpoint
        super().check_create(body)
