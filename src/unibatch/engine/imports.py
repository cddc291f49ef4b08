"""Creating a batch: its requests validated, planned and stored chunk by chunk.

The store keeps a batch being imported invisible until its last chunk is in, and a batch
whose importer died is failed by a sweep (`unibatch.store.imports`). Lines are read and
validated in a thread, a chunk at a time, so the event loop (a gateway's, serving other
callers) stays free during a long import, and the import's lease is renewed meanwhile
even when the source is slow.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from typing import Any

from unibatch.engine.context import Context
from unibatch.engine.ids import new_id
from unibatch.engine.inputs import DEFAULT_ENDPOINT, RequestReader, Source
from unibatch.engine.plan import Planner
from unibatch.errors import ConfigurationError, InputError, UnknownProviderError
from unibatch.store.imports import IMPORTING, ImportLostError
from unibatch.types import BatchError

log = logging.getLogger("unibatch.engine")
Row = dict[str, Any]

INTERRUPTED = BatchError(
    "import_interrupted",
    "the import of this batch stopped before it finished (the process importing it "
    "ended); create the batch again",
)


def draft_batch(
    ctx: Context,
    *,
    endpoint: str | None = None,
    metadata: Mapping[str, str] | None = None,
    on_complete: str | None = None,
    max_age: float | None = None,
    batch_id: str | None = None,
) -> Row:
    """The row of a new batch about to be imported (`validating`, leased to this engine);
    nothing is written yet."""
    if on_complete is not None and ":" not in on_complete:
        raise InputError(f"on_complete {on_complete!r} must be written as 'module:function'")
    now = ctx.clock()
    return {
        "id": batch_id or new_id("ubb"),
        "status": IMPORTING,
        # Replaced by the first job's endpoint at the end of the import.
        "endpoint": endpoint or DEFAULT_ENDPOINT,
        "created_at": now,
        "metadata": dict(metadata or {}),
        "errors": [],
        "cancel_requested": False,
        "max_age": max_age if max_age is not None else ctx.settings.max_age,
        "on_complete": on_complete,
        "handler_state": "none",
        "handler_attempts": 0,
        "request_total": 0,
        "lease_owner": ctx.owner,
        "lease_until": ctx.lease_until(),
    }


async def import_requests(
    ctx: Context,
    batch: Row,
    source: Source,
    *,
    model: str | None = None,
    keep_failed: bool = False,
) -> int:
    """Read, validate and store the requests of a batch whose row `start_import` (or a
    front end, in its own transaction) has written; the number of requests.

    On any error the requests stored so far are deleted and the error is raised; the batch
    row is deleted too, or with `keep_failed` left `failed` with the error (as OpenAI's API
    leaves a batch whose input file does not validate)."""
    batch_id = batch["id"]
    planner = Planner(batch_id, batch["created_at"])
    reader = RequestReader(
        source,
        batch_id=batch_id,
        planner=planner,
        providers=ctx.providers,
        model=model,
        chunk=ctx.settings.ingest_chunk,
    )
    chunks = reader.iter_chunks()

    def read() -> asyncio.Future[list[Row] | None]:
        return asyncio.ensure_future(asyncio.to_thread(next, chunks, None))

    beat = asyncio.create_task(_heartbeat(ctx, batch_id))
    pending = read()
    try:
        while (chunk := await pending) is not None:
            # The next chunk is read and validated while this one is written: the database
            # driver lets go of the GIL while it writes, so the two overlap.
            pending = read()
            await ctx.store.import_chunk(
                batch_id,
                ctx.owner,
                chunk,
                lease_until=ctx.lease_until(),
                duplicate=reader.duplicate,
            )
        await ctx.store.finish_import(
            batch_id, ctx.owner, planner.rows(), endpoint=batch["endpoint"], now=ctx.clock()
        )
    except BaseException as exc:
        beat.cancel()
        errors = [batch_error(exc, reader.line).as_dict()] if keep_failed else None
        await _undo(ctx, batch_id, errors)
        raise
    finally:
        # A read still running ends with its chunk; nothing waits for what it finds.
        pending.cancel()
        beat.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beat
    log.info("batch %s: %d requests in %d jobs", batch_id, reader.count, len(planner.jobs))
    return reader.count


def batch_error(exc: BaseException, line: int | None) -> BatchError:
    """What a caller is told about an import that failed with `exc` (at `line`)."""
    if isinstance(exc, UnknownProviderError):
        return BatchError("model_not_found", exc.detail, exc.line, exc.field or "model")
    if isinstance(exc, InputError):
        return BatchError("invalid_request", exc.detail, exc.line, exc.field)
    if isinstance(exc, ConfigurationError):
        # A provider this deployment has no credentials for.
        return BatchError("model_not_found", f"this provider cannot be used: {exc}", line, "model")
    if isinstance(exc, ImportLostError | asyncio.CancelledError | KeyboardInterrupt | SystemExit):
        return INTERRUPTED
    return BatchError(
        "import_failed", f"the batch could not be stored ({type(exc).__name__}); create it again"
    )


async def _undo(ctx: Context, batch_id: str, errors: list[Row] | None) -> None:
    """Delete what an import stored; if that fails too, its lease runs out and a sweep
    fails the batch later (`sweep_imports`)."""
    try:
        await ctx.store.abort_import(batch_id, ctx.owner, errors=errors, now=ctx.clock())
    except Exception:
        log.exception("batch %s: the failed import could not be undone yet", batch_id)


async def _heartbeat(ctx: Context, batch_id: str) -> None:
    """Renew the import's lease while a chunk is being read (a slow source)."""
    while True:
        await asyncio.sleep(ctx.settings.lease_seconds / 3)
        try:
            if not await ctx.store.renew_import(batch_id, ctx.owner, lease_until=ctx.lease_until()):
                return
        except Exception as exc:
            log.warning("batch %s: the import's lease could not be renewed (%s)", batch_id, exc)


async def sweep_imports(ctx: Context) -> int:
    """Fail the batches whose import stopped (its process died): their lease ran out.
    Their requests are deleted, so no worker ever runs half a batch; imports still
    running renew their lease and are never touched. The number failed."""
    now = ctx.clock()
    failed = 0
    for batch_id in await ctx.store.stale_imports(now):
        if not await ctx.store.take_over_import(
            batch_id, ctx.owner, now=now, lease_until=ctx.lease_until()
        ):
            continue
        if await ctx.store.abort_import(
            batch_id, ctx.owner, errors=[INTERRUPTED.as_dict()], now=now
        ):
            log.warning("batch %s: its import stopped before it finished; failed", batch_id)
            failed += 1
    return failed
