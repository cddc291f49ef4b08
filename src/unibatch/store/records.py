"""Typed rows of the jobs and batches tables, as the store hands them to the engine.

Records are read-only snapshots of a row at claim (or read) time; the engine changes a
row only through the store's named operations, never by editing a record. Result rows
stay tuples (`unibatch.codec`): they are the hot path of ingest.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from unibatch.types import BatchStatus

# What the provider billed for one attempt of a request (columns of `results` and
# `attempts`), summed for a batch's usage and cost.
BILLED = (
    "input_tokens",
    "output_tokens",
    "cached_tokens",
    "reasoning_tokens",
    "cache_write_tokens",
    "cost_input",
    "cost_output",
)


class JobPhase(enum.StrEnum):
    """Where the engine is with a job: pending -> submitting -> running -> ingesting -> done.

    `submitting` is written before the upload, so a job found in it after a crash is
    looked up at the provider instead of being sent twice."""

    PENDING = "pending"
    SUBMITTING = "submitting"
    RUNNING = "running"
    INGESTING = "ingesting"
    DONE = "done"


class JobMode(enum.StrEnum):
    """How a job's requests reach the provider; each mode has its runner."""

    BATCH = "batch"  # the provider's Batch API: submit, poll, ingest the result files
    # the provider's synchronous endpoint, a request at a time, at list price
    REALTIME = "realtime"
    # answered from the result cache when it was imported: sends nothing, done at once
    CACHE = "cache"


class HandlerState(enum.StrEnum):
    """Delivery of a batch's completion handler."""

    NONE = "none"  # no handler, or the batch is not finished yet
    PENDING = "pending"  # due (again) at `next_run_at`
    DONE = "done"


@dataclass(frozen=True, slots=True)
class JobRecord:
    """One provider job (a row of `jobs`)."""

    id: str
    batch_id: str
    provider: str
    model: str
    endpoint: str
    mode: JobMode
    phase: JobPhase
    status: BatchStatus
    native_status: str | None
    provider_batch_id: str | None
    input_file_id: str | None
    output_file_id: str | None
    error_file_id: str | None
    request_count: int
    byte_count: int
    provider_completed: int
    provider_failed: int
    provider_cancelled: int
    errors: list[str]
    submitted_at: float | None
    finished_at: float | None
    cancel_sent: bool
    submit_attempts: int
    poll_count: int
    transient_errors: int
    last_error: str | None
    next_run_at: float | None
    lease_owner: str | None
    lease_until: float | None
    # The batch's cancel flag and maximum age, read with the claim (one query for all the
    # jobs claimed) so that a poll needs no read of its own; None when read without them.
    batch_cancel_requested: bool | None = None
    batch_max_age: float | None = None
    # Seconds in validating / in_progress after which the job fails over (None: never).
    batch_stuck_after: float | None = None
    # Estimated input tokens (held of the provider's queue while in flight) and, for a
    # pending job, why it waits for the provider's queue.
    input_tokens: int = 0
    queue_wait: str | None = None
    # The batch's deadline and when it switched to real time (None: no deadline / not yet).
    batch_deadline: float | None = None
    batch_switched_at: float | None = None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> JobRecord:
        values = {name: row[name] for name in _JOB_FIELDS if name in row}
        values.update(
            mode=JobMode(row["mode"]),
            phase=JobPhase(row["phase"]),
            status=BatchStatus(row["status"]),
            errors=list(row["errors"] or []),
            cancel_sent=bool(row["cancel_sent"]),
        )
        return cls(**values)

    @property
    def created_at(self) -> float:
        """Creation time, read from the time-ordered id (no extra column needed)."""
        try:
            return int(self.id.split("_", 1)[1][:12], 16) / 1000.0
        except (IndexError, ValueError):
            return 0.0


@dataclass(frozen=True, slots=True)
class BatchRecord:
    """One logical batch (a row of `batches`); the totals are written at finalize."""

    id: str
    status: BatchStatus
    endpoint: str
    created_at: float
    submitted_at: float | None
    finished_at: float | None
    metadata: dict[str, str]
    # Why the batch failed before anything was sent (`BatchError` fields), if it did.
    errors: list[dict[str, Any]]
    cancel_requested: bool
    cancel_requested_at: float | None
    max_age: float | None
    max_attempts: int
    fallback_models: list[str]
    stuck_after: float | None
    deadline: float | None
    deadline_switched_at: float | None
    on_complete: str | None
    handler_state: HandlerState
    handler_attempts: int
    handler_error: str | None
    next_run_at: float | None
    lease_owner: str | None
    lease_until: float | None
    request_total: int
    succeeded: int
    errored: int
    expired: int
    cancelled: int
    input_tokens: int
    output_tokens: int
    cached_tokens: int
    reasoning_tokens: int
    cache_write_tokens: int
    cost_input: float
    cost_output: float

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> BatchRecord:
        values = {name: row[name] for name in _BATCH_FIELDS}
        values.update(
            status=BatchStatus(row["status"]),
            handler_state=HandlerState(row["handler_state"]),
            metadata=dict(row["metadata"] or {}),
            errors=list(row["errors"] or []),
            cancel_requested=bool(row["cancel_requested"]),
            fallback_models=list(row.get("fallback_models") or []),
            stuck_after=row.get("stuck_after"),
            deadline=row.get("deadline"),
            deadline_switched_at=row.get("deadline_switched_at"),
        )
        return cls(**values)


@dataclass(frozen=True, slots=True)
class ProviderState:
    """What the provider last said about a job's batch, written after submit and polls."""

    provider_batch_id: str
    status: BatchStatus
    native_status: str
    input_file_id: str | None
    output_file_id: str | None
    error_file_id: str | None
    provider_completed: int
    provider_failed: int
    provider_cancelled: int
    errors: list[str]

    def values(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _STATE_FIELDS}


_JOB_FIELDS = tuple(f.name for f in fields(JobRecord))
_BATCH_FIELDS = tuple(f.name for f in fields(BatchRecord))
_STATE_FIELDS = tuple(f.name for f in fields(ProviderState))
