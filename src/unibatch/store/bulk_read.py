"""Reading many rows out of SQLite in bulk: a batch's results for exports, a job's
requests for its upload.

Through aiosqlite every step of a read (check out a connection, execute, fetch) waits for
the event loop to come round, and an export keeps the loop busy writing lines, so the
next chunk is not read until the lines of this one are out. Here one thread of its own
runs one query on a plain `sqlite3` connection and is always a chunk ahead: SQLite reads
with the GIL released while the caller puts lines together. One statement reads one snapshot
(WAL), so a worker writing meanwhile changes nothing of what is read.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncGenerator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from unibatch.codec import RESULT_COLUMNS

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

JOB_COLUMNS = ("provider", "model", "mode", "price")
# Columns read from the request's own row rather than its result.
REQUEST_COLUMNS = ("attempts",)


def result_rows_sql(columns: Sequence[str]) -> str:
    """The SELECT of `columns` (results' own, `REQUEST_COLUMNS` of the request, or
    `JOB_COLUMNS` of the job that answered) of a batch's results (`?`: the batch id), in
    input order."""
    names = []
    for name in columns:
        # Names only from these lists go into the SQL (a unit test checks RESULT_COLUMNS
        # against the table); no SQLAlchemy table here: `store.lite` reads without it.
        if name in REQUEST_COLUMNS:
            names.append(f"q.{name}")
            continue
        if name not in RESULT_COLUMNS and name not in JOB_COLUMNS:
            raise KeyError(name)
        names.append(f"{'j' if name in JOB_COLUMNS else 'r'}.{name}")
    join_jobs = " JOIN jobs j ON j.id = r.job_id" if set(columns) & set(JOB_COLUMNS) else ""
    return (
        f"SELECT {', '.join(names)} FROM requests q"
        " JOIN results r ON r.batch_id = q.batch_id AND r.custom_id = q.custom_id"
        f"{join_jobs} WHERE q.batch_id = ? ORDER BY q.seq"
    )


def sqlite_file(url: URL) -> str | None:
    """The file of a SQLite database URL that a second connection can open; None for an
    in-memory database or a URL with driver options."""
    if url.get_backend_name() != "sqlite" or url.query:
        return None
    if not url.database or url.database == ":memory:" or url.database.startswith("file:"):
        return None
    return url.database


# A job's requests in input order (by the index on job_id, seq), as `Store.job_requests`.
JOB_REQUESTS_SQL = "SELECT seq, custom_id, body FROM requests WHERE job_id = ? ORDER BY seq"


def sqlite_result_rows(
    path: str, batch_id: str, columns: Sequence[str], chunk: int
) -> AsyncGenerator[list[tuple[Any, ...]], None]:
    """A batch's results as `sqlite_rows` reads them (close it when done: `aclosing`)."""
    return sqlite_rows(path, result_rows_sql(columns), (batch_id,), chunk)


async def sqlite_rows(
    path: str, sql: str, params: tuple[Any, ...], chunk: int
) -> AsyncGenerator[list[tuple[Any, ...]], None]:
    """The rows of one query, `chunk` at a time, read a chunk ahead in a thread of their
    own, from one snapshot. Callers close it as soon as they stop (`aclosing`), not when
    it is collected: until then the read holds its snapshot."""
    loop = asyncio.get_running_loop()
    # One thread: the connection is made, used and closed there.
    with ThreadPoolExecutor(1, thread_name_prefix="unibatch-read-ahead") as thread:

        def open_cursor() -> tuple[sqlite3.Connection, sqlite3.Cursor]:
            conn = sqlite3.connect(path, timeout=30)
            # A read straight through needs no page cache: the store's 512 KiB, not 2 MB.
            conn.execute("PRAGMA cache_size=-512")
            return conn, conn.execute(sql, params)

        conn, cursor = await loop.run_in_executor(thread, open_cursor)
        try:
            ahead = loop.run_in_executor(thread, cursor.fetchmany, chunk)
            while rows := await ahead:
                ahead = loop.run_in_executor(thread, cursor.fetchmany, chunk)
                yield rows
        finally:

            def close() -> None:
                # The cursor first: a connection closed under an unfinished statement
                # stays open until that statement is collected, and holds its snapshot
                # (no checkpoint can pass it, and the log grows) until then.
                cursor.close()
                conn.close()

            # Queued behind a read still running, if the caller stopped early.
            await asyncio.shield(loop.run_in_executor(thread, close))
