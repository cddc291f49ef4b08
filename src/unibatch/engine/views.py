"""Store rows to the public types."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from unibatch import codec
from unibatch.errors import InputError, NotFoundError
from unibatch.store import Store
from unibatch.store.records import BatchRecord, JobPhase, JobRecord
from unibatch.types import (
    Batch,
    BatchError,
    BatchStatus,
    Cost,
    ErrorInfo,
    RequestCounts,
    RequestStatus,
    Result,
    Usage,
)

Row = dict[str, Any]
# While a batch runs, its status is the least advanced of its jobs'.
_ORDER = ["pending", "validating", "in_progress", "finalizing"]
_COUNTS = ("succeeded", "errored", "expired", "cancelled")
_SUMS = (
    "input_tokens",
    "output_tokens",
    "cached_tokens",
    "reasoning_tokens",
    "cache_write_tokens",
    "cost_input",
    "cost_output",
)


def _live_status(cancel_requested: bool, jobs: list[JobRecord]) -> BatchStatus:
    if cancel_requested:
        return BatchStatus.CANCELLING
    running = [j.status for j in jobs if j.phase is not JobPhase.DONE]
    if not running:
        return BatchStatus.FINALIZING if jobs else BatchStatus.PENDING
    if any(s == "cancelling" for s in running):
        return BatchStatus.CANCELLING
    if all(j.phase is JobPhase.PENDING for j in jobs):
        return BatchStatus.PENDING
    ranks = [_ORDER.index(s) if s in _ORDER else len(_ORDER) - 1 for s in running]
    status = _ORDER[max(1, min(ranks))]
    return BatchStatus(status)


def _job_counts(job: JobRecord, landed: dict[str, int] | None) -> dict[str, int]:
    """A running job's counts: the provider's own counters while they are ahead of the
    results we hold (results land only once the provider batch has ended), ours after."""
    ours = landed or dict.fromkeys(_COUNTS, 0)
    if job.phase is JobPhase.DONE:
        return ours
    reported = {
        "succeeded": job.provider_completed,
        "errored": job.provider_failed,
        "cancelled": job.provider_cancelled,
    }
    return reported if sum(reported.values()) > sum(ours.values()) else ours


async def batch_view(store: Store, batch_id: str, *, importing: bool = False) -> Batch:
    """The batch as users see it; one still being imported only with `importing` (it is
    `validating` then, with no requests counted yet)."""
    batch = await store.get_batch(batch_id, importing=importing)
    if batch is None:
        raise NotFoundError(f"no batch {batch_id!r}")
    jobs = await store.jobs_of(batch_id)
    progress = [] if batch.status.terminal else await store.progress(batch_id)
    return _view(batch, jobs, progress)


async def batch_views(store: Store, batch_ids: Sequence[str]) -> list[Batch]:
    """The batches of `batch_ids` that exist, in that order, read in a fixed number of
    queries however many there are (one page of a list, say)."""
    records, jobs, progress = await store.batch_states(batch_ids)
    jobs_of: dict[str, list[JobRecord]] = defaultdict(list)
    for job in jobs:
        jobs_of[job.batch_id].append(job)
    progress_of: dict[str, list[Row]] = defaultdict(list)
    for row in progress:
        progress_of[row["batch_id"]].append(row)
    by_id = {r.id: r for r in records}
    return [_view(by_id[i], jobs_of[i], progress_of[i]) for i in batch_ids if i in by_id]


async def list_views(store: Store, *, status: str | None, limit: int) -> list[Batch]:
    """The newest `limit` batches, in `status` if given (one of `BatchStatus`)."""
    if status is not None and status not in BatchStatus._value2member_map_:
        known = ", ".join(s.value for s in BatchStatus)
        raise InputError(f"status {status!r} is not one of {known}", field="status")
    rows = await store.list_batches(status=status, limit=limit)
    return await batch_views(store, [row.id for row in rows])


def _view(batch: BatchRecord, jobs: list[JobRecord], progress: list[Row]) -> Batch:
    status = batch.status
    sums: Row = {key: getattr(batch, key) for key in _SUMS}
    counts = {key: int(getattr(batch, key)) for key in _COUNTS}
    if status is BatchStatus.VALIDATING:
        status = BatchStatus.CANCELLING if batch.cancel_requested else status
    elif not status.terminal:
        # The totals are written at finalize; until then they add up the results so far.
        status = _live_status(batch.cancel_requested, jobs)
        sums = dict.fromkeys(_SUMS, 0) | {"cost_input": 0.0, "cost_output": 0.0}
        landed: dict[str, dict[str, int]] = {}
        for row in progress:
            per_job = landed.setdefault(row["job_id"], dict.fromkeys(_COUNTS, 0))
            per_job[row["status"]] = per_job.get(row["status"], 0) + int(row["n"])
            for key in sums:
                sums[key] += row[key]
        counts = dict.fromkeys(_COUNTS, 0)
        for job in jobs:
            for key, n in _job_counts(job, landed.get(job.id)).items():
                counts[key] += n
    total = batch.request_total
    submitted = [j.submitted_at for j in jobs if j.submitted_at]
    validation = tuple(BatchError.from_dict(e) for e in batch.errors if isinstance(e, dict))
    errors = [str(e) for e in validation] + [e for j in jobs for e in j.errors]
    return Batch(
        id=batch.id,
        status=status,
        created_at=batch.created_at,
        request_counts=RequestCounts(
            total=total, pending=max(total - sum(counts.values()), 0), **counts
        ),
        usage=Usage(
            input_tokens=int(sums["input_tokens"]),
            output_tokens=int(sums["output_tokens"]),
            cached_tokens=int(sums["cached_tokens"]),
            reasoning_tokens=int(sums["reasoning_tokens"]),
            cache_write_tokens=int(sums["cache_write_tokens"]),
        ),
        cost=Cost(input=float(sums["cost_input"]), output=float(sums["cost_output"])),
        endpoint=batch.endpoint,
        metadata=dict(batch.metadata),
        providers=tuple(sorted({j.provider for j in jobs})),
        submitted_at=min(submitted) if submitted else None,
        finished_at=batch.finished_at,
        cancel_requested=batch.cancel_requested,
        errors=tuple(errors),
        validation_errors=validation,
    )


def result_view(row: Row) -> Result:
    error = None
    if row["error_code"] is not None:
        error = ErrorInfo(row["error_code"], row["error_message"] or "", bool(row["retryable"]))
    return Result(
        custom_id=row["custom_id"],
        status=RequestStatus(row["status"]),
        provider=row["provider"],
        model=row["model"],
        response=codec.unpack(row["body"]),
        status_code=row["status_code"],
        request_id=row["request_id"],
        error=error,
        usage=Usage(
            row["input_tokens"],
            row["output_tokens"],
            row["cached_tokens"],
            row["reasoning_tokens"],
            row["cache_write_tokens"],
        ),
        cost=Cost(input=row["cost_input"], output=row["cost_output"]),
        raw=codec.unpack(row["raw"]),
        row_id=row["row_id"],
    )
