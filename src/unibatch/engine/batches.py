"""Batch steps: finalize a batch whose jobs are all done, then call its handler."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from typing import Any

from unibatch.engine import notify
from unibatch.engine.context import Context
from unibatch.engine.deadline import realtime_chooser
from unibatch.engine.failover import chooser
from unibatch.engine.ids import new_id
from unibatch.engine.schedule import poll_delay
from unibatch.engine.views import batch_view
from unibatch.providers.error_classes import (
    BATCH_CANCELLED,
    BATCH_EXPIRED,
    BATCH_FAILED,
    MISSING_RESULT,
    UNRUN,
)
from unibatch.store.records import BatchRecord, HandlerState, JobMode, JobPhase, JobRecord
from unibatch.store.retries import RetryPlan, backoff

log = logging.getLogger("unibatch.engine")

# What a request without any result row became, by the status its job ended in. A
# cancelled job's requests are retryable here as after a cancel for maximum age; the store
# makes every cancelled request of a batch the user cancelled permanent when it finalizes.
_MISSING = {
    "cancelled": ("cancelled", BATCH_CANCELLED, "not executed: the batch was cancelled"),
    "expired": ("expired", BATCH_EXPIRED, "not executed before the batch expired"),
    "failed": ("errored", BATCH_FAILED, "the provider batch failed"),
}
_MISSING_DEFAULT = (
    "errored",
    MISSING_RESULT,
    "the provider returned no result for this request in any result file",
)


def _fill_spec(job: JobRecord) -> dict[str, Any]:
    status, code, message = _MISSING.get(job.status, _MISSING_DEFAULT)
    if job.status == "failed" and job.errors:
        message = f"{message}: {'; '.join(job.errors)}"
    return {
        "job_id": job.id,
        "status": status,
        "error_code": code,
        "error_message": message,
        "retryable": UNRUN[code],
    }


async def run_batch_step(ctx: Context, batch: BatchRecord) -> None:
    if not batch.status.terminal:
        jobs = await ctx.store.jobs_of(batch.id)
        if any(job.phase is not JobPhase.DONE for job in jobs):
            await ctx.store.release_batch(batch.id, ctx.owner)
            return
        now = ctx.clock()
        settings = ctx.settings
        # Past its deadline's switch-over a batch waits for no more Batch API jobs: what
        # its cancels left unrun, its retries and its failovers all run in real time.
        switched = batch.deadline_switched_at is not None
        delay = backoff(settings.retry_backoff, settings.retry_backoff_max)
        if batch.deadline is not None:
            # No retry waits past the margin kept before the deadline: by then the batch
            # has switched over, and the retry runs in real time.
            delay = _within(delay, batch.deadline - settings.deadline_margin - now)
        retries = RetryPlan(
            max_attempts=batch.max_attempts,
            now=now,
            delay=delay,
            new_job_id=lambda: new_id("ubj"),
            mode=JobMode.REALTIME if switched else None,
        )
        outcome = await ctx.store.finalize(
            batch.id,
            ctx.owner,
            [_fill_spec(job) for job in jobs],
            now,
            cancelled=batch.cancel_requested,
            retries=retries if batch.max_attempts > 1 else None,
            failover=(
                chooser(ctx, batch.id, batch.fallback_models, batch.max_attempts, realtime=switched)
                if batch.fallback_models
                else None
            ),
            deadline=realtime_chooser(ctx, batch.id, batch.max_attempts) if switched else None,
        )
        if outcome == "retrying":
            log.info(
                "batch %s: failed or retryable requests sent again in follow-up jobs", batch.id
            )
            return
        if outcome is None:
            return
        log.info("batch %s: finalized", batch.id)
        if batch.on_complete:
            await ctx.store.handler_due(batch.id, ctx.owner, at=ctx.clock())
            batch = dataclasses.replace(
                batch, handler_state=HandlerState.PENDING, handler_attempts=0
            )
    if batch.handler_state is HandlerState.PENDING and batch.on_complete:
        await _notify(ctx, batch, batch.on_complete)
        return
    await ctx.store.release_batch(batch.id, ctx.owner)


def _within(delay: Callable[[int], float], most: float) -> Callable[[int], float]:
    """A retry's backoff, never more than `most` seconds."""
    return lambda attempt: max(0.0, min(delay(attempt), most))


async def _notify(ctx: Context, batch: BatchRecord, handler: str) -> None:
    view = await batch_view(ctx.store, batch.id)
    attempts = batch.handler_attempts + 1
    try:
        await notify.call(handler, view)
    except Exception as exc:  # the handler is user code: any failure is retried later
        delay = poll_delay(notify.HANDLER_BACKOFF, attempts - 1)
        log.warning("batch %s: handler failed (%s); retrying in %.0fs", batch.id, exc, delay)
        await ctx.store.handler_failed(
            batch.id,
            ctx.owner,
            f"{type(exc).__name__}: {exc}",
            attempts=attempts,
            retry_at=ctx.clock() + delay,
        )
        return
    await ctx.store.handler_done(batch.id, ctx.owner, attempts=attempts)
