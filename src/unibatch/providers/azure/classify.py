"""The class (retryable or permanent) of a request, or a batch, that failed on Azure OpenAI.

Azure answers in OpenAI's error shape and adds its own codes: the content filter
(`content_filter`, HTTP 400, a permanent refusal of that prompt) and the batch codes of
https://learn.microsoft.com/azure/ai-foundry/openai/how-to/batch ("Troubleshooting"):
`token_limit_exceeded` means the deployment's enqueued-token quota is full for now (Microsoft's
sample retries it with exponential backoff), the others are faults of the input file.
"""

from __future__ import annotations

from collections.abc import Mapping

from unibatch.providers.openai.classify import CODES as OPENAI_CODES
from unibatch.providers.openai.classify import retryable as openai_retryable

CODES: Mapping[str, bool] = {
    **OPENAI_CODES,
    "token_limit_exceeded": True,
    "content_filter": False,
    "ResponsibleAIPolicyViolation": False,
    "DeploymentNotFound": False,
    "too_many_tasks": False,
    "url_mismatch": False,
    "model_mismatch": False,
    "duplicate_custom_id": False,
    "empty_batch": False,
    "empty_file": False,
    "invalid_json_line": False,
    "input_modified": False,
    "input_no_permissions": False,
}


def retryable(status_code: int | None, code: str | None, error_type: str | None = None) -> bool:
    """Whether the failed request may succeed when sent again.

    >>> retryable(400, "token_limit_exceeded"), retryable(400, "content_filter")
    (True, False)
    """
    return openai_retryable(status_code, code, error_type, CODES)


def quota_full(message: str) -> bool:
    """Whether a refused create names the full enqueued-token quota (Azure's fail-fast
    regions answer it with HTTP 400 at create instead of a failed batch)."""
    return "token_limit_exceeded" in message
