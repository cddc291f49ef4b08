"""Public value types: statuses, batches and per-request results.

Statuses use OpenAI's vocabulary so the gateway stays wire-compatible; `pending`
is ours (accepted, not yet sent to any provider).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class BatchStatus(enum.StrEnum):
    PENDING = "pending"
    VALIDATING = "validating"
    IN_PROGRESS = "in_progress"
    FINALIZING = "finalizing"
    CANCELLING = "cancelling"
    COMPLETED = "completed"
    FAILED = "failed"
    EXPIRED = "expired"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_BATCH_STATUSES


TERMINAL_BATCH_STATUSES = frozenset(
    {BatchStatus.COMPLETED, BatchStatus.FAILED, BatchStatus.EXPIRED, BatchStatus.CANCELLED}
)


class RequestStatus(enum.StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    ERRORED = "errored"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    # Input tokens written to the provider's prompt cache (Anthropic), priced at its
    # cache-write rate; like cached tokens, they are part of `input_tokens`.
    cache_write_tokens: int = 0
    # Of those, the ones written for an hour rather than five minutes, at a higher rate.
    # Read by pricing when a result arrives; not stored (the stored cost includes them).
    cache_write_1h_tokens: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cached_tokens": self.cached_tokens,
            "reasoning_tokens": self.reasoning_tokens,
            "cache_write_tokens": self.cache_write_tokens,
        }


@dataclass(frozen=True, slots=True)
class Cost:
    """Cost at batch prices, in `currency` (USD for every built-in price)."""

    input: float = 0.0
    output: float = 0.0
    currency: str = "USD"

    @property
    def total(self) -> float:
        return self.input + self.output

    def as_dict(self) -> dict[str, Any]:
        # Sums of per-token prices carry float noise (0.0011510499999999998); no price
        # has more than 12 decimals of a dollar, so shown values are rounded there.
        return {
            "input": round(self.input, 12),
            "output": round(self.output, 12),
            "total": round(self.total, 12),
            "currency": self.currency,
        }


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    code: str
    message: str
    retryable: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "retryable": self.retryable}


@dataclass(frozen=True, slots=True)
class RequestCounts:
    """How a batch's requests stand. Once it has ended: the results. While it runs, a
    provider batch still running counts by the provider's own counters where those are
    ahead (OpenAI, Gemini and xAI report them as requests finish), so progress shows
    before its results land; `pending` is the rest."""

    total: int = 0
    pending: int = 0
    succeeded: int = 0
    errored: int = 0
    expired: int = 0
    cancelled: int = 0

    @property
    def done(self) -> int:
        return self.total - self.pending

    def as_dict(self) -> dict[str, int]:
        return {
            "total": self.total,
            "pending": self.pending,
            "succeeded": self.succeeded,
            "errored": self.errored,
            "expired": self.expired,
            "cancelled": self.cancelled,
            # OpenAI's names, so scripts written for its batch object keep working. As in
            # OpenAI's batch object, cancelled requests are neither completed nor failed.
            "completed": self.succeeded,
            "failed": self.errored + self.expired,
        }


@dataclass(frozen=True, slots=True)
class BatchError:
    """Why a batch failed before anything was sent, in the shape of OpenAI's `BatchError`:
    a bad request (`line`: its 1-based line or position; `param`: the field) or an import
    that did not finish."""

    code: str
    message: str
    line: int | None = None
    param: str | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BatchError:
        return cls(
            code=str(data.get("code") or "invalid_request"),
            message=str(data.get("message") or ""),
            line=data.get("line"),
            param=data.get("param"),
        )

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "line": self.line, "param": self.param}

    def __str__(self) -> str:
        return self.message if self.line is None else f"line {self.line}: {self.message}"


@dataclass(frozen=True, slots=True)
class Batch:
    """A logical batch: what the user submitted, however many provider jobs it became."""

    id: str
    status: BatchStatus
    created_at: float
    request_counts: RequestCounts
    usage: Usage
    cost: Cost
    endpoint: str
    metadata: dict[str, str] = field(default_factory=dict)
    providers: tuple[str, ...] = ()
    submitted_at: float | None = None
    finished_at: float | None = None
    cancel_requested: bool = False
    errors: tuple[str, ...] = ()
    # Set when the batch failed before anything was sent; `errors` has them as text too.
    validation_errors: tuple[BatchError, ...] = ()

    @property
    def done(self) -> bool:
        return self.status.terminal

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "batch",
            "status": self.status.value,
            "endpoint": self.endpoint,
            "created_at": self.created_at,
            "submitted_at": self.submitted_at,
            "finished_at": self.finished_at,
            "providers": list(self.providers),
            "request_counts": self.request_counts.as_dict(),
            "usage": self.usage.as_dict(),
            "cost": self.cost.as_dict(),
            "metadata": self.metadata,
            "cancel_requested": self.cancel_requested,
            "errors": list(self.errors),
        }


@dataclass(frozen=True, slots=True)
class Result:
    """One request's outcome, the same shape whatever provider ran it."""

    custom_id: str
    status: RequestStatus
    provider: str
    model: str
    response: dict[str, Any] | None = None
    status_code: int | None = None
    request_id: str | None = None
    error: ErrorInfo | None = None
    usage: Usage = field(default_factory=Usage)
    cost: Cost = field(default_factory=Cost)
    raw: dict[str, Any] | None = None
    row_id: str | None = None

    def as_unified(self) -> dict[str, Any]:
        return {
            "custom_id": self.custom_id,
            "status": self.status.value,
            "provider": self.provider,
            "model": self.model,
            "response": self.response,
            "error": self.error.as_dict() if self.error else None,
            "usage": self.usage.as_dict(),
            "cost": self.cost.as_dict(),
            "raw": self.raw,
        }

    def as_openai(self, batch_id: str) -> dict[str, Any]:
        """The OpenAI batch output line, for every provider, so existing tooling works."""
        if self.response is not None and self.status_code is not None:
            response: dict[str, Any] | None = {
                "status_code": self.status_code,
                "request_id": self.request_id or "",
                "body": self.response,
            }
        else:
            response = None
        error = None
        if self.error is not None and response is None:
            error = {"code": self.error.code, "message": self.error.message}
        return {
            "id": self.row_id or f"{batch_id}-{self.custom_id}",
            "custom_id": self.custom_id,
            "response": response,
            "error": error,
        }
