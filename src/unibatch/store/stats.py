"""Fleet-wide aggregates for monitoring (`unibatch.metrics`), each one statement.

They read the tables that stay small (batches, jobs) and the totals a batch keeps, never
`requests` or `results`, so a scrape costs the same whether batches hold a thousand
requests or a million. The price: request outcomes, tokens and cost count once a batch
has finished (its totals are written at finalize); requests of a batch still running
count as `pending`.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import sqlalchemy as sa

from unibatch.store.tables import batches, jobs, webhook_deliveries
from unibatch.store.webhooks import counts_query
from unibatch.types import TERMINAL_BATCH_STATUSES

_TERMINAL = [s.value for s in TERMINAL_BATCH_STATUSES]
OUTCOMES = ("succeeded", "errored", "expired", "cancelled")
TOKENS = ("input", "output", "cached", "reasoning", "cache_write")
NO_PROVIDER = "none"


class Stats(NamedTuple):
    """One scrape's worth of aggregates."""

    # (status, provider) -> batches
    batches: dict[tuple[str, str], int]
    # (provider, job status) -> (jobs, requests in them)
    jobs: dict[tuple[str, str], tuple[int, int]]
    # outcome -> requests (`pending`: requests of unfinished batches)
    requests: dict[str, int]
    # token kind -> tokens; cost part (input, output) -> US dollars
    tokens: dict[str, int]
    cost: dict[str, float]
    # step kind (job, batch, webhook) -> steps due now that no worker holds
    due: dict[str, int]
    # (event type, delivery state) -> (deliveries, attempts made)
    webhooks: dict[tuple[str, str], tuple[int, int]]


def _batch_status() -> sa.ColumnElement[str]:
    """The status a batch shows: the stored one, except that an unfinished batch whose
    job has been sent is `in_progress`, and one asked to stop is `cancelling` (per job:
    a batch split over providers counts once under each)."""
    b = batches.c
    return sa.case(
        (b.status.in_(_TERMINAL), b.status),
        (b.status == "validating", b.status),
        (b.cancel_requested, sa.literal("cancelling")),
        (sa.func.coalesce(jobs.c.phase, "pending") == "pending", sa.literal("pending")),
        else_=sa.literal("in_progress"),
    )


def _batches_query() -> sa.Executable:
    status = _batch_status().label("status")
    provider = sa.func.coalesce(jobs.c.provider, NO_PROVIDER).label("provider")
    return (
        sa.select(status, provider, sa.func.count(sa.distinct(batches.c.id)).label("n"))
        .select_from(batches.outerjoin(jobs, jobs.c.batch_id == batches.c.id))
        .group_by(status, provider)
    )


def _totals_query() -> sa.Select[Any]:
    b = batches.c
    ended = b.status.in_(_TERMINAL)

    def ended_sum(column: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
        return sa.func.coalesce(sa.func.sum(sa.case((ended, column), else_=0)), 0)

    running = sa.and_(~ended, b.status != "validating")
    return sa.select(
        *(ended_sum(b[name]).label(name) for name in OUTCOMES),
        sa.func.coalesce(sa.func.sum(sa.case((running, b.request_total), else_=0)), 0).label(
            "pending"
        ),
        *(ended_sum(b[f"{kind}_tokens"]).label(f"{kind}_tokens") for kind in TOKENS),
        ended_sum(b.cost_input).label("cost_input"),
        ended_sum(b.cost_output).label("cost_output"),
    )


def _jobs_query() -> sa.Select[Any]:
    j = jobs.c
    return sa.select(
        j.provider,
        j.status,
        sa.func.count().label("n"),
        sa.func.coalesce(sa.func.sum(j.request_count), 0).label("requests"),
    ).group_by(j.provider, j.status)


def _due_query(now: float) -> sa.Select[Any]:
    """Steps a worker could claim now and none holds: the claim's own conditions, less
    the finalize steps of batches whose jobs all ended (cheap to miss, costly to find)."""

    def free(table: sa.Table) -> sa.ColumnElement[bool]:
        return sa.or_(table.c.lease_until.is_(None), table.c.lease_until < now)

    due_jobs = (
        sa.select(sa.func.count())
        .where(jobs.c.phase != "done", jobs.c.next_run_at <= now, free(jobs))
        .scalar_subquery()
    )
    due_batches = (
        sa.select(sa.func.count())
        .where(batches.c.handler_state == "pending", batches.c.next_run_at <= now, free(batches))
        .scalar_subquery()
    )
    hooks = webhook_deliveries
    due_hooks = (
        sa.select(sa.func.count())
        .where(hooks.c.state == "pending", hooks.c.next_run_at <= now, free(hooks))
        .scalar_subquery()
    )
    return sa.select(due_jobs.label("job"), due_batches.label("batch"), due_hooks.label("webhook"))


def read_stats(conn: sa.Connection, now: float) -> Stats:
    """Every aggregate, in one transaction: a synchronous function for `Store.read`."""
    by_batch = {(row.status, row.provider): int(row.n) for row in conn.execute(_batches_query())}
    by_job = {
        (row.provider, row.status): (int(row.n), int(row.requests))
        for row in conn.execute(_jobs_query())
    }
    totals = conn.execute(_totals_query()).mappings().one()
    due = conn.execute(_due_query(now)).mappings().one()
    return Stats(
        batches=by_batch,
        jobs=by_job,
        requests={name: int(totals[name]) for name in (*OUTCOMES, "pending")},
        tokens={kind: int(totals[f"{kind}_tokens"]) for kind in TOKENS},
        cost={"input": float(totals["cost_input"]), "output": float(totals["cost_output"])},
        due={kind: int(due[kind]) for kind in ("job", "batch", "webhook")},
        webhooks={
            (row.type, row.state): (int(row.deliveries), int(row.attempts))
            for row in conn.execute(counts_query())
        },
    )
