"""The class (retryable or permanent) of a request that failed in a Groq batch.

Groq answers in OpenAI's error envelope (`{"error": {message, type, code}}`) with OpenAI's
codes, so OpenAI's table decides; Groq adds two statuses of its own
(https://console.groq.com/docs/errors): 498, the flex tier out of capacity, and 499, a
request cancelled while it ran. Both say nothing about the request: sent again, it may
succeed.
"""

from __future__ import annotations

from unibatch.providers.openai.classify import retryable as openai_retryable

GROQ_STATUSES = frozenset({498, 499})


def retryable(status_code: int | None, code: str | None, error_type: str | None = None) -> bool:
    """Whether the failed request may succeed when sent again.

    >>> retryable(498, None), retryable(400, "invalid_request_error"), retryable(503, None)
    (True, False, True)
    """
    if status_code in GROQ_STATUSES:
        return True
    return openai_retryable(status_code, code, error_type)
