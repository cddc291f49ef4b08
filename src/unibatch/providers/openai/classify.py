"""The class (retryable or permanent) of a request that failed in an OpenAI batch.

An error-file row is either a request that ran and answered an HTTP error
(`response.status_code` with `body.error.{type,code}`) or one that never ran
(`response: null`, `error.code` `batch_expired` / `batch_cancelled`). Codes and statuses
from https://platform.openai.com/docs/guides/error-codes and the Batch API guide
(https://platform.openai.com/docs/guides/batch). The code decides where it is known, then
the type, then the HTTP status; see `unibatch.providers.error_classes` for the classes.
"""

from __future__ import annotations

from collections.abc import Mapping

from unibatch.providers.error_classes import UNRUN, retryable_status

# `error.code`, and `error.type` where OpenAI gives no code.
CODES: Mapping[str, bool] = {
    **UNRUN,
    # 429s that are not a rate: the account has no credit left; waiting does not help.
    "insufficient_quota": False,
    "billing_hard_limit_reached": False,
    "credit_balance_exhausted": False,
    "organization_spend_limit_exceeded": False,
    "project_spend_limit_exceeded": False,
    "organization_usage_limit_exceeded": False,
    # Rates and load.
    "rate_limit_exceeded": True,
    "rate_limit_error": True,
    "slow_down": True,
    "server_error": True,
    "server_is_overloaded": True,
    "engine_overloaded": True,
    "service_unavailable_error": True,
    "timeout": True,
    # The request itself.
    "invalid_request_error": False,
    "invalid_request": False,
    "context_length_exceeded": False,
    "string_above_max_length": False,
    "content_policy_violation": False,
    "content_filter": False,
    "invalid_prompt": False,
    "unsupported_parameter": False,
    "unsupported_value": False,
    "invalid_value": False,
    "invalid_type": False,
    "model_not_found": False,
    "invalid_api_key": False,
    "authentication_error": False,
    "permission_error": False,
}


def retryable(
    status_code: int | None,
    code: str | None,
    error_type: str | None = None,
    codes: Mapping[str, bool] = CODES,
) -> bool:
    """Whether the failed request may succeed when sent again; `codes` is the table of a
    service that adds codes of its own to OpenAI's.

    >>> retryable(429, "rate_limit_exceeded"), retryable(429, "insufficient_quota")
    (True, False)
    >>> retryable(400, "context_length_exceeded"), retryable(None, "batch_expired")
    (False, True)
    """
    for key in (code, error_type):
        if key is not None and key in codes:
            return codes[key]
    return retryable_status(status_code)
