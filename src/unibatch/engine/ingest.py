"""Ingest: stream a finished job's result rows into the store, chunk by chunk.

Rows are decoded into store records (`unibatch.decode`) in this process, or for large
jobs in the decoder helper process, so that on two cores the download and parsing of one
chunk run while the previous chunk is written.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator
from contextlib import aclosing

from unibatch.codec import RESULT_COLUMNS, ResultRecord
from unibatch.decode.records import Unresolved, extend, records
from unibatch.engine.caps import enforce_cap
from unibatch.engine.context import Context
from unibatch.pricing import Rates
from unibatch.providers.base import Provider, ProviderJob
from unibatch.store.records import JobRecord

log = logging.getLogger("unibatch.engine")
Chunks = AsyncGenerator[tuple[list[ResultRecord], Unresolved], None]

_CUSTOM_ID = RESULT_COLUMNS.index("custom_id")


def provider_job(job: JobRecord) -> ProviderJob:
    assert job.provider_batch_id is not None  # submitted
    return ProviderJob(
        id=job.provider_batch_id,
        status=job.status,
        native_status=job.native_status or "",
        output_file_id=job.output_file_id,
        error_file_id=job.error_file_id,
        tag=job.id,
    )


async def _decode_here(ctx: Context, provider: Provider, job: JobRecord, rates: Rates) -> Chunks:
    async for rows in provider.results(provider_job(job)):
        yield records(job.batch_id, job.id, rates, rows, ctx.clock())


def _chunks(ctx: Context, provider: Provider, job: JobRecord, rates: Rates) -> Chunks:
    threshold = ctx.settings.ingest_process_from
    if threshold and job.request_count >= threshold and ctx.providers.rebuildable(job.provider):
        return ctx.decoder().records(
            job.provider,
            provider_job(job),
            batch_id=job.batch_id,
            job_id=job.id,
            rates=rates,
            chunk=ctx.settings.ingest_chunk,
        )
    return _decode_here(ctx, provider, job, rates)


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


async def ingest(ctx: Context, provider: Provider, job: JobRecord) -> None:
    """Stream every result row into the store, chunk by chunk. Re-running it after a crash
    re-reads the files from the start; rows already stored are skipped by the insert.

    One chunk is written while the next is decoded: the database driver works in its own
    thread (aiosqlite) or socket (asyncpg)."""
    chunk_size = ctx.settings.ingest_chunk
    discount = provider.spec.batch_discount
    rates = ctx.pricer.rates(job.provider, job.model, discount)
    await ctx.store.set_job_price(job.id, ctx.pricer.price_used(job.provider, job.model, discount))
    batch_id, job_id = job.batch_id, job.id
    writing: asyncio.Task[bool] | None = None

    async def flush(chunk: list[ResultRecord], unresolved: Unresolved) -> bool:
        chunk = await _resolve(ctx, batch_id, chunk, unresolved)
        return await ctx.store.insert_results(
            chunk, job_id=job_id, owner=ctx.owner, lease_until=ctx.lease_until()
        )

    try:
        chunk: list[ResultRecord] = []
        unresolved: Unresolved = []
        if job.provider_batch_id:
            async with aclosing(_chunks(ctx, provider, job, rates)) as decoded:
                async for got, pending in decoded:
                    extend(chunk, unresolved, got, pending)
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
        # Let a chunk already being written finish rather than cancel it: a write cancelled
        # inside the database driver can leave its connection holding SQLite's write lock
        # until the garbage collector finds it, and every other writer then times out.
        # Its rows are under this job's lease, so keeping them is correct.
        if writing is not None and not writing.done():
            await asyncio.wait({writing})
            if not writing.cancelled() and writing.exception() is not None:
                log.warning("job %s: a chunk's write failed too: %s", job_id, writing.exception())
    await ctx.store.finish_job(job_id, ctx.owner, now=ctx.clock())
    await enforce_cap(ctx, batch_id)
