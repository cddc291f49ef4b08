"""Store rows to the public types."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import orjson

from unibatch import codec
from unibatch.errors import InputError, NotFoundError
from unibatch.store.records import BILLED as _SUMS
from unibatch.store.records import BatchRecord, JobMode, JobPhase, JobRecord
from unibatch.types import (
    Attempt,
    Batch,
    BatchError,
    BatchStatus,
    Cost,
    ErrorInfo,
    QueueWait,
    RequestCounts,
    RequestStatus,
    Result,
    Usage,
)

if TYPE_CHECKING:
    from unibatch.store import Store
    from unibatch.store.ops import BatchState

Row = dict[str, Any]
# While a batch runs, its status is the least advanced of its jobs'.
_ORDER = ["pending", "validating", "in_progress", "finalizing"]
_COUNTS = ("succeeded", "errored", "expired", "cancelled")


def _live_status(cancel_requested: bool, jobs: list[JobRecord]) -> BatchStatus:
    if cancel_requested:
        return BatchStatus.CANCELLING
    # Jobs of cached answers are done from the start: they say nothing of how far the
    # sending has gone.
    jobs = [j for j in jobs if j.mode is not JobMode.CACHE] or jobs
    running = [j.status for j in jobs if j.phase is not JobPhase.DONE]
    if not running:
        return BatchStatus.FINALIZING if jobs else BatchStatus.PENDING
    if any(s == "cancelling" for s in running):
        return BatchStatus.CANCELLING
    if all(j.phase is JobPhase.PENDING for j in jobs):
        return BatchStatus.PENDING
    ranks = [_ORDER.index(s) if s in _ORDER else len(_ORDER) - 1 for s in running]
    # Once a job has ended, jobs still to be sent are follow-ups (retries) of a batch
    # that is under way, not a batch that has yet to start.
    floor = _ORDER.index("in_progress") if any(j.phase is JobPhase.DONE for j in jobs) else 1
    status = _ORDER[max(floor, min(ranks))]
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
    state = await store.batch_state(batch_id, importing=importing)
    if state is None:
        raise NotFoundError(f"no batch {batch_id!r}")
    return state_view(state)


def state_view(state: BatchState) -> Batch:
    return view(state.record, state.jobs, state.progress)


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
    return [view(by_id[i], jobs_of[i], progress_of[i]) for i in batch_ids if i in by_id]


async def list_views(store: Store, *, status: str | None, limit: int) -> list[Batch]:
    """The newest `limit` batches, in `status` if given (one of `BatchStatus`)."""
    if status is not None and status not in BatchStatus._value2member_map_:
        known = ", ".join(s.value for s in BatchStatus)
        raise InputError(f"status {status!r} is not one of {known}", field="status")
    rows = await store.list_batches(status=status, limit=limit)
    return await batch_views(store, [row.id for row in rows])


def view(batch: BatchRecord, jobs: list[JobRecord], progress: list[Row]) -> Batch:
    """The batch as users see it, from what `Store.batch_states` (or `lite.Reader`) read."""
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
            for key in sums:
                sums[key] += row[key]
            if row["status"] not in _COUNTS:
                continue  # the sums of replaced attempts: usage and cost, no request
            per_job = landed.setdefault(row["job_id"], dict.fromkeys(_COUNTS, 0))
            per_job[row["status"]] = per_job.get(row["status"], 0) + int(row["n"])
        counts = dict.fromkeys(_COUNTS, 0)
        for job in jobs:
            for key, n in _job_counts(job, landed.get(job.id)).items():
                counts[key] += n
    total = batch.request_total
    submitted = [j.submitted_at for j in jobs if j.submitted_at]
    ended = [j.finished_at for j in jobs if j.phase is JobPhase.DONE and j.finished_at]
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
        cancel_requested_at=batch.cancel_requested_at,
        finalizing_at=max(ended) if jobs and len(ended) == len(jobs) else None,
        errors=tuple(errors),
        validation_errors=validation,
        waiting=queue_wait(jobs),
        cached=sum(j.request_count for j in jobs if j.mode is JobMode.CACHE),
        deadline=batch.deadline,
        deadline_switched_at=batch.deadline_switched_at,
    )


def queue_wait(jobs: list[JobRecord]) -> QueueWait | None:
    """The batch's jobs waiting for room in a provider's queue; their distinct reasons
    (one per provider and model), the job due first's first."""
    waiting = [j for j in jobs if j.phase is JobPhase.PENDING and j.queue_wait]
    if not waiting:
        return None
    waiting.sort(key=lambda j: j.next_run_at or 0.0)
    reasons: dict[tuple[str, str], str] = {}
    for job in waiting:
        reasons.setdefault((job.provider, job.model), str(job.queue_wait))
    return QueueWait(
        jobs=len(waiting),
        requests=sum(j.request_count for j in waiting),
        reasons=tuple(reasons.values()),
    )


def _error(row: Row) -> ErrorInfo | None:
    if row["error_code"] is None:
        return None
    return ErrorInfo(row["error_code"], row["error_message"] or "", bool(row["retryable"]))


def _usage(rows: Sequence[Row]) -> Usage:
    return Usage(
        *(
            sum(int(r[name]) for r in rows)
            for name in (
                "input_tokens",
                "output_tokens",
                "cached_tokens",
                "reasoning_tokens",
                "cache_write_tokens",
            )
        )
    )


def _cost(rows: Sequence[Row], price: str | None = None) -> Cost | None:
    """What the rows cost, with the price of the last (`price`, JSON text); None where
    any was priced at an unknown price (a local server's model): unknown, not free."""
    if any(r["cost_input"] is None for r in rows):
        return None
    return Cost(
        input=sum(float(r["cost_input"]) for r in rows),
        output=sum(float(r["cost_output"] or 0.0) for r in rows),
        price=None if price is None else orjson.loads(price),
    )


def attempt_view(row: Row) -> Attempt:
    """An earlier attempt (a row of `attempts`, with its job's provider and model)."""
    return Attempt(
        attempt=int(row["attempt"]),
        status=RequestStatus(row["status"]),
        provider=row["provider"] or "",
        model=row["model"] or "",
        error=_error(row),
        usage=_usage([row]),
        cost=_cost([row]),
    )


def result_view(row: Row, history: Sequence[Row] = ()) -> Result:
    """A stored result as users see it; `history` holds the rows of its earlier attempts,
    whose usage and cost count in the result's."""
    billed = [row, *history]
    return Result(
        custom_id=row["custom_id"],
        status=RequestStatus(row["status"]),
        provider=row["provider"],
        model=row["model"],
        response=codec.unpack(row["body"]),
        status_code=row["status_code"],
        request_id=row["request_id"],
        error=_error(row),
        usage=_usage(billed) if history else _usage([row]),
        cost=_cost(billed, row.get("price")),
        raw=codec.unpack(row["raw"]),
        row_id=row["row_id"],
        attempts=int(row.get("attempts") or 1),
        history=tuple(attempt_view(h) for h in history),
        mode=row.get("mode") or "batch",
    )
