"""Public value types: statuses, batches and per-request results.

Statuses use OpenAI's vocabulary so the gateway stays wire-compatible; `pending`
is ours (accepted, not yet sent to any provider).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
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
    # The price a result was costed at (`Price.as_dict` and the share charged), when known.
    price: Mapping[str, Any] | None = None

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
            **({} if self.price is None else {"price": dict(self.price)}),
        }


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    code: str
    message: str
    retryable: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "retryable": self.retryable}


@dataclass(frozen=True, slots=True)
class Attempt:
    """An earlier attempt of a request that was sent again: how it ended, where it was
    sent, and what the provider billed for it."""

    attempt: int
    status: RequestStatus
    provider: str
    model: str
    error: ErrorInfo | None = None
    usage: Usage = field(default_factory=Usage)
    # None when the model's price is unknown (a local server's).
    cost: Cost | None = field(default_factory=Cost)

    def as_dict(self) -> dict[str, Any]:
        return {
            "attempt": self.attempt,
            "status": self.status.value,
            "provider": self.provider,
            "model": self.model,
            "error": self.error.as_dict() if self.error else None,
            "usage": self.usage.as_dict(),
            "cost": self.cost.as_dict() if self.cost is not None else None,
        }


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
    # When the cancel was asked for, and when the last provider job ended (its results
    # then being stored and the batch finalized); None until then.
    cancel_requested_at: float | None = None
    finalizing_at: float | None = None
    # Set when the batch failed before anything was sent, or was stopped by its max_cost
    # (`max_cost_reached`); `errors` has them as text too.
    validation_errors: tuple[BatchError, ...] = ()
    # Jobs (and their requests) waiting for room in a provider's queue, and why.
    waiting: QueueWait | None = None
    # Requests answered from the result cache (not sent; their results cost 0).
    cached: int = 0
    # When the batch must have ended (epoch seconds), and when it stopped waiting for the
    # Batch API to run the rest in real time (None: no deadline / not switched).
    deadline: float | None = None
    deadline_switched_at: float | None = None

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
            "waiting_for_capacity": self.waiting.as_dict() if self.waiting else None,
            "cached": self.cached,
            "deadline": self.deadline,
            "deadline_switched_at": self.deadline_switched_at,
        }


@dataclass(frozen=True, slots=True)
class QueueWait:
    """Provider jobs of a batch not sent yet because the provider's queue is full (its
    enqueued tokens, queued requests or concurrent batches are at their limit)."""

    jobs: int
    requests: int
    # Why, as the scheduler last said for the job due first (a limit and its use).
    reasons: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"jobs": self.jobs, "requests": self.requests, "reasons": list(self.reasons)}


@dataclass(frozen=True, slots=True)
class Result:
    """One request's outcome, the same shape whatever provider ran it.

    `attempts` counts the times it was sent (retries included); `history` holds the
    attempts before the last one, oldest first. `usage` and `cost` add up every attempt
    the provider billed; `provider` and `model` are those of the last one."""

    custom_id: str
    status: RequestStatus
    provider: str
    model: str
    response: dict[str, Any] | None = None
    status_code: int | None = None
    request_id: str | None = None
    error: ErrorInfo | None = None
    usage: Usage = field(default_factory=Usage)
    # None when the model's price is unknown (a local server's): unknown, not free.
    cost: Cost | None = field(default_factory=Cost)
    raw: dict[str, Any] | None = None
    row_id: str | None = None
    # "batch": answered through the provider's Batch API (at batch prices); "realtime":
    # through its ordinary synchronous endpoint (at list prices); "cache": from the store.
    mode: str = "batch"
    attempts: int = 1
    history: tuple[Attempt, ...] = ()

    @property
    def cached(self) -> bool:
        """Answered from the result cache: a copy of an earlier identical request's
        answer (mode "cache"), not sent, costing 0 in this batch."""
        return self.mode == "cache"

    def as_unified(self) -> dict[str, Any]:
        return {
            "custom_id": self.custom_id,
            "status": self.status.value,
            "provider": self.provider,
            "model": self.model,
            "mode": self.mode,
            "cached": self.cached,
            "response": self.response,
            "error": self.error.as_dict() if self.error else None,
            "usage": self.usage.as_dict(),
            "cost": self.cost.as_dict() if self.cost is not None else None,
            "raw": self.raw,
            "attempts": self.attempts,
            "history": [attempt.as_dict() for attempt in self.history],
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
