"""Deadlines: a batch that must have ended by a given time stops waiting for the Batch API
when what is left could only just run in real time before it, and runs the rest through
the real-time runner (`unibatch.engine.runners.realtime`) on the same model.

The switch-over time, checked at each poll of one of the batch's provider jobs (and before
a job is first sent), is

    deadline - 1.25 x (unfinished requests / real-time throughput) - margin

per provider and model, the earliest of them for the whole batch. The unfinished requests
are those of its Batch API jobs that the provider has not reported done yet. The
throughput is measured from the latest real-time jobs of that model that ended within a
day (requests / seconds, a job smaller than the concurrency counted as the concurrency:
they all ran at once); with none, it is the concurrency / `realtime_request_seconds`
(30 s). Either is capped by the model's requests-per-minute limit. The margin
(`deadline_margin`, 10 min) covers the provider's cancel and reading its partial results.

At the switch the batch records the time (`Store.switch_to_realtime`, once); each of its
provider jobs is then cancelled at its next poll, exactly as failover cancels a stuck job
(`unibatch.engine.runners.batch`), and its partial results are ingested. When the round
ends, the transaction that closes it (`Store.finalize`) moves every request the cancel left
unrun to a real-time follow-up job of the same model, and any later retry or failover of
the batch runs in real time too. No retry of a batch with a deadline waits past the start
of the margin (`unibatch.engine.batches`). A crash before that commit moves nothing (the next run
plans it again); after it, the follow-up jobs are ordinary pending jobs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from unibatch import durations
from unibatch.engine.context import Context
from unibatch.engine.retry import Moves
from unibatch.errors import InputError
from unibatch.store.records import JobRecord
from unibatch.store.retries import Chooser, FailoverChoice

# What is left is assumed to take this much longer in real time than estimated.
SLACK = 1.25
# Real-time jobs older than this say little about the model's throughput today.
MEASURED_WITHIN = 86400.0

Deadline = datetime | timedelta | str | float | int


def parse_deadline(value: Deadline | None, now: float) -> float | None:
    """The deadline as epoch seconds: a timezone-aware `datetime`, a `timedelta` or a
    duration ("2h", "90m") from `now`, an ISO 8601 time with its timezone
    ("2026-12-01T09:00:00Z"), or epoch seconds. Refuses one already past (`InputError`)."""
    if value is None:
        return None
    try:
        at = _moment(value, now)
    except ValueError as exc:
        raise InputError(f"deadline {exc}", field="deadline") from None
    if at <= now:
        when = datetime.fromtimestamp(at).astimezone().isoformat(timespec="seconds")
        raise InputError(f"deadline {when} has already passed", field="deadline")
    return at


def _moment(value: Deadline, now: float) -> float:
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a time")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, timedelta):
        return now + value.total_seconds()
    if isinstance(value, datetime):
        return _aware(value, repr(value)).timestamp()
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a time or a duration")
    text = value.strip()
    try:
        return now + durations.seconds(text)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"{value!r} is neither a duration (2h, 90m, 1h30m) nor an ISO 8601 time with a "
            "timezone (2026-12-01T09:00:00Z)"
        ) from None
    return _aware(parsed, repr(value)).timestamp()


def _aware(moment: datetime, said: str) -> datetime:
    # A time without its zone would mean a different moment on the gateway's machine than
    # on the caller's: refused rather than guessed.
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{said} has no timezone; add one (Z for UTC, or +02:00)")
    return moment


async def throughput(ctx: Context, provider: str, model: str) -> float:
    """Requests a second the real-time runner can be expected to answer for the model."""
    settings = ctx.settings
    limit = settings.realtime_limit(provider, model)
    concurrency = limit.concurrency or settings.realtime_concurrency
    runs = await ctx.store.realtime_runs(provider, model, since=ctx.clock() - MEASURED_WITHIN)
    if runs:
        rate = sum(max(n, concurrency) for n, _ in runs) / sum(d for _, d in runs)
    else:
        rate = concurrency / settings.realtime_request_seconds
    if limit.rpm:
        rate = min(rate, limit.rpm / 60.0)
    return rate


async def switch_time(ctx: Context, batch_id: str, deadline: float) -> float:
    """When the batch must stop waiting for the Batch API (see the module docstring)."""
    run = 0.0
    for provider, model, left in await ctx.store.unfinished_by_model(batch_id):
        if left:
            run = max(run, left / await throughput(ctx, provider, model))
    return deadline - SLACK * run - ctx.settings.deadline_margin


async def must_switch(ctx: Context, job: JobRecord) -> bool:
    """Whether the job's batch has stopped waiting for the Batch API (deciding it, and
    recording it, when its switch-over time has come)."""
    deadline, switched = job.batch_deadline, job.batch_switched_at
    if job.batch_cancel_requested is None:  # not read with the claim
        batch = await ctx.store.get_batch(job.batch_id)
        if batch is None:
            return False
        deadline, switched = batch.deadline, batch.deadline_switched_at
    if deadline is None:
        return False
    if switched is not None:
        return True
    now = ctx.clock()
    if now < await switch_time(ctx, job.batch_id, deadline):
        return False
    await ctx.store.switch_to_realtime(job.batch_id, now)
    return True


def realtime_chooser(ctx: Context, batch_id: str, more_attempts: int) -> Chooser:
    """What `Store.finalize` calls, once a batch has switched, with the requests its
    provider jobs left unrun: real-time follow-up jobs on the model each ran on."""

    def choose(rows: Sequence[Mapping[str, Any]]) -> FailoverChoice:
        moves = Moves(ctx, batch_id, realtime=True)
        refused: dict[str, str] = {}
        for row in rows:
            refusal = moves.place(row, None)
            if refusal is not None:
                refused[row["custom_id"]] = f"not run in real time for the deadline: {refusal}"
        return FailoverChoice(moves.follow_ups(more_attempts), refused)

    return choose
