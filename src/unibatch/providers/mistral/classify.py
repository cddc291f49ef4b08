"""The class (retryable or permanent) of a request that failed in a Mistral batch.

Mistral's errors name no stable codes in its docs (https://docs.mistral.ai/api/): a
validation failure is a 422 with `detail`, others `{"object": "error", "message", "type",
"code"}`. The types below are those its API answers; else the HTTP status decides (429,
408 and 5xx are retryable; see `unibatch.providers.error_classes`).
"""

from __future__ import annotations

from collections.abc import Mapping

from unibatch.providers.error_classes import UNRUN, by_table

TYPES: Mapping[str, bool] = {
    **UNRUN,
    "rate_limited": True,
    "service_tier_capacity_exceeded": True,
    "internal_server_error": True,
    "invalid_request_error": False,
    "invalid_request_message_order": False,
    "extra_forbidden": False,
    "missing": False,
    "unauthorized": False,
}


def retryable(status_code: int | None, code: str | None, error_type: str | None = None) -> bool:
    """Whether the failed request may succeed when sent again.

    >>> retryable(429, None), retryable(422, "extra_forbidden"), retryable(None, "batch_expired")
    (True, False, True)
    """
    return by_table(TYPES, status_code, code, error_type)
