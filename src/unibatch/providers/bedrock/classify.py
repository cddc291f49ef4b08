"""The class (retryable or permanent) of a Bedrock failure.

A failed record carries `error: {"errorCode": <HTTP status>, "errorMessage"}`
(https://docs.aws.amazon.com/bedrock/latest/userguide/batch-inference-results.html), so
its class is that of the status. Control-plane calls fail with the exception names of
botocore's service model: throttling, server faults and the concurrent-job quota pass
with time; validation, access and missing resources do not.
"""

from __future__ import annotations

from collections.abc import Mapping

from unibatch.providers.error_classes import retryable_status

CODES: Mapping[str, bool] = {
    "ThrottlingException": True,
    "InternalServerException": True,
    "ServiceUnavailableException": True,
    "ModelTimeoutException": True,
    "ModelNotReadyException": True,
    # Too many jobs submitted or in progress for the model: one ends, the next fits.
    "ServiceQuotaExceededException": True,
    "ValidationException": False,
    "AccessDeniedException": False,
    "ResourceNotFoundException": False,
    "ConflictException": False,
}


def retryable(status_code: int | None, code: str | None = None) -> bool:
    """Whether the failure may pass when tried again.

    >>> retryable(429), retryable(400), retryable(400, "ServiceQuotaExceededException")
    (True, False, True)
    """
    if code is not None and code in CODES:
        return CODES[code]
    return retryable_status(status_code)
