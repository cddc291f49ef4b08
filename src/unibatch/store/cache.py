"""The result cache's store operations: finding stored answers by cache key, and copying
them to the requests of a batch being imported (`unibatch.engine.cache`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypedDict, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from unibatch.store.tables import jobs, requests, results

T = TypeVar("T")
# The mode of the jobs that hold cached answers (`JobMode.CACHE`).
CACHE_MODE = "cache"
# Keys per lookup query: well under SQLite's 32,766 bound parameters.
_KEYS_PER_QUERY = 5000


def key_hash(key: bytes) -> int:
    """What the index holds of a cache key: its first 8 bytes, as a signed 64-bit integer
    (the column is a BIGINT on PostgreSQL)."""
    return int.from_bytes(key[:8], "big", signed=True)


@dataclass(frozen=True, slots=True)
class Answer:
    """A stored answer a cached request copies: the result of `custom_id` in `batch_id`."""

    batch_id: str
    custom_id: str
    created_at: float


class CacheCopy(TypedDict):
    """A request of the batch being imported answered by copying `from_batch`'s result
    for `from_custom_id`."""

    custom_id: str
    job_id: str
    from_batch: str
    from_custom_id: str


# A copy keeps what the provider answered and the usage it reported (for information);
# its cost is 0, since nothing was billed for it in this batch.
_KEPT = (
    "status",
    "status_code",
    "row_id",
    "request_id",
    "error_code",
    "error_message",
    "retryable",
    "input_tokens",
    "output_tokens",
    "cached_tokens",
    "reasoning_tokens",
    "cache_write_tokens",
    "body",
    "raw",
)


def _copy_statement() -> sa.Insert:
    src = results.alias("src")
    chosen = sa.select(
        sa.bindparam("batch_id", type_=sa.String),
        sa.bindparam("custom_id", type_=sa.String),
        sa.bindparam("job_id", type_=sa.String),
        *(src.c[name] for name in _KEPT),
        sa.literal(0.0, sa.Float),
        sa.literal(0.0, sa.Float),
        sa.bindparam("now", type_=sa.Float),
    ).where(
        src.c.batch_id == sa.bindparam("from_batch", type_=sa.String),
        src.c.custom_id == sa.bindparam("from_custom_id", type_=sa.String),
    )
    columns = ["batch_id", "custom_id", "job_id", *_KEPT, "cost_input", "cost_output"]
    return results.insert().from_select([*columns, "created_at"], chosen)


_COPY = _copy_statement()
# SQLite: the same, straight to the driver with tuples (SQLAlchemy's per-row parameter
# handling was most of the time of an import answered from the cache).
_COPY_SQLITE = (
    f"INSERT INTO results (batch_id, custom_id, job_id, {', '.join(_KEPT)}, cost_input,"
    f" cost_output, created_at) SELECT ?, ?, ?, {', '.join('src.' + n for n in _KEPT)},"
    " 0.0, 0.0, ? FROM results src WHERE src.batch_id = ? AND src.custom_id = ?"
)


async def copy_answers(
    conn: AsyncConnection, batch_id: str, copies: Sequence[CacheCopy], now: float
) -> None:
    """Write the results of `copies` (requests of `batch_id`) inside the caller's
    transaction. The answers copied are succeeded results of batches past their import,
    which nothing deletes, so each copy finds its source."""
    if conn.dialect.name == "sqlite":
        rows = [
            (batch_id, c["custom_id"], c["job_id"], now, c["from_batch"], c["from_custom_id"])
            for c in copies
        ]
        await conn.exec_driver_sql(_COPY_SQLITE, rows)
        return
    params: list[dict[str, Any]] = [{**copy, "batch_id": batch_id, "now": now} for copy in copies]
    await conn.execute(_COPY, params)


class CacheOps:
    """Mixed into `Store`: looking up stored answers."""

    engine: AsyncEngine

    async def read(self, fn: Callable[[sa.Connection], T]) -> T:
        raise NotImplementedError  # `Store.read`

    async def cached_answers(
        self,
        wanted: Mapping[bytes, tuple[str, str, str]],
        *,
        since: float | None = None,
    ) -> dict[bytes, Answer]:
        """The newest succeeded answer to each cache key of `wanted` (found by its hash,
        then told apart from others of the same hash by the whole key), no older than
        `since`, given by a job of the key's own (provider, model, endpoint): a request
        later moved to another model (retry, failover) never answers for its first one.
        Answers that were themselves copied from the cache are not taken, so an answer's
        age is always that of the provider's response."""
        hashes = list({key_hash(key) for key in wanted})

        def lookup(conn: sa.Connection) -> dict[bytes, Answer]:
            found: dict[bytes, Answer] = {}
            for start in range(0, len(hashes), _KEYS_PER_QUERY):
                part = hashes[start : start + _KEYS_PER_QUERY]
                for key, *target, batch_id, custom_id, created in _lookup(conn, part, since):
                    key = bytes(key)
                    # None for another key of the same hash.
                    if wanted.get(key) != tuple(target):
                        continue
                    best = found.get(key)
                    if best is None or created > best.created_at:
                        found[key] = Answer(batch_id, custom_id, float(created))
            return found

        return await self.read(lookup)


_LOOKUP = (
    "SELECT q.cache_key, j.provider, j.model, j.endpoint, r.batch_id, r.custom_id, r.created_at"
    " FROM requests q"
    " JOIN results r ON r.batch_id = q.batch_id AND r.custom_id = q.custom_id"
    " JOIN jobs j ON j.id = r.job_id"
    " WHERE q.cache_hash IN ({keys}) AND r.status = 'succeeded' AND j.mode <> '" + CACHE_MODE + "'"
)


def _lookup(conn: sa.Connection, keys: list[int], since: float | None) -> Any:
    if conn.dialect.name == "sqlite":
        sql = _LOOKUP.format(keys=",".join("?" * len(keys)))
        params: tuple[Any, ...] = tuple(keys)
        if since is not None:
            sql += " AND r.created_at >= ?"
            params += (since,)
        return conn.exec_driver_sql(sql, params)
    q, r, j = requests.c, results.c, jobs.c
    stmt = (
        sa.select(
            q.cache_key, j.provider, j.model, j.endpoint, r.batch_id, r.custom_id, r.created_at
        )
        .select_from(requests)
        .join(results, sa.and_(r.batch_id == q.batch_id, r.custom_id == q.custom_id))
        .join(jobs, j.id == r.job_id)
        .where(q.cache_hash.in_(keys), r.status == "succeeded", j.mode != CACHE_MODE)
    )
    if since is not None:
        stmt = stmt.where(r.created_at >= since)
    return conn.execute(stmt)
