"""The class (retryable or permanent) of a request that failed in a Gemini batch.

A failed entry carries a google.rpc.Status: `code` (a google.rpc.Code number, or an
HTTP status in the REST spelling) and `status` (the code's name); Gemini's own list is at
https://ai.google.dev/gemini-api/docs/troubleshooting. A response whose every candidate
stopped without an answer fails by its `finishReason`
(https://ai.google.dev/api/generate-content#FinishReason). See
`unibatch.providers.error_classes` for the classes.
"""

from __future__ import annotations

from collections.abc import Mapping

from unibatch.providers.error_classes import GRPC_CLASSES, GRPC_NAMES, retryable_status

# Finish reasons of a candidate that holds no answer. The content filters (SAFETY,
# RECITATION, BLOCKLIST, PROHIBITED_CONTENT, SPII, IMAGE_*) are read as refusals and
# succeed with `finish_reason: content_filter`, so they seldom reach this table; should
# one fail a request, the filter would refuse it again. A malformed or missing output is
# the sampling's fault, and a new sample may well be an answer. A tool call with no tools
# declared, or a loop of too many, follows from the tools the request declares, and a
# request that lacks a thought signature lacks it on every attempt. OTHER names no cause:
# it is retried, and the attempts a retry policy allows bound what that costs.
FINISH_REASONS: Mapping[str, bool] = {
    "SAFETY": False,
    "RECITATION": False,
    "BLOCKLIST": False,
    "PROHIBITED_CONTENT": False,
    "SPII": False,
    "LANGUAGE": False,
    "IMAGE_SAFETY": False,
    "IMAGE_PROHIBITED_CONTENT": False,
    "IMAGE_RECITATION": False,
    "MODEL_ARMOR": False,
    "MISSING_THOUGHT_SIGNATURE": False,
    "UNEXPECTED_TOOL_CALL": False,
    "TOO_MANY_TOOL_CALLS": False,
    "OTHER": True,
    "FINISH_REASON_UNSPECIFIED": True,
    "MALFORMED_FUNCTION_CALL": True,
    "MALFORMED_RESPONSE": True,
    "NO_IMAGE": True,
    "IMAGE_OTHER": True,
}


def retryable(status_code: int | None, status: str | None) -> bool:
    """Whether a request that failed with this google.rpc.Status may succeed when sent
    again: by the status name, else by the code (a google.rpc.Code below 100, else HTTP).

    >>> retryable(8, None), retryable(429, "RESOURCE_EXHAUSTED"), retryable(400, None)
    (True, True, False)
    """
    name = status or (GRPC_NAMES.get(status_code) if status_code is not None else None)
    if name is not None and name in GRPC_CLASSES:
        return GRPC_CLASSES[name]
    if status_code is not None and status_code < 100:
        return False
    return retryable_status(status_code)


def finish_retryable(finish_reason: str) -> bool:
    """Whether a request whose candidates stopped for this reason may answer when asked
    again; a reason Google adds later is permanent until it is listed here."""
    return FINISH_REASONS.get(finish_reason, False)
