"""The class (retryable or permanent) of a request that failed in an xAI batch.

Over REST a failed result's `batch_result.error` is a bare string with no code
(https://docs.x.ai/docs/guides/batch-api); the gRPC API and xAI's SDK carry a
google.rpc.Status (`{code, message}`), and the REST errors of xAI's other endpoints name
the gRPC status in words ("Client specified an invalid argument"). So a string is read for
the words of those statuses and of the causes a message states. Requests that never ran
get unibatch's own codes (`batch_expired`, `batch_cancelled`, `batch_failed`). See
`unibatch.providers.error_classes` for the classes.
"""

from __future__ import annotations

from collections.abc import Mapping

from unibatch.providers.error_classes import GRPC_CLASSES, GRPC_NAMES

# Words of a failure message and its class, first match wins: the words that blame the
# request come first, so "internal error: max_tokens must be positive" is permanent.
PHRASES: tuple[tuple[str, bool], ...] = (
    ("invalid argument", False),
    ("must be", False),
    ("not supported", False),
    ("unsupported", False),
    ("not found", False),
    ("does not exist", False),
    ("permission", False),
    ("unauthenticated", False),
    ("api key", False),
    ("failed precondition", False),
    ("maximum context", False),
    ("context length", False),
    ("too long", False),
    ("content policy", False),
    ("safety", False),
    ("rate limit", True),
    ("too many requests", True),
    ("resource exhausted", True),
    ("deadline exceeded", True),
    ("timed out", True),
    ("timeout", True),
    ("internal", True),
    ("unavailable", True),
    ("overloaded", True),
    ("try again", True),
)


def retryable(error: object) -> bool:
    """Whether a request that failed with this `batch_result.error` (a string, or a
    google.rpc.Status mapping) may succeed when sent again.

    >>> retryable("Service temporarily unavailable"), retryable({"code": 3, "message": "x"})
    (True, False)
    """
    if isinstance(error, Mapping):
        code = error.get("code")
        name = GRPC_NAMES.get(code) if isinstance(code, int) else None
        if name is not None:
            return GRPC_CLASSES[name]
        error = error.get("message") or ""
    lowered = str(error).lower()
    return next((cls for phrase, cls in PHRASES if phrase in lowered), False)
