"""Named store operations. The engine never builds SQL itself; every state change is here.

Each method is one short transaction unless its name says otherwise. Claims take a
lease (owner + expiry) so any number of workers can share one database; on PostgreSQL
candidates are selected `FOR UPDATE SKIP LOCKED` so two workers never wait on each other.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from unibatch.codec import (
    RESULT_COLUMNS,
    SUCCESS_COLUMNS,
    SUCCESS_CONSTANTS,
    ResultRecord,
)
from unibatch.store.bulk_read import JOB_COLUMNS, sqlite_file, sqlite_result_rows
from unibatch.store.imports import IMPORTING, Imports
from unibatch.store.records import BatchRecord, JobRecord
from unibatch.store.tables import batches, jobs, requests, results
from unibatch.store.transitions import Transitions
from unibatch.types import TERMINAL_BATCH_STATUSES

Row = dict[str, Any]
ResultHook = Callable[[AsyncConnection, str, list[ResultRecord]], Awaitable[None]]
_TERMINAL = [s.value for s in TERMINAL_BATCH_STATUSES]
_SHORT = len(SUCCESS_COLUMNS)


def _sql_literal(dialect: str, value: object) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return ("true" if value else "false") if dialect == "postgresql" else str(int(value))
    return "'" + str(value).replace("'", "''") + "'"


@functools.cache
def _insert_results_sql(short: bool) -> str:
    """SQLite: the driver-level INSERT of result records that skips rows already stored:
    the full row, or the short success form with its constant columns as literals.
    Straight to the driver: SQLAlchemy's per-row parameter processing was a quarter of
    ingest time (bench/ingest.py)."""
    columns, constants = (SUCCESS_COLUMNS, SUCCESS_CONSTANTS) if short else (RESULT_COLUMNS, {})
    values = ["?"] * len(columns) + [_sql_literal("sqlite", v) for v in constants.values()]
    names = [*columns, *constants]
    return f"INSERT OR IGNORE INTO results ({', '.join(names)}) VALUES ({', '.join(values)})"


async def _copy_results(conn: AsyncConnection, short: bool, records: list[ResultRecord]) -> None:
    """PostgreSQL: COPY the records into a session temp table, then insert what is new.
    COPY skips the per-row work of an INSERT statement: ingest ran ~30% faster than with
    `executemany` (bench/ingest.py). The temp table has no constraints, the columns
    left out of the short form stay NULL there and are filled in as literals."""
    driver = (await conn.get_raw_connection()).driver_connection
    assert driver is not None
    await conn.exec_driver_sql(
        "CREATE TEMP TABLE IF NOT EXISTS results_incoming AS SELECT * FROM results WITH NO DATA"
    )
    columns, constants = (SUCCESS_COLUMNS, SUCCESS_CONSTANTS) if short else (RESULT_COLUMNS, {})
    await driver.copy_records_to_table("results_incoming", records=records, columns=list(columns))
    values = [*columns, *(_sql_literal("postgresql", v) for v in constants.values())]
    await conn.exec_driver_sql(
        f"INSERT INTO results ({', '.join([*columns, *constants])}) "
        f"SELECT {', '.join(values)} FROM results_incoming ON CONFLICT DO NOTHING"
    )
    await conn.exec_driver_sql("TRUNCATE results_incoming")


_BATCH_ID = RESULT_COLUMNS.index("batch_id")


def insert_ignore(dialect: str, table: sa.Table) -> Any:
    """An INSERT that skips rows whose key is already stored (idempotent writes)."""
    # The dialect modules load when first needed: a SQLite-only process (most CLI
    # commands) does not pay for PostgreSQL's.
    if dialect == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(table).on_conflict_do_nothing()
    from sqlalchemy.dialects import sqlite

    return sqlite.insert(table).on_conflict_do_nothing()


def _lease_free(table: sa.Table, now: float) -> sa.ColumnElement[bool]:
    return sa.or_(table.c.lease_until.is_(None), table.c.lease_until < now)


def _claimable_at(table: sa.Table) -> sa.ColumnElement[Any]:
    """When a row can next be claimed: its `next_run_at`, or the end of its lease if
    later (a step running somewhere is not due again until its lease runs out)."""
    c = table.c
    return sa.case(
        (sa.and_(c.lease_until.is_not(None), c.lease_until > c.next_run_at), c.lease_until),
        else_=c.next_run_at,
    )


def _progress_query(where: sa.ColumnElement[bool], *group: sa.ColumnElement[Any]) -> sa.Select[Any]:
    """Per-status counts and sums of the results matching `where`, grouped by status and
    `group` (the job id column; the batch id column too, to read several batches at once)."""
    r = results.c
    return (
        sa.select(
            *group,
            r.status,
            sa.func.count().label("n"),
            sa.func.coalesce(sa.func.sum(r.input_tokens), 0).label("input_tokens"),
            sa.func.coalesce(sa.func.sum(r.output_tokens), 0).label("output_tokens"),
            sa.func.coalesce(sa.func.sum(r.cached_tokens), 0).label("cached_tokens"),
            sa.func.coalesce(sa.func.sum(r.reasoning_tokens), 0).label("reasoning_tokens"),
            sa.func.coalesce(sa.func.sum(r.cache_write_tokens), 0).label("cache_write_tokens"),
            sa.func.coalesce(sa.func.sum(r.cost_input), 0.0).label("cost_input"),
            sa.func.coalesce(sa.func.sum(r.cost_output), 0.0).label("cost_output"),
        )
        .where(where)
        .group_by(*group, r.status)
    )


class Store(Transitions, Imports):
    """All persistent state of unibatch, over one SQLAlchemy async engine."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self.result_hooks: list[ResultHook] = []

    def add_result_hook(self, hook: ResultHook) -> None:
        """Run `hook(conn, batch_id, rows)` inside every transaction that stores results,
        so what it writes (usage events, budgets) commits or rolls back with them. Rows
        already stored may be passed again after a crash: a hook must be idempotent."""
        self.result_hooks.append(hook)

    async def aclose(self) -> None:
        await self.engine.dispose()

    # -- helpers ---------------------------------------------------------------------

    async def _one(self, stmt: sa.Executable) -> Row | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(stmt)).mappings().first()
            return dict(row) if row else None

    async def _all(self, stmt: sa.Executable) -> list[Row]:
        async with self.engine.connect() as conn:
            return [dict(r) for r in (await conn.execute(stmt)).mappings()]

    # -- batches ---------------------------------------------------------------------

    async def get_batch(self, batch_id: str, *, importing: bool = False) -> BatchRecord | None:
        """The batch, or None; a batch still being imported only with `importing` (its
        front end shows it as `validating`; everyone else must not see it yet)."""
        stmt = sa.select(batches).where(batches.c.id == batch_id)
        if not importing:
            stmt = stmt.where(batches.c.status != IMPORTING)
        row = await self._one(stmt)
        return None if row is None else BatchRecord.from_row(row)

    async def list_batches(
        self, *, status: str | None = None, limit: int = 100, before: float | None = None
    ) -> list[BatchRecord]:
        stmt = (
            sa.select(batches)
            .where(batches.c.status != IMPORTING)
            .order_by(batches.c.created_at.desc(), batches.c.id.desc())
        )
        if status:
            stmt = stmt.where(batches.c.status == status)
        if before is not None:
            stmt = stmt.where(batches.c.created_at < before)
        return [BatchRecord.from_row(row) for row in await self._all(stmt.limit(limit))]

    async def jobs_of(self, batch_id: str) -> list[JobRecord]:
        rows = await self._all(
            sa.select(jobs).where(jobs.c.batch_id == batch_id).order_by(jobs.c.id)
        )
        return [JobRecord.from_row(row) for row in rows]

    async def progress(self, batch_id: str) -> list[Row]:
        """Per-job, per-status counts and sums over the results landed so far."""
        return await self._all(_progress_query(results.c.batch_id == batch_id, results.c.job_id))

    async def batch_states(
        self, batch_ids: Sequence[str]
    ) -> tuple[list[BatchRecord], list[JobRecord], list[Row]]:
        """Everything `batch_view` reads, for many batches in three queries whatever their
        number: their rows (in no order), their jobs, and `progress` per batch (with a
        `batch_id` column) for those not yet finished, whose totals are not written yet."""
        if not batch_ids:
            return [], [], []
        ids = list(batch_ids)
        async with self.engine.connect() as conn:
            batch_rows = await conn.execute(sa.select(batches).where(batches.c.id.in_(ids)))
            records = [BatchRecord.from_row(dict(r)) for r in batch_rows.mappings()]
            job_rows = await conn.execute(
                sa.select(jobs).where(jobs.c.batch_id.in_(ids)).order_by(jobs.c.id)
            )
            job_records = [JobRecord.from_row(dict(r)) for r in job_rows.mappings()]
            running = [r.id for r in records if r.status.value not in _TERMINAL]
            progress: list[Row] = []
            if running:
                stmt = _progress_query(
                    results.c.batch_id.in_(running), results.c.batch_id, results.c.job_id
                )
                progress = [dict(r) for r in (await conn.execute(stmt)).mappings()]
        return records, job_records, progress

    async def request_cancel(self, batch_id: str, now: float) -> bool:
        """Mark a batch for cancellation. Jobs not yet sent end at once; sent ones are
        woken so a worker cancels them at the provider. False if already terminal."""
        async with self.engine.begin() as conn:
            updated = await conn.execute(
                batches.update()
                .where(batches.c.id == batch_id, batches.c.status.not_in(_TERMINAL))
                .values(cancel_requested=True)
            )
            if updated.rowcount == 0:
                return False
            await conn.execute(
                jobs.update()
                .where(
                    jobs.c.batch_id == batch_id,
                    jobs.c.phase == "pending",
                    _lease_free(jobs, now),
                )
                .values(phase="done", status="cancelled", finished_at=now, next_run_at=None)
            )
            await conn.execute(
                jobs.update()
                .where(
                    jobs.c.batch_id == batch_id,
                    jobs.c.phase.in_(["submitting", "running"]),
                    jobs.c.cancel_sent.is_(False),
                )
                .values(next_run_at=now)
            )
            return True

    # -- claims ----------------------------------------------------------------------

    async def _claim(
        self,
        table: sa.Table,
        where: sa.ColumnElement[bool],
        order: Any,
        owner: str,
        now: float,
        lease: float,
        limit: int,
        exclude: Collection[str],
    ) -> list[Row]:
        if exclude:
            # Steps this worker is running: their leases are ours, so the lease check
            # alone would let them through again once a heartbeat came late.
            where = sa.and_(where, table.c.id.not_in(list(exclude)))
        async with self.engine.begin() as conn:
            candidates = (
                sa.select(table.c.id)
                .where(where, _lease_free(table, now))
                .order_by(order)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
            ids = [r[0] for r in await conn.execute(candidates)]
            if not ids:
                return []
            # The lease condition is repeated so the claim stays safe without row locks
            # (SQLite serialises writers instead).
            await conn.execute(
                table.update()
                .where(table.c.id.in_(ids), _lease_free(table, now))
                .values(lease_owner=owner, lease_until=now + lease)
            )
            rows = await conn.execute(
                sa.select(table).where(table.c.id.in_(ids), table.c.lease_owner == owner)
            )
            return [dict(r) for r in rows.mappings()]

    async def claim_jobs(
        self,
        owner: str,
        now: float,
        *,
        lease: float,
        limit: int = 10,
        batch_id: str | None = None,
        exclude: Collection[str] = (),
    ) -> list[JobRecord]:
        """Lease up to `limit` due jobs, earliest due first, skipping the ids in `exclude`."""
        where = sa.and_(jobs.c.phase != "done", jobs.c.next_run_at <= now)
        if batch_id is not None:
            where = sa.and_(where, jobs.c.batch_id == batch_id)
        rows = await self._claim(jobs, where, jobs.c.next_run_at, owner, now, lease, limit, exclude)
        if rows:
            flags = await self._all(
                sa.select(batches.c.id, batches.c.cancel_requested, batches.c.max_age).where(
                    batches.c.id.in_({row["batch_id"] for row in rows})
                )
            )
            by_batch = {flag["id"]: flag for flag in flags}
            for row in rows:
                flag = by_batch.get(row["batch_id"])
                if flag is not None:
                    row["batch_cancel_requested"] = bool(flag["cancel_requested"])
                    row["batch_max_age"] = flag["max_age"]
        return [JobRecord.from_row(row) for row in rows]

    async def claim_batches(
        self,
        owner: str,
        now: float,
        *,
        lease: float,
        limit: int = 10,
        batch_id: str | None = None,
        exclude: Collection[str] = (),
    ) -> list[BatchRecord]:
        """Lease up to `limit` batches to finalize or notify, skipping the ids in `exclude`."""
        unfinished_job = (
            sa.select(jobs.c.id)
            .where(jobs.c.batch_id == batches.c.id, jobs.c.phase != "done")
            .exists()
        )
        where = sa.or_(
            sa.and_(batches.c.status.not_in([*_TERMINAL, IMPORTING]), ~unfinished_job),
            sa.and_(batches.c.handler_state == "pending", batches.c.next_run_at <= now),
        )
        if batch_id is not None:
            where = sa.and_(where, batches.c.id == batch_id)
        rows = await self._claim(
            batches, where, batches.c.created_at, owner, now, lease, limit, exclude
        )
        return [BatchRecord.from_row(row) for row in rows]

    async def next_due(self, batch_id: str | None = None) -> float | None:
        """When the earliest job or handler retry can be claimed (for an idle worker's
        sleep); a leased one not before its lease ends, or a worker would wake at once
        again and again while another step runs past its due time."""
        job_q = sa.select(sa.func.min(_claimable_at(jobs))).where(jobs.c.phase != "done")
        batch_q = sa.select(sa.func.min(_claimable_at(batches))).where(
            batches.c.handler_state == "pending"
        )
        if batch_id is not None:
            job_q = job_q.where(jobs.c.batch_id == batch_id)
            batch_q = batch_q.where(batches.c.id == batch_id)
        async with self.engine.connect() as conn:
            values = [(await conn.execute(q)).scalar() for q in (job_q, batch_q)]
        present = [v for v in values if v is not None]
        return min(present) if present else None

    # -- requests and results --------------------------------------------------------

    async def job_requests(self, job_id: str, chunk: int) -> AsyncIterator[list[Any]]:
        """A job's requests in input order, chunk by chunk (keyset paging, flat memory):
        rows of (seq, custom_id, body), the body packed as stored."""
        last = -1
        query = (
            sa.select(requests.c.seq, requests.c.custom_id, requests.c.body)
            .where(
                requests.c.job_id == sa.bindparam("job_id"),
                requests.c.seq > sa.bindparam("last"),
            )
            .order_by(requests.c.seq)
            .limit(chunk)
        )
        while True:
            async with self.engine.connect() as conn:
                result = await conn.execute(query, {"job_id": job_id, "last": last})
                rows = list(result.all())
            if not rows:
                return
            yield rows
            last = rows[-1][0]

    async def custom_ids(self, batch_id: str, seqs: list[int]) -> dict[int, str]:
        rows = await self._all(
            sa.select(requests.c.seq, requests.c.custom_id).where(
                requests.c.batch_id == batch_id, requests.c.seq.in_(seqs)
            )
        )
        return {row["seq"]: row["custom_id"] for row in rows}

    async def insert_results(
        self, rows: list[ResultRecord], *, job_id: str, owner: str, lease_until: float
    ) -> bool:
        """Insert result records (all of one batch), skipping ones already present, and
        extend the job's lease in the same transaction. False when the lease was lost
        (nothing written)."""
        async with self.engine.begin() as conn:
            if self.dialect == "postgresql":
                # No WAL flush wait per chunk (as SQLite's WAL with synchronous=NORMAL).
                # A server crash may lose the latest commits, never an earlier one alone:
                # if chunks are lost, so is the later `done` of their job, which is then
                # ingested again, and re-ingesting is idempotent.
                await conn.exec_driver_sql("SET LOCAL synchronous_commit TO OFF")
            renewed = await conn.execute(
                jobs.update()
                .where(jobs.c.id == job_id, jobs.c.lease_owner == owner)
                .values(lease_until=lease_until)
            )
            if not renewed.rowcount:
                return False
            short = [row for row in rows if len(row) == _SHORT]
            full = [row for row in rows if len(row) != _SHORT] if len(short) < len(rows) else []
            for form, records in ((True, short), (False, full)):
                if not records:
                    continue
                if self.dialect == "postgresql":
                    await _copy_results(conn, form, records)
                else:
                    await conn.exec_driver_sql(_insert_results_sql(form), records)
            if rows:
                batch_id = rows[0][_BATCH_ID]
                for hook in self.result_hooks:
                    await hook(conn, batch_id, rows)
            return True

    async def finalize(
        self, batch_id: str, owner: str, fill: Iterable[Row], now: float, *, cancelled: bool
    ) -> bool:
        """Close a batch in one transaction: give every request without a result the
        outcome its job implies, then write totals and the terminal status. In a batch
        the user `cancelled`, no cancelled request is retryable: they wanted it stopped."""
        async with self.engine.begin() as conn:
            for spec in fill:
                missing = (
                    sa.select(
                        requests.c.batch_id,
                        requests.c.custom_id,
                        requests.c.job_id,
                        sa.literal(spec["status"]).label("status"),
                        sa.literal(spec["error_code"]).label("error_code"),
                        sa.literal(spec["error_message"]).label("error_message"),
                        sa.literal(spec["retryable"]).label("retryable"),
                        sa.literal(now).label("created_at"),
                    )
                    .outerjoin(
                        results,
                        sa.and_(
                            results.c.batch_id == requests.c.batch_id,
                            results.c.custom_id == requests.c.custom_id,
                        ),
                    )
                    .where(requests.c.job_id == spec["job_id"], results.c.custom_id.is_(None))
                )
                await conn.execute(
                    results.insert().from_select(
                        [
                            "batch_id",
                            "custom_id",
                            "job_id",
                            "status",
                            "error_code",
                            "error_message",
                            "retryable",
                            "created_at",
                        ],
                        missing,
                    )
                )
            if cancelled:
                await conn.execute(
                    results.update()
                    .where(results.c.batch_id == batch_id, results.c.status == "cancelled")
                    .values(retryable=False)
                )
            totals = await self._totals(conn, batch_id)
            job_statuses = {
                r[0]
                for r in await conn.execute(
                    sa.select(jobs.c.status).where(jobs.c.batch_id == batch_id)
                )
            }
            status = batch_outcome(job_statuses, cancelled=cancelled)
            result = await conn.execute(
                batches.update()
                .where(batches.c.id == batch_id, batches.c.lease_owner == owner)
                .values(status=status, finished_at=now, **totals)
            )
            return bool(result.rowcount)

    async def _totals(self, conn: AsyncConnection, batch_id: str) -> Row:
        rows = (
            await conn.execute(
                sa.select(
                    results.c.status,
                    sa.func.count().label("n"),
                    sa.func.coalesce(sa.func.sum(results.c.input_tokens), 0),
                    sa.func.coalesce(sa.func.sum(results.c.output_tokens), 0),
                    sa.func.coalesce(sa.func.sum(results.c.cached_tokens), 0),
                    sa.func.coalesce(sa.func.sum(results.c.reasoning_tokens), 0),
                    sa.func.coalesce(sa.func.sum(results.c.cache_write_tokens), 0),
                    sa.func.coalesce(sa.func.sum(results.c.cost_input), 0.0),
                    sa.func.coalesce(sa.func.sum(results.c.cost_output), 0.0),
                )
                .where(results.c.batch_id == batch_id)
                .group_by(results.c.status)
            )
        ).all()
        totals: Row = dict.fromkeys(
            (
                "succeeded",
                "errored",
                "expired",
                "cancelled",
                "input_tokens",
                "output_tokens",
                "cached_tokens",
                "reasoning_tokens",
                "cache_write_tokens",
            ),
            0,
        )
        totals.update(cost_input=0.0, cost_output=0.0)
        for status, n, i, o, c, r, w, ci, co in rows:
            if status in ("succeeded", "errored", "expired", "cancelled"):
                totals[status] += int(n)
            totals["input_tokens"] += int(i)
            totals["output_tokens"] += int(o)
            totals["cached_tokens"] += int(c)
            totals["reasoning_tokens"] += int(r)
            totals["cache_write_tokens"] += int(w)
            totals["cost_input"] += float(ci)
            totals["cost_output"] += float(co)
        return totals

    async def iter_results(self, batch_id: str, *, chunk: int = 1000) -> AsyncIterator[list[Row]]:
        """Results with their request's job, in input order, chunk by chunk."""
        last = -1
        while rows := await self.results_after(batch_id, last, chunk):
            yield rows
            last = rows[-1]["seq"]

    async def results_after(self, batch_id: str, seq: int, limit: int) -> list[Row]:
        """Up to `limit` results with their request's provider and model, in input order,
        from the request after position `seq` (keyset paging: flat memory, stable pages)."""
        return await self._all(
            sa.select(requests.c.seq, jobs.c.provider, jobs.c.model, results)
            .join(
                results,
                sa.and_(
                    results.c.batch_id == requests.c.batch_id,
                    results.c.custom_id == requests.c.custom_id,
                ),
            )
            .join(jobs, jobs.c.id == requests.c.job_id)
            .where(requests.c.batch_id == batch_id, requests.c.seq > seq)
            .order_by(requests.c.seq)
            .limit(limit)
        )

    async def iter_result_rows(
        self, batch_id: str, columns: Sequence[str], *, chunk: int = 5000
    ) -> AsyncIterator[list[tuple[Any, ...]]]:
        """Results in input order as plain tuples of `columns` (of the results table, or
        `provider` and `model` of the request's job), chunk by chunk: for exports, which
        copy stored values out and need neither dicts nor every column. On SQLite a
        thread of its own reads a chunk ahead (`bulk_read`)."""
        path = sqlite_file(self.engine.url)
        if path is not None:
            async for rows in sqlite_result_rows(path, batch_id, columns, chunk):
                yield rows
            return
        wanted = [jobs.c[name] if name in JOB_COLUMNS else results.c[name] for name in columns]
        stmt = (
            sa.select(requests.c.seq, *wanted)
            .join(
                results,
                sa.and_(
                    results.c.batch_id == requests.c.batch_id,
                    results.c.custom_id == requests.c.custom_id,
                ),
            )
            .where(requests.c.batch_id == batch_id, requests.c.seq > sa.bindparam("after"))
            .order_by(requests.c.seq)
            .limit(chunk)
        )
        if set(columns) & set(JOB_COLUMNS):
            stmt = stmt.join(jobs, jobs.c.id == requests.c.job_id)
        after = -1
        while True:
            async with self.engine.connect() as conn:
                page = (await conn.execute(stmt, {"after": after})).all()
            if not page:
                return
            after = page[-1][0]
            yield [tuple(row[1:]) for row in page]
            if len(page) < chunk:
                return

    async def seq_of(self, batch_id: str, custom_id: str) -> int | None:
        """The input position of a request, or None when the batch has no such request."""
        row = await self._one(
            sa.select(requests.c.seq).where(
                requests.c.batch_id == batch_id, requests.c.custom_id == custom_id
            )
        )
        return None if row is None else int(row["seq"])


def batch_outcome(job_statuses: set[str], *, cancelled: bool) -> str:
    """The logical batch's terminal status from its jobs' outcomes.

    A user's cancel wins; `failed` only when every job failed; a job that ran out of
    time makes the batch `expired`; otherwise it `completed` (failed rows are per request).
    """
    if cancelled:
        return "cancelled"
    if job_statuses and job_statuses <= {"failed"}:
        return "failed"
    if "expired" in job_statuses:
        return "expired"
    return "completed"
