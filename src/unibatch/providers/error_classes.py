"""Error classes: whether a request that did not succeed is worth sending again.

Every errored, expired or cancelled result is in one of two classes, shown as
`error.retryable` in the unified result:

- retryable: the failure says nothing about the request itself. The provider was rate
  limited, failed, timed out or overloaded; the batch ran out of time (`batch_expired`);
  unibatch cancelled it because it ran past its maximum age (`batch_cancelled`); or the
  provider's output never mentioned the request (`missing_result`). The same request may
  succeed later.
- permanent: the same request would fail the same way (invalid, refused by a content
  policy, too long, an unsupported parameter, an unknown model, a key without access), or
  the user cancelled the batch and wanted it stopped.

Each provider package maps its own error types and codes to a class (`classify.py`);
this module holds what they share. An error nobody has classified is permanent: a retry
policy must not spend attempts on a failure it cannot read.
"""

from __future__ import annotations

from collections.abc import Mapping

# Codes unibatch gives requests that never ran, whichever provider they were sent to.
BATCH_EXPIRED = "batch_expired"
BATCH_CANCELLED = "batch_cancelled"
BATCH_FAILED = "batch_failed"
MISSING_RESULT = "missing_result"

# A whole-batch outcome as the class of each request it left without an answer. A
# `batch_cancelled` row is retryable because unibatch cancels a batch that outlives its
# maximum age; the engine makes the rows of a cancel the user asked for permanent.
# `batch_failed` is permanent: a provider fails a whole batch for its input file or the
# account (validation, authentication, quota), which sending it again does not change.
UNRUN: Mapping[str, bool] = {
    BATCH_EXPIRED: True,
    BATCH_CANCELLED: True,
    MISSING_RESULT: True,
    BATCH_FAILED: False,
}

# google.rpc.Code (https://github.com/googleapis/googleapis/blob/master/google/rpc/code.proto)
# by number and name, as Gemini's per-request status and xAI's proto `BatchResult.error`
# carry it. Retryable are the codes the server or the moment is to blame for; CANCELLED
# is how a request a batch cancel stopped reads.
GRPC_NAMES: Mapping[int, str] = {
    1: "CANCELLED",
    2: "UNKNOWN",
    3: "INVALID_ARGUMENT",
    4: "DEADLINE_EXCEEDED",
    5: "NOT_FOUND",
    6: "ALREADY_EXISTS",
    7: "PERMISSION_DENIED",
    8: "RESOURCE_EXHAUSTED",
    9: "FAILED_PRECONDITION",
    10: "ABORTED",
    11: "OUT_OF_RANGE",
    12: "UNIMPLEMENTED",
    13: "INTERNAL",
    14: "UNAVAILABLE",
    15: "DATA_LOSS",
    16: "UNAUTHENTICATED",
}
GRPC_CLASSES: Mapping[str, bool] = {
    "CANCELLED": True,
    "UNKNOWN": True,
    "INVALID_ARGUMENT": False,
    "DEADLINE_EXCEEDED": True,
    "NOT_FOUND": False,
    "ALREADY_EXISTS": False,
    "PERMISSION_DENIED": False,
    "RESOURCE_EXHAUSTED": True,
    "FAILED_PRECONDITION": False,
    "ABORTED": True,
    "OUT_OF_RANGE": False,
    "UNIMPLEMENTED": False,
    "INTERNAL": True,
    "UNAVAILABLE": True,
    "DATA_LOSS": True,
    "UNAUTHENTICATED": False,
}


def retryable_status(status: int | None) -> bool:
    """The class of a bare HTTP status: 408 (timeout), 429 (rate limit) and the 5xx
    server errors except 501 (not implemented, which no retry changes)."""
    if status is None:
        return False
    return status in (408, 429) or (500 <= status <= 599 and status != 501)


def by_table(
    table: Mapping[str, bool], status: int | None, code: str | None, error_type: str | None
) -> bool:
    """The class a provider's `table` gives the error's code, else its type, else the
    class of its HTTP status."""
    for key in (code, error_type):
        if key is not None and key in table:
            return table[key]
    return retryable_status(status)
