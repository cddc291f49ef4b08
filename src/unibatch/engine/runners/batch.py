"""The Batch API runner: submit a job as one provider batch, poll it, ingest its results."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import AsyncIterator

from unibatch import codec
from unibatch.engine.context import Context
from unibatch.engine.deadline import must_switch
from unibatch.engine.ingest import ingest, provider_job
from unibatch.engine.queue import claim_or_wait, requeue_refused
from unibatch.engine.schedule import poll_delay
from unibatch.errors import (
    ForeignBatchError,
    InputError,
    PermanentProviderError,
    TransientProviderError,
)
from unibatch.providers.base import JobSpec, Provider, ProviderJob, RequestLine
from unibatch.store.records import BatchRecord, JobPhase, JobRecord, ProviderState
from unibatch.types import BatchStatus

log = logging.getLogger("unibatch.engine")
# Requests read from the store per query while a job is uploaded. A worker uploads up to
# `limit` jobs at once and each holds its chunk: at 1M requests (20 jobs, 10 at a time)
# 5000 left the worker ~17 MB larger than 2000, for ~10 % less of the upload's CPU.
_UPLOAD_CHUNK = 2000
# Consecutive permanent errors while polling before the job is given up as failed.
MAX_POLL_FAILURES = 5
# Past the provider's own window, time for it to expire the batch and for us to see it.
MAX_AGE_MARGIN = 2 * 3600.0
# Statuses in which a job counts as stuck once past the batch's `stuck_after`: a job that
# is finalizing has run its requests, and results are on their way.
_STUCK_STATES = frozenset({BatchStatus.VALIDATING, BatchStatus.IN_PROGRESS})


def max_age(batch: BatchRecord, provider: Provider) -> float:
    """Seconds after submit before a job is cancelled: the batch's own limit, else the
    provider's completion window plus a margin."""
    return _max_age(batch.max_age, provider)


def _max_age(limit: float | None, provider: Provider) -> float:
    return limit if limit is not None else provider.spec.completion_window + MAX_AGE_MARGIN


class BatchRunner:
    """Runs a job through the provider's Batch API."""

    async def step(self, ctx: Context, job: JobRecord) -> None:
        provider = ctx.providers.get(job.provider)
        if job.phase in (JobPhase.PENDING, JobPhase.SUBMITTING):
            await _submit(ctx, provider, job)
        elif job.phase is JobPhase.RUNNING:
            await _poll(ctx, provider, job)
        elif job.phase is JobPhase.INGESTING:
            try:
                await ingest(ctx, provider, job)
            except ForeignBatchError as exc:
                # Adopted after a crash, but another job's: this job was never sent.
                log.warning("job %s: %s; submitting it again", job.id, exc)
                await ctx.store.resubmit_job(job.id, ctx.owner, str(exc), now=ctx.clock())


def provider_state(pj: ProviderJob, seen: JobRecord | None = None) -> ProviderState:
    """What to record of a poll. The counters are kept from the previous poll (`seen`)
    when the new ones add up to less: OpenAI resets them to zero once a batch is
    cancelled, and progress shown to users should not run backwards."""
    counts = (pj.completed, pj.failed, pj.cancelled)
    if seen is not None:
        before = (seen.provider_completed, seen.provider_failed, seen.provider_cancelled)
        if sum(before) > sum(counts):
            counts = before
    return ProviderState(
        provider_batch_id=pj.id,
        status=pj.status,
        native_status=pj.native_status,
        input_file_id=pj.input_file_id,
        output_file_id=pj.output_file_id,
        error_file_id=pj.error_file_id,
        provider_completed=counts[0],
        provider_failed=counts[1],
        provider_cancelled=counts[2],
        errors=pj.errors,
    )


async def _batch_cancelled(ctx: Context, job: JobRecord) -> bool:
    batch = await ctx.store.get_batch(job.batch_id)
    return bool(batch and batch.cancel_requested)


async def _submit(ctx: Context, provider: Provider, job: JobRecord) -> None:
    now = ctx.clock()
    if await _batch_cancelled(ctx, job) and job.phase is JobPhase.PENDING:
        await ctx.store.cancel_job(job.id, ctx.owner, now=now)
        return
    realtime = provider.spec.has_realtime  # else a deadline cannot move its requests
    if job.phase is JobPhase.PENDING and realtime and await must_switch(ctx, job):
        # Past the batch's deadline switch-over a Batch API job would end too late: it
        # runs in real time instead, before anything of it was sent.
        log.info("job %s: running in real time to meet the batch's deadline", job.id)
        await ctx.store.job_to_realtime(job.id, ctx.owner, now=now)
        return
    recovering = job.phase is JobPhase.SUBMITTING
    # Recorded before the upload: if we die after the provider's create, the next
    # attempt sees `submitting` and looks for the tagged batch instead of making another.
    # A pending job is sent only when the provider's queue has room for it.
    if not recovering:
        if not await claim_or_wait(ctx, job):
            return
    elif not await ctx.store.job_submitting(job.id, ctx.owner, attempts=job.submit_attempts + 1):
        return
    found = None
    # A provider that cannot find its batches again is simply sent the job once more.
    if recovering and provider.spec.finds_lost_batches:
        found = await provider.find(
            job.id, since=job.created_at - 300, request_count=job.request_count
        )
        if found is not None:
            log.info("job %s: adopted provider batch %s after a restart", job.id, found.id)
    if found is None:
        spec = JobSpec(
            job_id=job.id,
            model=job.model,
            endpoint=job.endpoint,
            tag=job.id,
            request_count=job.request_count,
            byte_count=job.byte_count,
        )
        try:
            found = await provider.submit(spec, _lines(ctx, job.id))
        except (PermanentProviderError, InputError) as exc:
            await ctx.store.fail_job(job.id, ctx.owner, str(exc), now=now)
            return
        except TransientProviderError as exc:
            refused = provider.refused_at_create(exc)
            if refused is None:
                raise
            # Nothing was created: the job waits for room, under a lowered limit.
            await requeue_refused(ctx, job, refused, str(exc))
            return
    await ctx.store.job_running(
        job.id,
        ctx.owner,
        provider_state(found),
        submitted_at=ctx.clock(),
        next_run_at=ctx.clock() + poll_delay(ctx.settings.poll_schedule, 0),
    )


async def _lines(ctx: Context, job_id: str) -> AsyncIterator[RequestLine]:
    # Bodies stay bytes: an adapter that sends them as they are never parses them.
    unpack = codec.json_bytes
    async for chunk in ctx.store.job_requests(job_id, _UPLOAD_CHUNK):
        for seq, custom_id, body in chunk:
            yield RequestLine(custom_id, seq=seq, data=unpack(body))


async def _poll(ctx: Context, provider: Provider, job: JobRecord) -> None:
    cancel_requested, limit = job.batch_cancel_requested, job.batch_max_age
    stuck_after = job.batch_stuck_after
    if cancel_requested is None:  # not read with the claim
        batch = await ctx.store.get_batch(job.batch_id)
        assert batch is not None
        cancel_requested, limit = batch.cancel_requested, batch.max_age
        stuck_after = batch.stuck_after
    now = ctx.clock()
    age = None if job.submitted_at is None else now - job.submitted_at
    too_old = age is not None and age > _max_age(limit, provider)
    # Past the threshold in a state that says nothing is moving: cancel, then fail over.
    past_stuck = age is not None and stuck_after is not None and age > stuck_after
    stuck = past_stuck and job.status in _STUCK_STATES
    # Past the batch deadline's switch-over: cancelled unless its results are on their
    # way already (finalizing), and its unrun requests then go to the real-time runner.
    switched = not cancel_requested and await must_switch(ctx, job)
    late = switched and job.status in _STUCK_STATES and provider.spec.has_realtime
    pj = provider_job(job)
    cancelling = pj.status is BatchStatus.CANCELLING
    try:
        if (cancel_requested or too_old or stuck or late) and not job.cancel_sent:
            reasons = (
                ("requested", cancel_requested),
                ("max age", too_old),
                ("stuck", stuck),
                ("deadline", late),
            )
            why = next(name for name, hit in reasons if hit)
            log.info("job %s: cancelling (%s)", job.id, why)
            pj = await provider.cancel(pj)
            await ctx.store.job_cancel_sent(job.id, ctx.owner)
            cancelling = True
        else:
            pj = await provider.get(pj)
    except PermanentProviderError as exc:
        failures = job.transient_errors + 1
        if failures < MAX_POLL_FAILURES:
            raise TransientProviderError(str(exc), status_code=exc.status_code) from exc
        await ctx.store.job_given_up(job.id, ctx.owner, str(exc), next_run_at=ctx.clock())
        return
    state = provider_state(pj, seen=job)
    if pj.status is BatchStatus.FAILED and not job.cancel_sent:
        refused = provider.queue_refusal(pj)
        if refused is not None:
            await requeue_refused(ctx, job, refused, "; ".join(pj.errors))
            return
    if pj.status.terminal:
        if pj.status is BatchStatus.CANCELLED and not cancel_requested and past_stuck:
            # We cancelled it because it was stuck: it failed, and its unfinished
            # requests move to the batch's fallback model when the round ends.
            said = f"stuck in validating/in_progress past {stuck_after:g}s; cancelled to fail over"
            state = dataclasses.replace(
                state, status=BatchStatus.FAILED, errors=[*state.errors, said]
            )
        elif pj.status is BatchStatus.CANCELLED and switched:
            # Cancelled for the deadline: its unrun requests run in real time when the
            # round ends (`unibatch.engine.deadline`); what it finished is kept.
            said = "cancelled to meet the batch's deadline; unfinished requests run in real time"
            state = dataclasses.replace(state, errors=[*state.errors, said])
        elif pj.status is BatchStatus.CANCELLED and not cancel_requested:
            # We cancelled it ourselves because it ran past the maximum age.
            state = dataclasses.replace(state, status=BatchStatus.EXPIRED)
        await ctx.store.job_ingesting(job.id, ctx.owner, state, next_run_at=ctx.clock())
        return
    # Just after a cancel the batch settles within seconds: look again as soon as at first.
    wait = poll_delay(ctx.settings.poll_schedule, 0 if cancelling else job.poll_count + 1)
    await ctx.store.job_polled(
        job.id, ctx.owner, state, poll_count=job.poll_count + 1, next_run_at=ctx.clock() + wait
    )
