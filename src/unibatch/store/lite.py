"""Reading a SQLite store with the standard library's `sqlite3`, for the commands that
only read it (`unibatch status`, `list`, `results`).

Importing SQLAlchemy alone takes about 0.2 s of CPU, more than the whole of `status`
may take (bench/startup.py). A reader opens an existing database that is at the newest
schema, or nothing: a missing file, another schema version, a URL with options or a
PostgreSQL one is left to `open_store`, which creates, upgrades and reports. Its
queries are those of `Store.get_batch`, `list_batches`, `jobs_of` and `progress`, in SQL;
tests/unit/test_lite_reader.py checks both give the same records.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import aclosing
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson

from unibatch.store.records import BatchRecord, JobRecord

Row = dict[str, Any]
_MIGRATIONS = Path(__file__).parent / "migrations"
_SQLITE = "sqlite:///"
# The JSON columns of batches and jobs (SQLAlchemy's JSON type stores text).
_JSON = ("metadata", "errors", "fallback_models")
# `validating` while being imported: hidden as `Store.get_batch` hides it.
_BATCH = "SELECT * FROM batches WHERE id = ? AND status != 'validating'"
_JOBS = "SELECT * FROM jobs WHERE batch_id = ? ORDER BY id"
# Newest first, as `Store.list_batches`; `{}` takes the status filter.
_LIST = (
    "SELECT * FROM batches WHERE status != 'validating'{} ORDER BY created_at DESC, id DESC LIMIT ?"
)
_PROGRESS = (
    "SELECT job_id, status, count(*) AS n,"
    " coalesce(sum(input_tokens), 0) AS input_tokens,"
    " coalesce(sum(output_tokens), 0) AS output_tokens,"
    " coalesce(sum(cached_tokens), 0) AS cached_tokens,"
    " coalesce(sum(reasoning_tokens), 0) AS reasoning_tokens,"
    " coalesce(sum(cache_write_tokens), 0) AS cache_write_tokens,"
    " coalesce(sum(cost_input), 0.0) AS cost_input,"
    " coalesce(sum(cost_output), 0.0) AS cost_output"
    " FROM results WHERE batch_id = ? GROUP BY job_id, status"
)
# The sums of the attempts retries replaced, as `Store.progress` adds them (status RETRIED).
_RETRIED = (
    "SELECT NULL AS job_id, 'retried' AS status, 0 AS n,"
    " sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens,"
    " sum(cached_tokens) AS cached_tokens, sum(reasoning_tokens) AS reasoning_tokens,"
    " sum(cache_write_tokens) AS cache_write_tokens, sum(cost_input) AS cost_input,"
    " sum(cost_output) AS cost_output FROM attempts WHERE batch_id = ? HAVING count(*) > 0"
)
_HISTORY = (
    "SELECT a.*, j.provider, j.model FROM attempts a LEFT JOIN jobs j ON j.id = a.job_id"
    " WHERE a.batch_id = ? AND a.custom_id IN ({}) ORDER BY a.custom_id, a.attempt"
)


def head_revision() -> str:
    """The newest migration's revision: each is named after its file's number
    (`0008_idempotency_keys.py` is revision "0008", a unit test checks it)."""
    return max(p.name[:4] for p in (_MIGRATIONS / "versions").glob("[0-9][0-9][0-9][0-9]_*.py"))


def sqlite_path(url: str) -> str | None:
    """The file of a plain `sqlite:///PATH` URL; None for anything else (another
    database, a driver, options, in-memory or an escaped path: `open_store` reads those)."""
    if not url.startswith(_SQLITE):
        return None
    path = url[len(_SQLITE) :]
    if not path or path == ":memory:" or path.startswith("file:") or any(c in path for c in "?%#"):
        return None
    return path


def _dict_row(cursor: sqlite3.Cursor, row: tuple[Any, ...]) -> Row:
    return {d[0]: v for d, v in zip(cursor.description, row, strict=True)}


def _decoded(row: Row) -> Row:
    for name in _JSON:
        if isinstance(row.get(name), str):
            row[name] = orjson.loads(row[name])
    return row


class Reader:
    """An open SQLite store, read only, at the newest schema."""

    def __init__(self, conn: sqlite3.Connection, path: str) -> None:
        self.conn = conn
        self.path = path

    @classmethod
    def open(cls, url: str) -> Reader | None:
        """A reader of the store at `url`, or None where `open_store` must do it."""
        path = sqlite_path(url)
        if path is None or not Path(path).is_file():
            return None
        # mode=rw: never creates the file; reads under WAL still need the -shm written.
        conn = sqlite3.connect(
            f"file:{quote(path)}?mode=rw", uri=True, timeout=30, isolation_level=None
        )
        try:
            rows = conn.execute("SELECT version_num FROM alembic_version").fetchall()
        except sqlite3.Error:
            conn.close()
            return None
        if [row[0] for row in rows] != [head_revision()]:
            conn.close()
            return None
        conn.row_factory = _dict_row
        return cls(conn, path)

    def close(self) -> None:
        self.conn.close()

    def batch_state(self, batch_id: str) -> tuple[BatchRecord, list[JobRecord], list[Row]] | None:
        """What `engine.views.batch_view` reads, in one snapshot; None for no such batch."""
        # One read transaction: the three reads see the same moment of a running batch.
        with self.conn:
            self.conn.execute("BEGIN")
            row = self.conn.execute(_BATCH, (batch_id,)).fetchone()
            if row is None:
                return None
            return self._state(BatchRecord.from_row(_decoded(row)))

    def list_states(
        self, *, status: str | None, limit: int
    ) -> list[tuple[BatchRecord, list[JobRecord], list[Row]]]:
        """What `engine.views.list_views` reads: the newest `limit` batches (in `status`
        if given), each as `batch_state` gives it, in one snapshot."""
        sql = _LIST.format("" if status is None else " AND status = ?")
        params = (limit,) if status is None else (status, limit)
        with self.conn:
            self.conn.execute("BEGIN")
            rows = self.conn.execute(sql, params).fetchall()
            return [self._state(BatchRecord.from_row(_decoded(row))) for row in rows]

    def _state(self, batch: BatchRecord) -> tuple[BatchRecord, list[JobRecord], list[Row]]:
        # Inside the caller's read transaction.
        jobs = [
            JobRecord.from_row(_decoded(r))
            for r in self.conn.execute(_JOBS, (batch.id,)).fetchall()
        ]
        progress: list[Row] = []
        if not batch.status.terminal:
            progress = self.conn.execute(_PROGRESS, (batch.id,)).fetchall()
            progress += self.conn.execute(_RETRIED, (batch.id,)).fetchall()
        return batch, jobs, progress

    async def iter_result_rows(
        self, batch_id: str, columns: Sequence[str], *, chunk: int = 5000
    ) -> AsyncIterator[list[tuple[Any, ...]]]:
        """As `Store.iter_result_rows` (the same reader of SQLite files)."""
        from unibatch.store.bulk_read import sqlite_result_rows  # asyncio: not for `status`

        async with aclosing(sqlite_result_rows(self.path, batch_id, columns, chunk)) as read:
            async for rows in read:
                yield rows

    async def history(self, batch_id: str, custom_ids: Sequence[str]) -> dict[str, list[Row]]:
        """As `Store.history`: the earlier attempts of these requests, oldest first."""
        found: dict[str, list[Row]] = {}
        ids = list(custom_ids)
        for start in range(0, len(ids), 500):
            part = ids[start : start + 500]
            sql = _HISTORY.format(", ".join("?" * len(part)))
            for row in self.conn.execute(sql, (batch_id, *part)).fetchall():
                found.setdefault(row["custom_id"], []).append(row)
        return found
