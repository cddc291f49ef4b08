"""The class (retryable or permanent) of a request that failed in a Message Batch.

A result is `errored` with the Messages API's error (`error.error.type`, listed at
https://docs.claude.com/en/api/errors), or `expired` / `canceled` when it never ran
(https://docs.claude.com/en/docs/build-with-claude/batch-processing). See
`unibatch.providers.error_classes` for the classes.
"""

from __future__ import annotations

from collections.abc import Mapping

from unibatch.providers.error_classes import UNRUN

TYPES: Mapping[str, bool] = {
    **UNRUN,
    "invalid_request_error": False,
    "authentication_error": False,
    # No credit on the account: a retry fails the same way until someone pays.
    "billing_error": False,
    "permission_error": False,
    "not_found_error": False,
    "request_too_large": False,
    "rate_limit_error": True,
    "api_error": True,
    "timeout_error": True,
    "overloaded_error": True,
}


def retryable(error_type: str | None) -> bool:
    """Whether the failed request may succeed when sent again; a type Anthropic adds
    later is permanent until it is listed here.

    >>> retryable("overloaded_error"), retryable("invalid_request_error")
    (True, False)
    """
    return TYPES.get(error_type or "", False)
