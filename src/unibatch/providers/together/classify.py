"""The class (retryable or permanent) of a request that failed in a Together batch.

Together's error-file rows carry `error.code`: `batch_client_error` is the request's own
fault (a parameter, a model it cannot use) and is permanent; its server-side errors and
rate limits come as OpenAI-style types (https://docs.together.ai/docs/error-codes). A
code or type not listed falls back to the HTTP status.
"""

from __future__ import annotations

from collections.abc import Mapping

from unibatch.providers.error_classes import UNRUN, by_table

CODES: Mapping[str, bool] = {
    **UNRUN,
    "batch_client_error": False,
    "batch_server_error": True,
    "invalid_request_error": False,
    "authentication_error": False,
    "rate_limit_exceeded": True,
    "rate_limit_error": True,
    "server_error": True,
    "service_unavailable": True,
}


def retryable(status_code: int | None, code: str | None, error_type: str | None = None) -> bool:
    """Whether the failed request may succeed when sent again.

    >>> retryable(None, "batch_client_error"), retryable(429, None), retryable(503, None)
    (False, True, True)
    """
    return by_table(CODES, status_code, code, error_type)
