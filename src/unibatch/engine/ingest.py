"""Ingest: stream a finished job's result rows into the store, chunk by chunk.

This is the hot path of a large batch (one pass per result row), so rows travel as plain
tuples in the results table's column order (`RESULT_COLUMNS`) from the moment they are
normalised until the database driver binds them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

import orjson

from unibatch.engine.context import Context
from unibatch.pricing import Rates
from unibatch.providers.base import Provider, ProviderJob, ResultRow
from unibatch.store import codec
from unibatch.store.ops import RESULT_COLUMNS, ResultRecord
from unibatch.types import BatchStatus

log = logging.getLogger("unibatch.engine")
Row = dict[str, Any]
# Rows of a chunk that came back with only a `seq`: (index in the chunk, seq).
Unresolved = list[tuple[int, int]]

_CUSTOM_ID = RESULT_COLUMNS.index("custom_id")


def provider_job(job: Row) -> ProviderJob:
    return ProviderJob(
        id=job["provider_batch_id"],
        status=BatchStatus(job["status"]),
        native_status=job["native_status"] or "",
        output_file_id=job["output_file_id"],
        error_file_id=job["error_file_id"],
    )


def records(
    batch_id: str, job_id: str, rates: Rates, rows: Iterable[ResultRow], now: float
) -> tuple[list[ResultRecord], Unresolved]:
    """Normalised rows -> store records (priced, body packed), and the rows still to be
    matched to their request by `seq`."""
    out: list[ResultRecord] = []
    unresolved: Unresolved = []
    rate_in, rate_cached, rate_out = rates.input, rates.cached_input, rates.output
    for r in rows:
        usage, error = r.usage, r.error
        tokens_in, cached = usage.input_tokens, min(usage.cached_tokens, usage.input_tokens)
        if r.custom_id is None and r.seq is not None:
            unresolved.append((len(out), r.seq))
        # Same order as RESULT_COLUMNS (checked by tests/unit/test_ingest_records.py).
        out.append(
            (
                batch_id,
                r.custom_id,
                job_id,
                r.status.value,
                r.status_code,
                r.row_id,
                r.request_id,
                error.code if error else None,
                error.message if error else None,
                error.retryable if error else False,
                tokens_in,
                usage.output_tokens,
                usage.cached_tokens,
                usage.reasoning_tokens,
                # Rates.cost inlined: this runs once per result row.
                (tokens_in - cached) * rate_in + cached * rate_cached,
                usage.output_tokens * rate_out,
                codec.pack_bytes(orjson.dumps(r.body)) if r.body is not None else None,
                codec.pack_bytes(r.raw) if r.raw is not None else None,
                now,
            )
        )
    return out, unresolved


async def _resolve(
    ctx: Context, batch_id: str, chunk: list[ResultRecord], unresolved: Unresolved
) -> list[ResultRecord]:
    """Give rows that came back with only a `seq` their request's custom_id (one query).
    A seq that names no request (a provider's invention) is dropped, not stored; so is a
    row with neither a custom_id nor a seq."""
    if unresolved:
        ids = await ctx.store.custom_ids(batch_id, [seq for _, seq in unresolved])
        for index, seq in unresolved:
            record = chunk[index]
            chunk[index] = (*record[:_CUSTOM_ID], ids.get(seq), *record[_CUSTOM_ID + 1 :])
    if unresolved or any(record[_CUSTOM_ID] is None for record in chunk):
        return [record for record in chunk if record[_CUSTOM_ID] is not None]
    return chunk


async def ingest(ctx: Context, provider: Provider, job: Row) -> None:
    """Stream every result row into the store, chunk by chunk. Re-running it after a crash
    re-reads the files from the start; rows already stored are skipped by the insert.

    One chunk is written while the next is read: the database driver works in its own
    thread (aiosqlite) or socket (asyncpg)."""
    chunk_size = ctx.settings.ingest_chunk
    rates = ctx.pricer.rates(job["provider"], job["model"], provider.batch_discount)
    batch_id, job_id = job["batch_id"], job["id"]
    writing: asyncio.Task[bool] | None = None

    async def flush(chunk: list[ResultRecord], unresolved: Unresolved) -> bool:
        chunk = await _resolve(ctx, batch_id, chunk, unresolved)
        return await ctx.store.insert_results(
            chunk, job_id=job_id, owner=ctx.owner, lease_until=ctx.lease_until()
        )

    try:
        chunk: list[ResultRecord] = []
        unresolved: Unresolved = []
        if job["provider_batch_id"]:
            async for rows in provider.results(provider_job(job)):
                got, pending = records(batch_id, job_id, rates, rows, ctx.clock())
                unresolved += [(index + len(chunk), seq) for index, seq in pending]
                chunk += got
                if len(chunk) >= chunk_size:
                    if writing is not None and not await writing:
                        log.warning("job %s: lease lost during ingest; stopping", job_id)
                        return
                    writing = asyncio.ensure_future(flush(chunk, unresolved))
                    chunk, unresolved = [], []
        if writing is not None and not await writing:
            return
        writing = None
        if not await flush(chunk, unresolved):
            return
    finally:
        if writing is not None and not writing.done():
            writing.cancel()
    await ctx.store.update_job(
        job_id,
        ctx.owner,
        release=True,
        phase="done",
        finished_at=ctx.clock(),
        next_run_at=None,
    )
