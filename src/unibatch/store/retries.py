"""Sending requests again: follow-up jobs of the same batch, and the attempts they replace.

A request that is sent again keeps one row in `results`: its outcome so far moves to
`attempts` (with the usage and cost the provider billed for it), the request's `job_id`
points at the follow-up job and its `attempts` count goes up, all in the transaction that
creates the follow-up job. A crash before that commit leaves the failure as it was, to be
planned again; after it, the follow-up job is an ordinary pending job, which the engine
submits once (recorded as `submitting` before the upload, found again by its tag after a
crash). Nothing here calls a provider.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from unibatch.store.records import BILLED
from unibatch.store.tables import attempts, jobs, requests, results

Row = dict[str, Any]
# Custom ids per statement when requests are moved by id (bound parameters stay few).
_ID_CHUNK = 500

# Sums over attempts, in the order of the progress and totals queries.
SUMMED = BILLED


@dataclass(frozen=True, slots=True)
class FollowUp:
    """A job to create and the requests it takes over: either every retryable failure of
    `source_job` still under `max_attempts` (automatic retries), or `custom_ids` (a
    manual retry), with new bodies in `bodies` when the model changed."""

    job_id: str
    provider: str
    model: str
    endpoint: str
    next_run_at: float
    mode: str = "batch"
    source_job: str | None = None
    max_attempts: int | None = None
    custom_ids: Sequence[str] = ()
    bodies: Sequence[bytes] | None = None
    # Attempts each moved request gets from here (a manual retry), retries included.
    more_attempts: int | None = None
    byte_count: int = 0
    # Estimated input tokens; for automatic retries, the source job's share per request.
    input_tokens: int = 0


@dataclass(frozen=True, slots=True)
class RetryPlan:
    """How a batch's retryable failures are sent again when its jobs have ended."""

    max_attempts: int
    now: float
    delay: Callable[[int], float]
    new_job_id: Callable[[], str]
    # The mode of every retry job (None: each failed job's own): "realtime" once a batch
    # has switched for its deadline.
    mode: str | None = None


@dataclass(frozen=True, slots=True)
class FailoverChoice:
    """Where the requests of failed jobs go: follow-up jobs on a fallback model, and for
    each request no fallback takes, why (added to its error)."""

    follow_ups: Sequence[FollowUp]
    refused: Mapping[str, str]


# Given the requests of failed jobs (seq, custom_id, body, provider, model, endpoint),
# choose their fallbacks; pure Python, called inside the transaction that plans them.
Chooser = Callable[[Sequence[Row]], FailoverChoice]


def request_results() -> sa.Join:
    """Requests with their result (those that have one)."""
    return requests.join(
        results,
        sa.and_(
            results.c.batch_id == requests.c.batch_id,
            results.c.custom_id == requests.c.custom_id,
        ),
    )


def _retryable(batch_id: str, job_id: str, max_attempts: int) -> sa.ColumnElement[bool]:
    """Results of `job_id` worth sending again: failed in a retryable way, attempts left."""
    return sa.and_(
        results.c.batch_id == batch_id,
        results.c.job_id == job_id,
        results.c.status != "succeeded",
        results.c.retryable.is_(True),
        requests.c.attempts < _limit(max_attempts),
    )


def _limit(max_attempts: int) -> sa.ColumnElement[int]:
    """A request's attempt limit: its own (given by a manual retry), else the batch's."""
    return sa.func.coalesce(requests.c.max_attempts, max_attempts)


async def retryable_groups(
    conn: AsyncConnection, batch_id: str, max_attempts: int
) -> list[tuple[Row, int, int]]:
    """Per job of the batch with requests to retry: the job's row, how many, and the
    highest attempt count among them (it sets the backoff)."""
    r, q = results.c, requests.c
    counts = (
        await conn.execute(
            sa.select(r.job_id, sa.func.count(), sa.func.max(q.attempts))
            .select_from(request_results())
            .where(
                r.batch_id == batch_id,
                r.status != "succeeded",
                r.retryable.is_(True),
                q.attempts < _limit(max_attempts),
            )
            .group_by(r.job_id)
        )
    ).all()
    if not counts:
        return []
    rows = await conn.execute(sa.select(jobs).where(jobs.c.id.in_([c[0] for c in counts])))
    by_id = {row["id"]: dict(row) for row in rows.mappings()}
    return [(by_id[job_id], int(n), int(top)) for job_id, n, top in counts if job_id in by_id]


async def create_follow_up(conn: AsyncConnection, batch_id: str, follow: FollowUp) -> int:
    """Create the follow-up job and move its requests to it, in the caller's transaction;
    how many requests it took (a job that took none is not kept)."""
    job_id = follow.job_id
    await conn.execute(
        jobs.insert().values(
            id=job_id,
            batch_id=batch_id,
            provider=follow.provider,
            model=follow.model,
            endpoint=follow.endpoint,
            mode=follow.mode,
            phase="pending",
            status="pending",
            request_count=0,
            byte_count=follow.byte_count,
            errors=[],
            next_run_at=follow.next_run_at,
        )
    )
    if follow.source_job is not None:
        assert follow.max_attempts is not None
        where = _retryable(batch_id, follow.source_job, follow.max_attempts)
        scope = requests.c.job_id == follow.source_job
        moved = await _move(conn, batch_id, job_id, where, scope)
    else:
        moved = 0
        ids = list(follow.custom_ids)
        for start in range(0, len(ids), _ID_CHUNK):
            part = ids[start : start + _ID_CHUNK]
            where = sa.and_(results.c.batch_id == batch_id, results.c.custom_id.in_(part))
            bodies = None if follow.bodies is None else follow.bodies[start : start + _ID_CHUNK]
            scope = requests.c.custom_id.in_(part)
            moved += await _move(
                conn, batch_id, job_id, where, scope, part, bodies, follow.more_attempts
            )
    if not moved:
        await conn.execute(jobs.delete().where(jobs.c.id == job_id))
        return 0
    tokens: Any = follow.input_tokens
    if follow.source_job is not None:
        # The requests moved take their share of the source job's estimate.
        source = jobs.alias("source")
        tokens = (
            sa.select(source.c.input_tokens * moved / sa.func.nullif(source.c.request_count, 0))
            .where(source.c.id == follow.source_job)
            .scalar_subquery()
        )
        tokens = sa.func.coalesce(sa.cast(tokens, sa.BigInteger), 0)
    await conn.execute(
        jobs.update().where(jobs.c.id == job_id).values(request_count=moved, input_tokens=tokens)
    )
    return moved


async def _move(
    conn: AsyncConnection,
    batch_id: str,
    job_id: str,
    where: sa.ColumnElement[bool],
    scope: sa.ColumnElement[bool],
    ids: Sequence[str] | None = None,
    bodies: Sequence[bytes] | None = None,
    more_attempts: int | None = None,
) -> int:
    """Move the results matching `where` to `attempts` and their requests (all within
    `scope`, which narrows the search) to `job_id`."""
    r, q = results.c, requests.c
    # Each column of `attempts` from the result it keeps, numbered by the request's count.
    names = [column.name for column in attempts.c]
    kept = [q.attempts if name == "attempt" else r[name] for name in names]
    picked = sa.select(*kept).select_from(request_results()).where(where)
    inserted = await conn.execute(attempts.insert().from_select(names, picked))
    if not inserted.rowcount:
        return 0
    # The attempt rows just written are the ones numbered as the request's count now.
    just_moved = (
        sa.select(attempts.c.custom_id)
        .where(
            attempts.c.batch_id == batch_id,
            attempts.c.custom_id == q.custom_id,
            attempts.c.attempt == q.attempts,
        )
        .exists()
    )
    values: dict[str, Any] = {"job_id": job_id, "attempts": q.attempts + 1}
    if more_attempts is not None:
        values["max_attempts"] = q.attempts + more_attempts
    if bodies is not None and ids is not None:
        await conn.execute(
            requests.update()
            .where(q.batch_id == batch_id, q.custom_id == sa.bindparam("cid"), just_moved)
            .values(body=sa.bindparam("new_body"), **values),
            [{"cid": cid, "new_body": body} for cid, body in zip(ids, bodies, strict=True)],
        )
    else:
        await conn.execute(
            requests.update().where(q.batch_id == batch_id, scope, just_moved).values(values)
        )
    gone = await conn.execute(
        results.delete().where(
            r.batch_id == batch_id,
            r.custom_id.in_(
                sa.select(q.custom_id).where(q.batch_id == batch_id, q.job_id == job_id)
            ),
        )
    )
    return int(gone.rowcount)


def _attempt_sums(where: sa.ColumnElement[bool]) -> sa.Select[Any]:
    a = attempts.c
    return (
        sa.select(a.batch_id, *(sa.func.coalesce(sa.func.sum(a[n]), 0) for n in SUMMED))
        .where(where)
        .group_by(a.batch_id)
    )


def attempt_sums_query(batch_ids: Sequence[str]) -> sa.Select[Any]:
    """The statement of `attempt_sums` (for synchronous reads too: `attempt_sums_of`)."""
    return _attempt_sums(attempts.c.batch_id.in_(list(batch_ids)))


# One batch's sums, for the bound parameter `batch_id`. Built once: building the statement
# on every read of a running batch (each poll of the gateway, say) cost more than running it.
BATCH_ATTEMPT_SUMS = _attempt_sums(attempts.c.batch_id == sa.bindparam("batch_id"))


def attempt_sums_of(rows: Iterable[Sequence[Any]]) -> dict[str, Row]:
    return {row[0]: dict(zip(SUMMED, row[1:], strict=True)) for row in rows}


async def attempt_sums(conn: AsyncConnection, batch_ids: Sequence[str]) -> dict[str, Row]:
    """Usage and cost of the attempts that were replaced, per batch."""
    return attempt_sums_of(await conn.execute(attempt_sums_query(batch_ids)))


async def history(
    conn: AsyncConnection, batch_id: str, custom_ids: Sequence[str]
) -> dict[str, list[Row]]:
    """The earlier attempts of these requests, oldest first, with the provider and model
    each was sent to."""
    a = attempts.c
    found: dict[str, list[Row]] = {}
    ids = list(custom_ids)
    for start in range(0, len(ids), _ID_CHUNK):
        rows = await conn.execute(
            sa.select(attempts, jobs.c.provider, jobs.c.model)
            .join(jobs, jobs.c.id == a.job_id, isouter=True)
            .where(a.batch_id == batch_id, a.custom_id.in_(ids[start : start + _ID_CHUNK]))
            .order_by(a.custom_id, a.attempt)
        )
        for row in rows.mappings():
            found.setdefault(row["custom_id"], []).append(dict(row))
    return found


def backoff(base: float, cap: float) -> Callable[[int], float]:
    """Seconds to wait before sending attempt `n` (2 for the first retry): `base`, then
    doubling, never more than `cap`."""

    def delay(attempt: int) -> float:
        return float(min(base * 2 ** max(attempt - 2, 0), cap))

    return delay


async def plan_failover(conn: AsyncConnection, batch_id: str, choose: Chooser) -> int:
    """Move the unfinished requests of the batch's failed Batch API jobs to follow-up jobs
    on their fallback (see `unibatch.engine.failover`), in the caller's transaction; how
    many moved. A request left behind gets the reason in its error message, once."""
    # Imported here: reading commands load the store without the provider packages.
    from unibatch.providers.error_classes import BATCH_FAILED

    r, j = results.c, jobs.c
    failed = sa.and_(
        j.status == "failed",
        # What the failure left unrun, not a request the provider judged on its own.
        sa.or_(r.retryable.is_(True), r.error_code == BATCH_FAILED),
    )
    return await _plan_moves(conn, batch_id, failed, choose)


async def plan_deadline(conn: AsyncConnection, batch_id: str, choose: Chooser) -> int:
    """Move the requests that the batch's cancelled (or expired) Batch API jobs left unrun
    to real-time follow-up jobs (see `unibatch.engine.deadline`), in the caller's
    transaction; how many moved."""
    from unibatch.providers.error_classes import BATCH_CANCELLED, BATCH_EXPIRED

    unrun = results.c.error_code.in_([BATCH_CANCELLED, BATCH_EXPIRED])
    return await _plan_moves(conn, batch_id, unrun, choose)


async def _plan_moves(
    conn: AsyncConnection, batch_id: str, where: sa.ColumnElement[bool], choose: Chooser
) -> int:
    """Move the unsucceeded requests of the batch's Batch API jobs that match `where` to
    the follow-up jobs `choose` makes; a request it leaves behind gets the reason in its
    error message, once."""
    r, q, j = results.c, requests.c, jobs.c
    rows = await conn.execute(
        sa.select(q.seq, q.custom_id, q.body, j.provider, j.model, j.endpoint, r.error_message)
        .select_from(request_results())
        .join(jobs, j.id == q.job_id)
        .where(q.batch_id == batch_id, j.mode == "batch", r.status != "succeeded", where)
        .order_by(q.seq)
    )
    found = [dict(row) for row in rows.mappings()]
    if not found:
        return 0
    choice = choose(found)
    moved = 0
    for follow in choice.follow_ups:
        moved += await create_follow_up(conn, batch_id, follow)
    said = {row["custom_id"]: row["error_message"] or "" for row in found}
    notes = [
        {"cid": cid, "msg": f"{said[cid]} ({why})"}
        for cid, why in choice.refused.items()
        if why not in said[cid]
    ]
    if notes:
        await conn.execute(
            results.update()
            .where(r.batch_id == batch_id, r.custom_id == sa.bindparam("cid"))
            .values(error_message=sa.bindparam("msg")),
            notes,
        )
    return moved
