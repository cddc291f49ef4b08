"""Named store operations. The engine never builds SQL itself; every state change is here.

Each method is one short transaction unless its name says otherwise. Claims take a
lease (owner + expiry) so any number of workers can share one database; on PostgreSQL
candidates are selected `FOR UPDATE SKIP LOCKED` so two workers never wait on each other.
"""

from __future__ import annotations

import functools
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Collection,
    Iterable,
    Mapping,
    Sequence,
)
from contextlib import aclosing
from typing import Any, NamedTuple, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from unibatch.codec import (
    RESULT_COLUMNS,
    SUCCESS_COLUMNS,
    SUCCESS_CONSTANTS,
    ResultRecord,
)
from unibatch.errors import NotEndedError
from unibatch.metrics.counters import INGESTED_ROWS, LEASE_TAKEOVERS
from unibatch.store.bulk_read import (
    JOB_COLUMNS,
    JOB_REQUESTS_SQL,
    REQUEST_COLUMNS,
    sqlite_file,
    sqlite_result_rows,
    sqlite_rows,
)
from unibatch.store.cache import CacheOps
from unibatch.store.deadlines import DeadlineOps
from unibatch.store.imports import IMPORTING, Imports
from unibatch.store.queue import QueueOps
from unibatch.store.realtime import RealtimeOps
from unibatch.store.records import BatchRecord, JobRecord
from unibatch.store.retries import (
    BATCH_ATTEMPT_SUMS,
    Chooser,
    FollowUp,
    RetryPlan,
    attempt_sums,
    attempt_sums_of,
    create_follow_up,
    history,
    plan_deadline,
    plan_failover,
    request_results,
    retryable_groups,
)
from unibatch.store.tables import batches, jobs, requests, results, webhook_deliveries
from unibatch.store.transitions import Transitions
from unibatch.store.webhooks import ENDED, RETRYING, WebhookOps, enqueue_event
from unibatch.types import TERMINAL_BATCH_STATUSES

Row = dict[str, Any]
T = TypeVar("T")
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


def _copy_form(short: bool) -> tuple[list[str], tuple[Any, ...]]:
    """PostgreSQL: the columns COPY writes straight into `results`, and what each record of
    the form gets appended (the short form's constants that are not NULL)."""
    if not short:
        return list(RESULT_COLUMNS), ()
    tail = {k: v for k, v in SUCCESS_CONSTANTS.items() if v is not None}
    return [*SUCCESS_COLUMNS, *tail], tuple(tail.values())


async def _copy_results(conn: AsyncConnection, short: bool, records: list[ResultRecord]) -> bool:
    """PostgreSQL: COPY the records straight into `results`. False when one of them is
    already stored (a re-run after a crash, or a provider repeating a row): COPY has no
    ON CONFLICT, so the whole COPY fails and the transaction must be rolled back; the
    caller then writes the chunk again with `_stage_results`. COPY straight into the table
    did the server's share of an ingest in about half the time of the staged
    INSERT ... ON CONFLICT (its speculative insertion per row, and every row written twice)."""
    from asyncpg.exceptions import UniqueViolationError

    driver = (await conn.get_raw_connection()).driver_connection
    assert driver is not None
    columns, tail = _copy_form(short)
    rows = [record + tail for record in records] if tail else records
    try:
        await driver.copy_records_to_table("results", records=rows, columns=columns)
    except UniqueViolationError:
        return False
    return True


async def _stage_results(conn: AsyncConnection, short: bool, records: list[ResultRecord]) -> None:
    """PostgreSQL: COPY the records into a session temp table, then insert what is new.
    The temp table has no constraints, the columns left out of the short form stay NULL
    there and are filled in as literals."""
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


# The status of `progress` rows that sum the attempts replaced by retries (no count).
RETRIED = "retried"


def _retried_rows(sums: dict[str, Row]) -> list[Row]:
    return [
        {"batch_id": batch_id, "job_id": None, "status": RETRIED, "n": 0, **values}
        for batch_id, values in sums.items()
    ]


class BatchState(NamedTuple):
    """Everything a batch's view is made of: its row, its jobs and, until it has finished
    (when its totals are written), `progress` over the results landed so far."""

    record: BatchRecord
    jobs: list[JobRecord]
    progress: list[Row]


# The statements of `batch_state`, built once: building and keying a statement anew
# for every read cost about as much as SQLite running it.
_BATCH = sa.select(batches).where(batches.c.id == sa.bindparam("batch_id"))
_BATCH_IMPORTED = _BATCH.where(batches.c.status != IMPORTING)
_JOBS = sa.select(jobs).where(jobs.c.batch_id == sa.bindparam("batch_id")).order_by(jobs.c.id)
_PROGRESS = _progress_query(results.c.batch_id == sa.bindparam("batch_id"), results.c.job_id)


def batch_state(conn: sa.Connection, batch_id: str, *, importing: bool) -> BatchState | None:
    """The batch's state (None: no such batch; one still being imported only with
    `importing`), read in one transaction: a synchronous function for `Store.read`."""
    row = conn.execute(_BATCH if importing else _BATCH_IMPORTED, {"batch_id": batch_id}).first()
    return None if row is None else state_of(conn, row._asdict())


def state_of(conn: sa.Connection, row: Mapping[str, Any]) -> BatchState:
    """The state of the batch whose row (every column of `batches`) is `row`: its jobs
    and progress are read on `conn`."""
    record = BatchRecord.from_row(row)
    key = {"batch_id": record.id}
    job_rows = conn.execute(_JOBS, key).mappings()
    job_records = [JobRecord.from_row(dict(r)) for r in job_rows]
    progress: list[Row] = []
    if not record.status.terminal:
        progress = [dict(r) for r in conn.execute(_PROGRESS, key).mappings()]
        sums = conn.execute(BATCH_ATTEMPT_SUMS, key)
        progress += _retried_rows(attempt_sums_of(sums))
    return BatchState(record, job_records, progress)


class Store(DeadlineOps, QueueOps, RealtimeOps, WebhookOps, Transitions, Imports, CacheOps):
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

    async def read(self, fn: Callable[[sa.Connection], T]) -> T:
        """`fn(conn)`: the statements of one read, run in one call, in one transaction.
        On a SQLite file they run in a thread of their own (`unibatch.store.snapshot`):
        one hop instead of several per statement through aiosqlite."""
        reader = getattr(self.engine, "reader", None)
        if reader is not None:
            result: T = await reader(fn)
            return result
        async with self.engine.connect() as conn:
            return await conn.run_sync(fn)

    async def _one(self, stmt: sa.Executable) -> Row | None:
        def one(conn: sa.Connection) -> Row | None:
            row = conn.execute(stmt).mappings().first()
            return dict(row) if row else None

        return await self.read(one)

    async def _all(self, stmt: sa.Executable) -> list[Row]:
        return await self.read(lambda conn: [dict(r) for r in conn.execute(stmt).mappings()])

    async def batch_state(self, batch_id: str, *, importing: bool = False) -> BatchState | None:
        return await self.read(lambda conn: batch_state(conn, batch_id, importing=importing))

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
        """Per-job, per-status counts and sums over the results landed so far, and a row of
        status `RETRIED` with the sums of the attempts that were replaced."""
        async with self.engine.connect() as conn:
            stmt = _progress_query(results.c.batch_id == batch_id, results.c.job_id)
            rows = [dict(r) for r in (await conn.execute(stmt)).mappings()]
            return rows + _retried_rows(await attempt_sums(conn, [batch_id]))

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
                progress += _retried_rows(await attempt_sums(conn, running))
        return records, job_records, progress

    async def request_cancel(self, batch_id: str, now: float, *, reason: Row | None = None) -> bool:
        """Mark a batch for cancellation. Jobs not yet sent end at once; sent ones are
        woken so a worker cancels them at the provider. False if already terminal (or,
        with `reason`, an error entry kept with the batch, if already cancelling)."""
        async with self.engine.begin() as conn:
            live = [batches.c.id == batch_id, batches.c.status.not_in(_TERMINAL)]
            values: Row = {
                "cancel_requested": True,
                "cancel_requested_at": sa.func.coalesce(batches.c.cancel_requested_at, now),
            }
            if reason is not None:
                errors = (
                    await conn.execute(
                        sa.select(batches.c.errors).where(*live, ~batches.c.cancel_requested)
                    )
                ).scalar()
                if errors is None:
                    return False
                values["errors"] = [*errors, reason]
                live.append(~batches.c.cancel_requested)
            updated = await conn.execute(batches.update().where(*live).values(**values))
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
                sa.select(table.c.id, table.c.lease_owner)
                .where(where, _lease_free(table, now))
                .order_by(order)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
            found = (await conn.execute(candidates)).all()
            if not found:
                return []
            ids = [r[0] for r in found]
            # A step ends by clearing its lease: one still named here ran out on its holder.
            lapsed = {r[0] for r in found if r[1] is not None and r[1] != owner}
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
            claimed = [dict(r) for r in rows.mappings()]
        taken = sum(1 for row in claimed if row["id"] in lapsed)
        if taken:
            LEASE_TAKEOVERS.labels("job" if table is jobs else "batch").inc(taken)
        return claimed

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
                sa.select(
                    batches.c.id,
                    batches.c.cancel_requested,
                    batches.c.max_age,
                    batches.c.stuck_after,
                    batches.c.deadline,
                    batches.c.deadline_switched_at,
                ).where(batches.c.id.in_({row["batch_id"] for row in rows}))
            )
            by_batch = {flag["id"]: flag for flag in flags}
            for row in rows:
                flag = by_batch.get(row["batch_id"])
                if flag is not None:
                    row["batch_cancel_requested"] = bool(flag["cancel_requested"])
                    row["batch_max_age"] = flag["max_age"]
                    row["batch_stuck_after"] = flag["stuck_after"]
                    row["batch_deadline"] = flag["deadline"]
                    row["batch_switched_at"] = flag["deadline_switched_at"]
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
        """When the earliest job, handler retry or webhook delivery can be claimed (for an
        idle worker's sleep); a leased one not before its lease ends, or a worker would
        wake at once again and again while another step runs past its due time."""
        job_q = sa.select(sa.func.min(_claimable_at(jobs))).where(jobs.c.phase != "done")
        batch_q = sa.select(sa.func.min(_claimable_at(batches))).where(
            batches.c.handler_state == "pending"
        )
        hook_q = sa.select(sa.func.min(_claimable_at(webhook_deliveries))).where(
            webhook_deliveries.c.state == "pending"
        )
        if batch_id is not None:
            job_q = job_q.where(jobs.c.batch_id == batch_id)
            batch_q = batch_q.where(batches.c.id == batch_id)
            hook_q = hook_q.where(webhook_deliveries.c.batch_id == batch_id)
        async with self.engine.connect() as conn:
            values = [(await conn.execute(q)).scalar() for q in (job_q, batch_q, hook_q)]
        present = [v for v in values if v is not None]
        return min(present) if present else None

    # -- requests and results --------------------------------------------------------

    async def job_requests(self, job_id: str, chunk: int) -> AsyncIterator[list[Any]]:
        """A job's requests in input order, chunk by chunk (flat memory): rows of (seq,
        custom_id, body), the body packed as stored. On SQLite a thread of its own reads
        a chunk ahead, from one snapshot (`bulk_read`): through aiosqlite and SQLAlchemy a
        50,000-request upload spent about 0.1 s more reading its rows, on the event loop
        that puts the upload's lines together."""
        path = sqlite_file(self.engine.url)
        if path is not None:
            async with aclosing(sqlite_rows(path, JOB_REQUESTS_SQL, (job_id,), chunk)) as read:
                async for rows in read:
                    yield rows
            return
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
        if self.dialect == "postgresql":
            # First straight COPY; if a row was already there, the chunk again, staged.
            written = await self._write_results(rows, job_id, owner, lease_until, staged=False)
            if written:
                INGESTED_ROWS.inc(len(rows))
            if written is not None:
                return written
        written = await self._write_results(rows, job_id, owner, lease_until, staged=True)
        assert written is not None
        if written:
            INGESTED_ROWS.inc(len(rows))
        return written

    async def _write_results(
        self, rows: list[ResultRecord], job_id: str, owner: str, lease_until: float, *, staged: bool
    ) -> bool | None:
        """One transaction of `insert_results`; None when a straight COPY (not `staged`)
        met a row already stored and nothing was written."""
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
                if self.dialect != "postgresql":
                    await conn.exec_driver_sql(_insert_results_sql(form), records)
                elif staged:
                    await _stage_results(conn, form, records)
                elif not await _copy_results(conn, form, records):
                    await conn.rollback()
                    return None
            if rows:
                batch_id = rows[0][_BATCH_ID]
                for hook in self.result_hooks:
                    await hook(conn, batch_id, rows)
            return True

    async def finalize(
        self,
        batch_id: str,
        owner: str,
        fill: Iterable[Row],
        now: float,
        *,
        cancelled: bool,
        retries: RetryPlan | None = None,
        failover: Chooser | None = None,
        deadline: Chooser | None = None,
    ) -> str | None:
        """Close a batch in one transaction: give every request without a result the
        outcome its job implies, then either send the retryable failures again (with
        `retries`, in follow-up jobs: "retrying") or write totals and the terminal status
        ("finalized"). None when the lease was lost (nothing written). In a batch the user
        `cancelled`, no cancelled request is retryable: they wanted it stopped. With
        `failover`, the unfinished requests of failed jobs move to a fallback model first
        (also "retrying": the batch goes on with them). With `deadline` (a batch past its
        deadline's switch-over), the requests its cancelled Batch API jobs left unrun move
        to real-time follow-up jobs on their own model."""
        async with self.engine.begin() as conn:
            held = await conn.execute(
                sa.select(batches.c.id)
                .where(batches.c.id == batch_id, batches.c.lease_owner == owner)
                .with_for_update()
            )
            if held.first() is None:
                return None
            for spec in fill:
                await _fill_missing(conn, spec, now)
            # One scan of the results for the totals, read first: with every request
            # succeeded, no round has anything to move (failover, deadline and retries
            # take unsucceeded requests only) and their queries are not run.
            sums = await self._status_sums(conn, batch_id)
            unsucceeded = sum(int(row[1]) for row in sums if row[0] != "succeeded")
            if cancelled:
                # Changes no count or sum of the totals.
                await conn.execute(
                    results.update()
                    .where(results.c.batch_id == batch_id, results.c.status == "cancelled")
                    .values(retryable=False)
                )
            elif unsucceeded and await _plan_round(conn, batch_id, retries, failover, deadline):
                await conn.execute(
                    batches.update()
                    .where(batches.c.id == batch_id)
                    .values(lease_owner=None, lease_until=None)
                )
                await enqueue_event(conn, batch_id, RETRYING, now)
                return "retrying"
            # Nothing moved: the sums read above are the batch's.
            totals = await self._totals(conn, batch_id, sums)
            # The jobs that hold requests now: a job whose requests all went to follow-up
            # jobs (expired, say) no longer decides how the batch ended.
            holding = sa.select(requests.c.job_id).where(requests.c.job_id == jobs.c.id).exists()
            job_statuses = {
                r[0]
                for r in await conn.execute(
                    sa.select(jobs.c.status).where(jobs.c.batch_id == batch_id, holding)
                )
            }
            status = batch_outcome(job_statuses, cancelled=cancelled)
            result = await conn.execute(
                batches.update()
                .where(batches.c.id == batch_id, batches.c.lease_owner == owner)
                .values(status=status, finished_at=now, **totals)
            )
            if not result.rowcount:
                return None
            await enqueue_event(conn, batch_id, ENDED[status], now)
            return "finalized"

    async def spend(self, batch_id: str) -> Row | None:
        """A capped batch's spend so far: `max_cost`, `estimated_cost`, `request_total`,
        `finished` (requests with a result) and `cost` (every attempt billed); None for a
        batch without a cap, or one that has ended or is being cancelled."""
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    sa.select(
                        batches.c.max_cost, batches.c.estimated_cost, batches.c.request_total
                    ).where(
                        batches.c.id == batch_id,
                        batches.c.max_cost.is_not(None),
                        batches.c.status.not_in(_TERMINAL),
                        ~batches.c.cancel_requested,
                    )
                )
            ).first()
            if row is None:
                return None
            totals = await self._totals(conn, batch_id)
        finished = sum(totals[s] for s in ("succeeded", "errored", "expired", "cancelled"))
        return {
            **row._mapping,
            "finished": finished,
            "cost": totals["cost_input"] + totals["cost_output"],
        }

    async def _status_sums(self, conn: AsyncConnection, batch_id: str) -> list[Any]:
        """Per result status of the batch: the count, then the sums of tokens and cost."""
        return list(
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
        )

    async def _totals(
        self, conn: AsyncConnection, batch_id: str, sums: list[Any] | None = None
    ) -> Row:
        """The batch's totals: its results' (`sums`, read again when not given) plus every
        attempt retries replaced."""
        rows = sums if sums is not None else await self._status_sums(conn, batch_id)
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
            totals["cost_input"] += float(ci or 0.0)
            totals["cost_output"] += float(co or 0.0)
        for key, value in (await attempt_sums(conn, [batch_id])).get(batch_id, {}).items():
            totals[key] += value
        return totals

    async def iter_results(self, batch_id: str, *, chunk: int = 1000) -> AsyncIterator[list[Row]]:
        """Results with their request's job, in input order, chunk by chunk."""
        last = -1
        while rows := await self.results_after(batch_id, last, chunk):
            yield rows
            last = rows[-1]["seq"]

    async def results_after(self, batch_id: str, seq: int, limit: int) -> list[Row]:
        """Up to `limit` results with the provider, model and mode of the job that answered,
        in input order,
        from the request after position `seq` (keyset paging: flat memory, stable pages)."""
        return await self._all(
            sa.select(
                requests.c.seq,
                requests.c.attempts,
                jobs.c.provider,
                jobs.c.model,
                jobs.c.mode,
                jobs.c.price,
                results,
            )
            .select_from(request_results())
            .join(jobs, jobs.c.id == results.c.job_id)
            .where(requests.c.batch_id == batch_id, requests.c.seq > seq)
            .order_by(requests.c.seq)
            .limit(limit)
        )

    async def iter_result_rows(
        self, batch_id: str, columns: Sequence[str], *, chunk: int = 5000
    ) -> AsyncIterator[list[tuple[Any, ...]]]:
        """Results in input order as plain tuples of `columns` (of the results table, or
        `JOB_COLUMNS` of the job that answered), chunk by chunk: for exports, which
        copy stored values out and need neither dicts nor every column. On SQLite a
        thread of its own reads a chunk ahead (`bulk_read`)."""
        path = sqlite_file(self.engine.url)
        if path is not None:
            async with aclosing(sqlite_result_rows(path, batch_id, columns, chunk)) as read:
                async for rows in read:
                    yield rows
            return
        wanted = [
            jobs.c[name]
            if name in JOB_COLUMNS
            else requests.c[name]
            if name in REQUEST_COLUMNS
            else results.c[name]
            for name in columns
        ]
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
            stmt = stmt.join(jobs, jobs.c.id == results.c.job_id)
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

    async def retry_candidates(
        self, batch_id: str, statuses: Sequence[str], *, chunk: int = 2000
    ) -> AsyncIterator[list[Row]]:
        """The requests whose result has one of `statuses`, with their body, attempts and
        the provider, model and endpoint of the job that ran them, in input order, chunk
        by chunk."""
        last = -1
        while True:
            rows = await self._all(
                sa.select(
                    requests.c.seq,
                    requests.c.custom_id,
                    requests.c.body,
                    requests.c.attempts,
                    jobs.c.provider,
                    jobs.c.model,
                    jobs.c.endpoint,
                )
                .select_from(request_results())
                .join(jobs, jobs.c.id == requests.c.job_id)
                .where(
                    requests.c.batch_id == batch_id,
                    requests.c.seq > last,
                    results.c.status.in_(list(statuses)),
                )
                .order_by(requests.c.seq)
                .limit(chunk)
            )
            if not rows:
                return
            yield rows
            last = rows[-1]["seq"]

    async def reopen(self, batch_id: str, follow_ups: Sequence[FollowUp], *, now: float) -> int:
        """Put an ended batch back to work with `follow_ups` (a manual retry), in one
        transaction; how many requests they took. Raises `InputError` if the batch is no
        longer ended (retried meanwhile by someone else)."""
        async with self.engine.begin() as conn:
            reopened = await conn.execute(
                batches.update()
                .where(batches.c.id == batch_id, batches.c.status.in_(_TERMINAL))
                .values(
                    status="pending",
                    finished_at=None,
                    cancel_requested=False,
                    cancel_requested_at=None,
                    handler_state="none",
                    handler_attempts=0,
                    handler_error=None,
                    next_run_at=None,
                    lease_owner=None,
                    lease_until=None,
                )
            )
            if not reopened.rowcount:
                raise NotEndedError(f"batch {batch_id} is not ended any more: it is being retried")
            moved = 0
            for follow in follow_ups:
                moved += await create_follow_up(conn, batch_id, follow)
            await enqueue_event(conn, batch_id, RETRYING, now)
            return moved

    async def history(self, batch_id: str, custom_ids: Sequence[str]) -> dict[str, list[Row]]:
        """The earlier attempts of these requests (of those sent more than once), oldest
        first, with the provider and model of each."""
        async with self.engine.connect() as conn:
            return await history(conn, batch_id, custom_ids)

    async def seq_of(self, batch_id: str, custom_id: str) -> int | None:
        """The input position of a request, or None when the batch has no such request."""
        row = await self._one(
            sa.select(requests.c.seq).where(
                requests.c.batch_id == batch_id, requests.c.custom_id == custom_id
            )
        )
        return None if row is None else int(row["seq"])


async def _fill_missing(conn: AsyncConnection, spec: Row, now: float) -> None:
    """Give the requests of `spec["job_id"]` that have no result the outcome in `spec`."""
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
    columns = [
        "batch_id",
        "custom_id",
        "job_id",
        "status",
        "error_code",
        "error_message",
        "retryable",
        "created_at",
    ]
    await conn.execute(results.insert().from_select(columns, missing))


async def _plan_round(
    conn: AsyncConnection,
    batch_id: str,
    retries: RetryPlan | None,
    failover: Chooser | None,
    deadline: Chooser | None,
) -> int:
    """The follow-up jobs of a round that ended: failover before retries, so a failed
    job's requests go to their fallback rather than back to the model that failed; the
    requests a deadline's cancel left unrun before retries too, so they are not sent
    back to the Batch API."""
    moved = 0
    if failover is not None:
        moved += await plan_failover(conn, batch_id, failover)
    if deadline is not None:
        moved += await plan_deadline(conn, batch_id, deadline)
    if retries is not None:
        moved += await _plan_retries(conn, batch_id, retries)
    return moved


async def _plan_retries(conn: AsyncConnection, batch_id: str, plan: RetryPlan) -> int:
    """Create a follow-up job per job with retryable failures left; how many requests
    they took."""
    moved = 0
    for job, count, attempts_so_far in await retryable_groups(conn, batch_id, plan.max_attempts):
        follow = FollowUp(
            job_id=plan.new_job_id(),
            provider=job["provider"],
            model=job["model"],
            endpoint=job["endpoint"],
            mode=plan.mode or job["mode"],
            next_run_at=plan.now + plan.delay(attempts_so_far + 1),
            source_job=job["id"],
            max_attempts=plan.max_attempts,
            # Estimated from the job's own size; it is informational.
            byte_count=job["byte_count"] * count // max(job["request_count"], 1),
        )
        moved += await create_follow_up(conn, batch_id, follow)
    return moved


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
