"""Batch steps: finalize a batch whose jobs are all done, then call its handler."""

from __future__ import annotations

import logging
from typing import Any

from unibatch.engine import notify
from unibatch.engine.context import Context
from unibatch.engine.schedule import poll_delay
from unibatch.engine.views import batch_view
from unibatch.types import TERMINAL_BATCH_STATUSES

log = logging.getLogger("unibatch.engine")
Row = dict[str, Any]

# What a request without any result row became, by the status its job ended in.
_MISSING = {
    "cancelled": ("cancelled", "batch_cancelled", "not executed: the batch was cancelled"),
    "expired": ("expired", "batch_expired", "not executed before the batch expired"),
    "failed": ("errored", "batch_failed", "the provider batch failed"),
}
_MISSING_DEFAULT = (
    "errored",
    "missing_result",
    "the provider returned no result for this request in any result file",
)


def _fill_spec(job: Row) -> Row:
    status, code, message = _MISSING.get(job["status"], _MISSING_DEFAULT)
    if job["status"] == "failed" and job["errors"]:
        message = f"{message}: {'; '.join(job['errors'])}"
    return {"job_id": job["id"], "status": status, "error_code": code, "error_message": message}


async def run_batch_step(ctx: Context, batch: Row) -> None:
    if batch["status"] not in {s.value for s in TERMINAL_BATCH_STATUSES}:
        jobs = await ctx.store.jobs_of(batch["id"])
        if any(job["phase"] != "done" for job in jobs):
            await ctx.store.update_batch(batch["id"], ctx.owner, release=True)
            return
        finished = await ctx.store.finalize(
            batch["id"],
            ctx.owner,
            [_fill_spec(job) for job in jobs],
            ctx.clock(),
            cancelled=bool(batch["cancel_requested"]),
        )
        if not finished:
            return
        log.info("batch %s: finalized", batch["id"])
        if batch["on_complete"]:
            await ctx.store.update_batch(
                batch["id"], ctx.owner, handler_state="pending", next_run_at=ctx.clock()
            )
            batch = {**batch, "handler_state": "pending", "handler_attempts": 0}
    if batch["handler_state"] == "pending" and batch["on_complete"]:
        await _notify(ctx, batch)
        return
    await ctx.store.update_batch(batch["id"], ctx.owner, release=True)


async def _notify(ctx: Context, batch: Row) -> None:
    view = await batch_view(ctx.store, batch["id"])
    try:
        await notify.call(batch["on_complete"], view)
    except Exception as exc:  # the handler is user code: any failure is retried later
        attempts = batch["handler_attempts"] + 1
        delay = poll_delay(notify.HANDLER_BACKOFF, attempts - 1)
        log.warning("batch %s: handler failed (%s); retrying in %.0fs", batch["id"], exc, delay)
        await ctx.store.update_batch(
            batch["id"],
            ctx.owner,
            release=True,
            handler_attempts=attempts,
            handler_error=f"{type(exc).__name__}: {exc}",
            next_run_at=ctx.clock() + delay,
        )
        return
    await ctx.store.update_batch(
        batch["id"],
        ctx.owner,
        release=True,
        handler_state="done",
        handler_attempts=batch["handler_attempts"] + 1,
        handler_error=None,
        next_run_at=None,
    )
