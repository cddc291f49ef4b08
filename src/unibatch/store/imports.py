"""Importing a batch in committed chunks, invisible until it is complete.

A batch of a million requests must not hold SQLite's write lock (or one PostgreSQL
transaction) for the minutes its import takes, so its requests are written one committed
chunk at a time into a batch row whose status is `validating`. Every engine read (get,
list, status, results) and every claim skips such a batch, so nothing sees a half import
or runs it. The last transaction adds the jobs and makes the batch `pending` at once.

The importer holds the batch's lease (`lease_owner`, `lease_until`) and renews it with
every chunk: each chunk is written only while the lease is still its own. An import whose
lease ran out (its process died) is taken over by a sweep (`take_over_import`), which
deletes its requests and leaves the batch `failed`, saying why. A live import is never
taken over: its lease is current.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from unibatch.errors import UnibatchError
from unibatch.store.cache import CacheCopy, copy_answers
from unibatch.store.tables import batches, jobs, requests, results
from unibatch.store.webhooks import ENDED, enqueue_event
from unibatch.types import BatchStatus

Row = dict[str, Any]
# The stored status of a batch whose import has not finished.
IMPORTING = BatchStatus.VALIDATING.value
# The columns of a chunk's rows (tuples, as the reader makes them), in order.
REQUEST_COLUMNS = ("batch_id", "seq", "custom_id", "job_id", "body", "cache_key", "cache_hash")
_INSERT_REQUESTS = (
    f"INSERT INTO requests ({', '.join(REQUEST_COLUMNS)})"
    f" VALUES ({', '.join('?' * len(REQUEST_COLUMNS))})"
)
# Rows per INSERT on SQLite. The driver binds a statement's parameters and steps it with
# the interpreter's lock handed back and forth around each step: with a row a statement,
# that is 100,000 hand-overs per 100,000 requests, while the import's reading thread wants
# the lock too. With 128 rows a statement `submit` takes ~0.15 s less CPU per 100k
# (bench/wait.py); 128 x 7 parameters stay under 999, the bound-variable limit of SQLite
# before 3.32.
_ROWS_PER_INSERT = 128
_INSERT_MANY = _INSERT_REQUESTS + (
    f", ({', '.join('?' * len(REQUEST_COLUMNS))})" * (_ROWS_PER_INSERT - 1)
)
# Requests deleted per transaction when an import is undone.
_DELETE_CHUNK = 20_000


class ImportLostError(UnibatchError):
    """The batch being imported was taken over (its lease ran out: the importer stalled
    for longer than the lease) and has been failed; nothing more is written to it."""


def _importing(batch_id: str, owner: str) -> sa.ColumnElement[bool]:
    return sa.and_(
        batches.c.id == batch_id, batches.c.status == IMPORTING, batches.c.lease_owner == owner
    )


class Imports:
    """Mixed into `Store`: the named operations of a chunked import."""

    engine: AsyncEngine

    @staticmethod
    async def insert_import(conn: AsyncConnection, batch: Row) -> None:
        """Insert the batch row of an import (status `validating`, leased to the importer)
        inside the caller's transaction, so a front end can record its own rows with it."""
        assert batch["status"] == IMPORTING and batch["lease_owner"]
        await conn.execute(batches.insert(), batch)

    async def start_import(self, batch: Row) -> None:
        async with self.engine.begin() as conn:
            await self.insert_import(conn, batch)

    async def import_chunk(
        self,
        batch_id: str,
        owner: str,
        chunk: list[tuple[Any, ...]],
        *,
        lease_until: float,
        duplicate: Callable[[tuple[Any, ...]], Exception],
        copies: Sequence[CacheCopy] = (),
        now: float = 0.0,
    ) -> None:
        """Store one chunk of requests (tuples of `REQUEST_COLUMNS`; one transaction) and
        renew the import's lease. `copies` are the chunk's requests answered from the
        result cache: their results are written in the same transaction (at `now`).

        Duplicate custom_ids, within the chunk or with an earlier one, are caught by the
        table's unique constraint rather than a set in memory; `duplicate(row)` builds the
        error for the first repeated row. Raises `ImportLostError` if the lease is lost."""
        async with self.engine.begin() as conn:
            await self._hold(conn, batch_id, owner, lease_until)
            try:
                async with conn.begin_nested():
                    if self.engine.dialect.name == "sqlite":
                        # Straight to the driver, the rows as they are: SQLAlchemy's per-row
                        # parameter handling was a fifth of a SQLite import (bench/wait.py).
                        await _insert_sqlite(conn, chunk)
                    else:
                        rows = [dict(zip(REQUEST_COLUMNS, row, strict=True)) for row in chunk]
                        await conn.execute(requests.insert(), rows)
            except sa.exc.IntegrityError:
                raise duplicate(await _first_repeat(conn, chunk)) from None
            if copies:
                await copy_answers(conn, batch_id, copies, now)

    async def renew_import(self, batch_id: str, owner: str, *, lease_until: float) -> bool:
        async with self.engine.begin() as conn:
            held = await conn.execute(
                batches.update().where(_importing(batch_id, owner)).values(lease_until=lease_until)
            )
            return bool(held.rowcount)

    async def finish_import(
        self,
        batch_id: str,
        owner: str,
        job_rows: Sequence[Row],
        *,
        endpoint: str,
        now: float,
        estimated_cost: float | None = None,
    ) -> None:
        """Add the jobs and make the batch `pending`, in one transaction: from here on
        workers run it. A cancel asked for during the import ends its jobs at once."""
        async with self.engine.begin() as conn:
            done = await conn.execute(
                batches.update()
                .where(_importing(batch_id, owner))
                .values(
                    status=BatchStatus.PENDING.value,
                    lease_owner=None,
                    lease_until=None,
                    request_total=sum(r["request_count"] for r in job_rows),
                    endpoint=job_rows[0]["endpoint"] if job_rows else endpoint,
                    estimated_cost=estimated_cost,
                )
                .returning(batches.c.cancel_requested)
            )
            cancelled = done.scalar()
            if cancelled is None:
                raise ImportLostError(f"batch {batch_id}: the import was taken over")
            if job_rows:
                await conn.execute(jobs.insert(), list(job_rows))
            if cancelled:
                await conn.execute(
                    jobs.update()
                    .where(jobs.c.batch_id == batch_id)
                    .values(phase="done", status="cancelled", finished_at=now, next_run_at=None)
                )

    async def abort_import(
        self, batch_id: str, owner: str, *, errors: list[Row] | None, now: float
    ) -> bool:
        """Undo an import: delete its requests (a slice per transaction, so undoing a
        large import does not hold the write lock either), then delete the batch, or
        with `errors` keep it as `failed` with them (what a front end shows its caller).
        False when another process took the import over first (it finishes the undo)."""
        while True:
            async with self.engine.begin() as conn:
                if not await self._still_held(conn, batch_id, owner):
                    return False
                # Answers the result cache copied, before the requests they answer.
                await conn.execute(
                    results.delete().where(
                        results.c.batch_id == batch_id,
                        results.c.custom_id.in_(
                            sa.select(results.c.custom_id)
                            .where(results.c.batch_id == batch_id)
                            .limit(_DELETE_CHUNK)
                            .scalar_subquery()
                        ),
                    )
                )
                some = (
                    sa.select(requests.c.seq)
                    .where(requests.c.batch_id == batch_id)
                    .order_by(requests.c.seq)
                    .limit(_DELETE_CHUNK)
                    .scalar_subquery()
                )
                gone = await conn.execute(
                    requests.delete().where(
                        requests.c.batch_id == batch_id, requests.c.seq.in_(some)
                    )
                )
                if not gone.rowcount:
                    break
        async with self.engine.begin() as conn:
            where = _importing(batch_id, owner)
            if errors is None:
                result = await conn.execute(batches.delete().where(where))
            else:
                result = await conn.execute(
                    batches.update()
                    .where(where)
                    .values(
                        status=BatchStatus.FAILED.value,
                        errors=errors,
                        finished_at=now,
                        request_total=0,
                        lease_owner=None,
                        lease_until=None,
                    )
                )
                if result.rowcount:
                    await enqueue_event(conn, batch_id, ENDED["failed"], now)
            return bool(result.rowcount)

    # -- imports whose process died ----------------------------------------------------

    async def stale_imports(self, now: float, *, limit: int = 100) -> list[str]:
        """Batches still importing whose importer has not renewed its lease in time."""
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                sa.select(batches.c.id)
                .where(batches.c.status == IMPORTING, batches.c.lease_until < now)
                .order_by(batches.c.created_at)
                .limit(limit)
            )
            return [r[0] for r in rows]

    async def take_over_import(
        self, batch_id: str, owner: str, *, now: float, lease_until: float
    ) -> bool:
        """Take over an import whose lease ran out (to undo it); False if it is live."""
        async with self.engine.begin() as conn:
            taken = await conn.execute(
                batches.update()
                .where(
                    batches.c.id == batch_id,
                    batches.c.status == IMPORTING,
                    batches.c.lease_until < now,
                )
                .values(lease_owner=owner, lease_until=lease_until)
            )
            return bool(taken.rowcount)

    # -- helpers -----------------------------------------------------------------------

    @staticmethod
    async def _still_held(conn: AsyncConnection, batch_id: str, owner: str) -> bool:
        found = await conn.execute(sa.select(batches.c.id).where(_importing(batch_id, owner)))
        return found.first() is not None

    @staticmethod
    async def _hold(conn: AsyncConnection, batch_id: str, owner: str, lease_until: float) -> None:
        held = await conn.execute(
            batches.update().where(_importing(batch_id, owner)).values(lease_until=lease_until)
        )
        if not held.rowcount:
            raise ImportLostError(
                f"batch {batch_id}: the import stalled past its lease and was taken over"
            )


async def _insert_sqlite(conn: AsyncConnection, chunk: list[tuple[Any, ...]]) -> None:
    """Insert request rows on SQLite, `_ROWS_PER_INSERT` to a statement, the rest one by one."""
    whole = len(chunk) - len(chunk) % _ROWS_PER_INSERT
    if whole:
        flat = itertools.chain.from_iterable
        groups = [
            tuple(flat(chunk[start : start + _ROWS_PER_INSERT]))
            for start in range(0, whole, _ROWS_PER_INSERT)
        ]
        await conn.exec_driver_sql(_INSERT_MANY, groups)
    if whole < len(chunk):
        await conn.exec_driver_sql(_INSERT_REQUESTS, chunk[whole:])


async def _first_repeat(conn: AsyncConnection, chunk: list[tuple[Any, ...]]) -> tuple[Any, ...]:
    """The first row of a refused chunk whose custom_id an earlier chunk already had."""
    ids = [row[2] for row in chunk]
    stored = {
        r[0]
        for r in await conn.execute(
            sa.select(requests.c.custom_id).where(
                requests.c.batch_id == chunk[0][0], requests.c.custom_id.in_(ids)
            )
        )
    }
    return next(row for row in chunk if row[2] in stored)
