"""The dashboard's reads, as synchronous functions for `Store.read` (one transaction each).

Every page reads a bounded number of rows: batches and requests by keyset pages over
their indexes, searches by custom_id through the (batch_id, custom_id) index, and the
usage chart from provider jobs, never by counting a batch's request rows.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from unibatch.gateway.tables import gateway_batches, gateway_keys, gateway_usage
from unibatch.store.imports import IMPORTING
from unibatch.store.tables import batches, jobs, requests, results
from unibatch.types import TERMINAL_BATCH_STATUSES

Row = dict[str, Any]
Scope = str | None
_TERMINAL = [s.value for s in TERMINAL_BATCH_STATUSES]
# Sorts after every character a custom_id holds: the end of a prefix range.
_PREFIX_END = "\U0010ffff"


def _visible(scope: Scope) -> sa.Select[Any]:
    """Batch ids and creation times the scope sees: every batch for the master key (the
    CLI's and the Python API's too), a virtual key's own otherwise."""
    if scope is None:
        return sa.select(batches.c.id, batches.c.created_at).where(batches.c.status != IMPORTING)
    return (
        sa.select(batches.c.id, batches.c.created_at)
        .join(gateway_batches, gateway_batches.c.batch_id == batches.c.id)
        .where(gateway_batches.c.key_id == scope, batches.c.status != IMPORTING)
    )


def batch_page(conn: sa.Connection, scope: Scope, *, before: str | None, limit: int) -> list[str]:
    """Ids of up to `limit` batches, newest first, after the batch `before` (the last id
    of the previous page) in that order."""
    stmt = _visible(scope).order_by(batches.c.created_at.desc(), batches.c.id.desc()).limit(limit)
    if before is not None:
        at = conn.scalar(sa.select(batches.c.created_at).where(batches.c.id == before))
        if at is None:
            return []
        stmt = stmt.where(
            sa.or_(
                batches.c.created_at < at,
                sa.and_(batches.c.created_at == at, batches.c.id < before),
            )
        )
    return [row.id for row in conn.execute(stmt)]


def may_see(conn: sa.Connection, scope: Scope, batch_id: str) -> bool:
    return conn.execute(_visible(scope).where(batches.c.id == batch_id)).first() is not None


def request_page(
    conn: sa.Connection,
    batch_id: str,
    *,
    search: str | None,
    after: str | None,
    limit: int,
) -> list[Row]:
    """Up to `limit` requests of a batch, each with its result if it has one. Without a
    search: in input order after position `after`; with one: the custom_ids starting with
    `search`, in custom_id order after `after` (a custom_id)."""
    r, res = requests.c, results.c
    stmt = (
        sa.select(
            r.seq,
            r.custom_id,
            r.body.label("request"),
            r.attempts,
            jobs.c.provider,
            jobs.c.model,
            res.status,
            res.status_code,
            res.error_code,
            res.error_message,
            res.retryable,
            res.input_tokens,
            res.output_tokens,
            res.cost_input,
            res.cost_output,
            res.body.label("response"),
        )
        .join(jobs, jobs.c.id == r.job_id)
        .outerjoin(results, sa.and_(res.batch_id == r.batch_id, res.custom_id == r.custom_id))
        .where(r.batch_id == batch_id)
        .limit(limit)
    )
    if search:
        stmt = stmt.where(
            r.custom_id >= search,
            r.custom_id < search + _PREFIX_END,
            # The range reads the index; this keeps the match exact under any collation.
            sa.func.substr(r.custom_id, 1, len(search)) == search,
        ).order_by(r.custom_id)
        if after is not None:
            stmt = stmt.where(r.custom_id > after)
    else:
        stmt = stmt.order_by(r.seq)
        if after is not None:
            stmt = stmt.where(r.seq > int(after))
    return [dict(row) for row in conn.execute(stmt).mappings()]


def error_classes(conn: sa.Connection, batch_id: str) -> list[Row]:
    """The batch's errors grouped by code and class (retryable or permanent), most first.
    One batch's result rows: bounded by the batch, read only on its own page."""
    res = results.c
    return [
        dict(row)
        for row in conn.execute(
            sa.select(
                res.error_code,
                res.retryable,
                sa.func.count().label("n"),
                sa.func.min(res.error_message).label("example"),
            )
            .where(res.batch_id == batch_id, res.status != "succeeded")
            .group_by(res.error_code, res.retryable)
            .order_by(sa.func.count().desc())
        ).mappings()
    ]


def keys_with_spend(conn: sa.Connection) -> list[Row]:
    """Every key with its budget and spend: the totals of its finished batches (kept on
    each batch row) plus the usage landed so far in its unfinished ones."""
    gb, b = gateway_batches.c, batches.c
    finished = (
        sa.select(
            gb.key_id,
            sa.func.sum(b.cost_input + b.cost_output).label("cost"),
            sa.func.count().label("batches"),
        )
        .join(batches, b.id == gb.batch_id)
        .where(b.status.in_(_TERMINAL))
        .group_by(gb.key_id)
        .subquery()
    )
    running = (
        sa.select(gb.key_id, sa.func.sum(gateway_usage.c.cost).label("cost"))
        .join(batches, b.id == gb.batch_id)
        .join(gateway_usage, gateway_usage.c.batch_id == gb.batch_id)
        .where(b.status.not_in(_TERMINAL))
        .group_by(gb.key_id)
        .subquery()
    )
    k = gateway_keys.c
    stmt = (
        sa.select(
            k.id,
            k.name,
            k.key_hint,
            k.created_at,
            k.revoked_at,
            k.max_budget,
            sa.func.coalesce(finished.c.batches, 0).label("batches"),
            (sa.func.coalesce(finished.c.cost, 0.0) + sa.func.coalesce(running.c.cost, 0.0)).label(
                "spent"
            ),
        )
        .outerjoin(finished, finished.c.key_id == k.id)
        .outerjoin(running, running.c.key_id == k.id)
        .order_by(k.created_at, k.id)
    )
    return [dict(row) for row in conn.execute(stmt).mappings()]


def usage_by_model(conn: sa.Connection, scope: Scope, *, since: float) -> list[Row]:
    """Requests per model and provider job, for jobs created by the scope's batches that
    were sent since `since`: (provider, model, submitted_at, requests) rows, read from the
    jobs table (one row per provider job, not per request)."""
    j = jobs.c
    stmt = sa.select(j.provider, j.model, j.submitted_at, j.request_count).where(
        j.submitted_at >= since
    )
    if scope is not None:
        stmt = stmt.join(gateway_batches, gateway_batches.c.batch_id == j.batch_id).where(
            gateway_batches.c.key_id == scope
        )
    return [dict(row) for row in conn.execute(stmt.order_by(j.submitted_at)).mappings()]
