"""Job steps: submit, poll and ingest one provider batch.

Each step runs under the job's lease and ends by writing the job's next phase. No network
call happens inside a database transaction: read, call the provider, then write.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

from unibatch import codec
from unibatch.engine.context import Context
from unibatch.engine.ingest import ingest, provider_job
from unibatch.engine.schedule import poll_delay, retry_delay
from unibatch.errors import (
    ConfigurationError,
    InputError,
    PermanentProviderError,
    TransientProviderError,
)
from unibatch.providers.base import JobSpec, Provider, ProviderJob, RequestLine
from unibatch.types import BatchStatus

log = logging.getLogger("unibatch.engine")
Row = dict[str, Any]
# Consecutive permanent errors while polling before the job is given up as failed.
MAX_POLL_FAILURES = 5


async def run_job_step(ctx: Context, job: Row) -> None:
    """Advance one claimed job by one step, whatever its phase."""
    try:
        provider = ctx.providers.get(job["provider"])
        if job["phase"] in ("pending", "submitting"):
            await _submit(ctx, provider, job)
        elif job["phase"] == "running":
            await _poll(ctx, provider, job)
        elif job["phase"] == "ingesting":
            await ingest(ctx, provider, job)
    except TransientProviderError as exc:
        attempts = job["transient_errors"] + 1
        delay = retry_delay(ctx.settings.poll_schedule, attempts, exc.retry_after)
        log.warning("job %s: %s; retrying in %.1fs", job["id"], exc, delay)
        await ctx.store.update_job(
            job["id"],
            ctx.owner,
            release=True,
            transient_errors=attempts,
            last_error=str(exc),
            next_run_at=ctx.clock() + delay,
        )
    except ConfigurationError as exc:
        # A missing key is fixed by the user, not by time: keep the job and say why.
        log.error("job %s: %s", job["id"], exc)
        await ctx.store.update_job(
            job["id"],
            ctx.owner,
            release=True,
            last_error=str(exc),
            next_run_at=ctx.clock() + ctx.settings.poll_schedule[-1],
        )


def _job_values(pj: ProviderJob) -> Row:
    return {
        "provider_batch_id": pj.id,
        "status": pj.status.value,
        "native_status": pj.native_status,
        "input_file_id": pj.input_file_id,
        "output_file_id": pj.output_file_id,
        "error_file_id": pj.error_file_id,
        "provider_completed": pj.completed,
        "provider_failed": pj.failed,
        "errors": pj.errors,
    }


async def _batch_cancelled(ctx: Context, job: Row) -> bool:
    batch = await ctx.store.get_batch(job["batch_id"])
    return bool(batch and batch["cancel_requested"])


async def _submit(ctx: Context, provider: Provider, job: Row) -> None:
    now = ctx.clock()
    if await _batch_cancelled(ctx, job) and job["phase"] == "pending":
        await ctx.store.update_job(
            job["id"],
            ctx.owner,
            release=True,
            phase="done",
            status="cancelled",
            finished_at=now,
            next_run_at=None,
        )
        return
    recovering = job["phase"] == "submitting"
    # Recorded before the upload: if we die after the provider's create, the next
    # attempt sees `submitting` and looks for the tagged batch instead of making another.
    if not await ctx.store.update_job(
        job["id"], ctx.owner, phase="submitting", submit_attempts=job["submit_attempts"] + 1
    ):
        return
    found = None
    if recovering:
        found = await provider.find(job["id"], since=job_created(job) - 300)
        if found is not None:
            log.info("job %s: adopted provider batch %s after a restart", job["id"], found.id)
    if found is None:
        spec = JobSpec(
            job_id=job["id"],
            model=job["model"],
            endpoint=job["endpoint"],
            tag=job["id"],
            request_count=job["request_count"],
            byte_count=job["byte_count"],
        )
        try:
            found = await provider.submit(spec, _lines(ctx, job["id"]))
        except (PermanentProviderError, InputError) as exc:
            await ctx.store.update_job(
                job["id"],
                ctx.owner,
                release=True,
                phase="done",
                status="failed",
                errors=[str(exc)],
                last_error=str(exc),
                finished_at=now,
                next_run_at=None,
            )
            return
    await ctx.store.update_job(
        job["id"],
        ctx.owner,
        release=True,
        phase="running",
        submitted_at=ctx.clock(),
        transient_errors=0,
        poll_count=0,
        next_run_at=ctx.clock() + poll_delay(ctx.settings.poll_schedule, 0),
        **_job_values(found),
    )


def job_created(job: Row) -> float:
    """Creation time, read from the time-ordered id (no extra column needed)."""
    try:
        return int(job["id"].split("_", 1)[1][:12], 16) / 1000.0
    except (IndexError, ValueError):
        return 0.0


async def _lines(ctx: Context, job_id: str) -> AsyncIterator[RequestLine]:
    async for chunk in ctx.store.job_requests(job_id, ctx.settings.ingest_chunk):
        for row in chunk:
            yield RequestLine(
                custom_id=row["custom_id"], body=codec.unpack(row["body"]), seq=row["seq"]
            )


async def _poll(ctx: Context, provider: Provider, job: Row) -> None:
    batch = await ctx.store.get_batch(job["batch_id"])
    assert batch is not None
    now = ctx.clock()
    too_old = job["submitted_at"] is not None and now - job["submitted_at"] > batch["max_age"]
    pj = provider_job(job)
    try:
        if (batch["cancel_requested"] or too_old) and not job["cancel_sent"]:
            log.info(
                "job %s: cancelling (%s)", job["id"], "requested" if not too_old else "max age"
            )
            pj = await provider.cancel(pj)
            await ctx.store.update_job(job["id"], ctx.owner, cancel_sent=True)
        else:
            pj = await provider.get(pj)
    except PermanentProviderError as exc:
        failures = job["transient_errors"] + 1
        if failures < MAX_POLL_FAILURES:
            raise TransientProviderError(str(exc), status_code=exc.status_code) from exc
        await ctx.store.update_job(
            job["id"],
            ctx.owner,
            release=True,
            phase="ingesting",
            status="failed",
            errors=[str(exc)],
            last_error=str(exc),
            next_run_at=ctx.clock(),
        )
        return
    values = _job_values(pj)
    if pj.status.terminal:
        if pj.status is BatchStatus.CANCELLED and not batch["cancel_requested"]:
            # We cancelled it ourselves because it ran past the maximum age.
            values["status"] = BatchStatus.EXPIRED.value
        await ctx.store.update_job(
            job["id"],
            ctx.owner,
            release=True,
            phase="ingesting",
            transient_errors=0,
            next_run_at=ctx.clock(),
            **values,
        )
        return
    await ctx.store.update_job(
        job["id"],
        ctx.owner,
        release=True,
        poll_count=job["poll_count"] + 1,
        transient_errors=0,
        next_run_at=ctx.clock() + poll_delay(ctx.settings.poll_schedule, job["poll_count"] + 1),
        **values,
    )
