"""Store rows to the public types."""

from __future__ import annotations

from typing import Any

from unibatch import codec
from unibatch.errors import NotFoundError
from unibatch.store import Store
from unibatch.types import (
    Batch,
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


def _live_status(batch: Row, jobs: list[Row]) -> BatchStatus:
    if batch["cancel_requested"]:
        return BatchStatus.CANCELLING
    running = [j["status"] for j in jobs if j["phase"] != "done"]
    if not running:
        return BatchStatus.FINALIZING if jobs else BatchStatus.PENDING
    if any(s == "cancelling" for s in running):
        return BatchStatus.CANCELLING
    if all(j["phase"] == "pending" for j in jobs):
        return BatchStatus.PENDING
    ranks = [_ORDER.index(s) if s in _ORDER else len(_ORDER) - 1 for s in running]
    status = _ORDER[max(1, min(ranks))]
    return BatchStatus(status)


async def batch_view(store: Store, batch_id: str) -> Batch:
    batch = await store.get_batch(batch_id)
    if batch is None:
        raise NotFoundError(f"no batch {batch_id!r}")
    jobs = await store.jobs_of(batch_id)
    status = BatchStatus(batch["status"])
    if status.terminal:
        sums = batch
        counts = {k: int(batch[k]) for k in ("succeeded", "errored", "expired", "cancelled")}
    else:
        status = _live_status(batch, jobs)
        sums = {
            k: 0 for k in ("input_tokens", "output_tokens", "cached_tokens", "reasoning_tokens")
        } | {"cost_input": 0.0, "cost_output": 0.0}
        counts = dict.fromkeys(("succeeded", "errored", "expired", "cancelled"), 0)
        for row in await store.progress(batch_id):
            counts[row["status"]] = counts.get(row["status"], 0) + int(row["n"])
            for key in sums:
                sums[key] += row[key]
    total = int(batch["request_total"])
    submitted = [j["submitted_at"] for j in jobs if j["submitted_at"]]
    errors = [e for j in jobs for e in (j["errors"] or [])]
    return Batch(
        id=batch["id"],
        status=status,
        created_at=batch["created_at"],
        request_counts=RequestCounts(
            total=total, pending=max(total - sum(counts.values()), 0), **counts
        ),
        usage=Usage(
            input_tokens=int(sums["input_tokens"]),
            output_tokens=int(sums["output_tokens"]),
            cached_tokens=int(sums["cached_tokens"]),
            reasoning_tokens=int(sums["reasoning_tokens"]),
        ),
        cost=Cost(input=float(sums["cost_input"]), output=float(sums["cost_output"])),
        endpoint=batch["endpoint"],
        metadata=dict(batch["metadata"] or {}),
        providers=tuple(sorted({j["provider"] for j in jobs})),
        submitted_at=min(submitted) if submitted else None,
        finished_at=batch["finished_at"],
        cancel_requested=bool(batch["cancel_requested"]),
        errors=tuple(errors),
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
        ),
        cost=Cost(input=row["cost_input"], output=row["cost_output"]),
        raw=codec.unpack(row["raw"]),
        row_id=row["row_id"],
    )
