"""Creating a batch: its requests validated, planned and stored chunk by chunk.

The store keeps a batch being imported invisible until its last chunk is in, and a batch
whose importer died is failed by a sweep (`unibatch.store.imports`). Lines are read and
validated in a thread, a chunk at a time, so the event loop (a gateway's, serving other
callers) stays free during a long import, and the import's lease is renewed meanwhile
even when the source is slow.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from unibatch.engine.cache import LOCAL, CacheCopy, CachePolicy
from unibatch.engine.context import Context
from unibatch.engine.deadline import Deadline, parse_deadline
from unibatch.engine.failover import DEFAULT_STUCK_AFTER, check_fallbacks, stuck_limit
from unibatch.engine.ids import new_id
from unibatch.engine.inputs import (
    DEFAULT_ENDPOINT,
    RequestReader,
    RequestRow,
    Source,
    Unplanned,
)
from unibatch.engine.plan import Planner
from unibatch.engine.queue import JOB_SHARE, token_limits
from unibatch.engine.steps import cancel_and_wait
from unibatch.errors import (
    ConfigurationError,
    CostLimitError,
    InputError,
    UnknownProviderError,
)
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
    max_attempts: int | None = None,
    fallback_models: Sequence[str] | None = None,
    stuck_after: float | None = None,
    deadline: Deadline | None = None,
    batch_id: str | None = None,
    webhooks: Sequence[str] = (),
    max_cost: float | None = None,
) -> Row:
    """The row of a new batch about to be imported (`validating`, leased to this engine);
    nothing is written yet."""
    if max_cost is not None and (
        isinstance(max_cost, bool) or not isinstance(max_cost, int | float) or not max_cost >= 0
    ):
        raise InputError(
            f"max_cost must be an amount in USD of at least 0, not {max_cost!r}",
            field="max_cost",
        )
    if on_complete is not None and ":" not in on_complete:
        raise InputError(f"on_complete {on_complete!r} must be written as 'module:function'")
    attempts = max_attempts if max_attempts is not None else ctx.settings.max_attempts
    if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
        raise InputError(
            f"max_attempts must be a whole number of at least 1, not {attempts!r}",
            field="max_attempts",
        )
    fallbacks = check_fallbacks(ctx, fallback_models)
    stuck = stuck_limit(fallbacks, stuck_after, DEFAULT_STUCK_AFTER)
    now = ctx.clock()
    # A deadline already past is refused here, before anything is stored or sent.
    ends_by = parse_deadline(deadline, now)
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
        "max_attempts": attempts,
        "fallback_models": fallbacks,
        "stuck_after": stuck,
        "deadline": ends_by,
        "max_cost": None if max_cost is None else float(max_cost),
        "on_complete": on_complete,
        "webhooks": list(webhooks),
        "handler_state": "none",
        "handler_attempts": 0,
        "request_total": 0,
        "lease_owner": ctx.owner,
        "lease_until": ctx.lease_until(),
    }


def check_requests(ctx: Context, source: Source, *, model: str | None = None) -> int:
    """Validate every line of `source` as an import would, storing nothing; how many.
    Raises the import's `InputError` (naming the line). Synchronous: run it in a thread.
    A custom_id repeated more than an ingest chunk apart is found by the import only."""
    planner = Planner("check", ctx.clock(), realtime=frozenset(ctx.settings.realtime_providers))
    reader = RequestReader(
        source,
        batch_id="check",
        planner=planner,
        providers=ctx.providers,
        model=model,
        chunk=ctx.settings.ingest_chunk,
    )
    for _ in reader.iter_chunks():
        pass
    reader.planner.check_minimums(ctx.providers.min_requests)
    return reader.count


async def import_requests(
    ctx: Context,
    batch: Row,
    source: Source,
    *,
    model: str | None = None,
    keep_failed: bool = False,
    cache: CachePolicy | None = None,
    namespace: str = LOCAL,
) -> int:
    """Read, validate and store the requests of a batch whose row `start_import` (or a
    front end, in its own transaction) has written; the number of requests.

    With `cache`, requests already answered (`unibatch.engine.cache`, within
    `namespace`) are stored with a copy of their answer and go to no provider job, and
    every request stores its cache key, for later batches to find its answer.

    On any error the requests stored so far are deleted and the error is raised; the batch
    row is deleted too, or with `keep_failed` left `failed` with the error (as OpenAI's API
    leaves a batch whose input file does not validate)."""
    batch_id = batch["id"]
    planner = Planner(
        batch_id,
        batch["created_at"],
        realtime=frozenset(ctx.settings.realtime_providers),
        token_limit=await token_limits(ctx),
        token_share=JOB_SHARE,
    )
    meter = None
    if batch.get("max_cost") is not None:
        # Imported here: the tokenizer is loaded only by batches with a spend cap.
        from unibatch.estimate.meter import CostMeter

        meter = CostMeter(ctx.pricer)
    reader = RequestReader(
        source,
        batch_id=batch_id,
        planner=planner,
        providers=ctx.providers,
        model=model,
        chunk=ctx.settings.ingest_chunk,
        namespace=None if cache is None else namespace,
        meter=meter,
    )
    chunks: Iterator[list[RequestRow] | Unplanned] = (
        reader.iter_chunks() if cache is None else reader.iter_unplanned()
    )
    since = None if cache is None else cache.since(ctx.clock())

    def read() -> asyncio.Future[list[RequestRow] | Unplanned | None]:
        return asyncio.ensure_future(asyncio.to_thread(next, chunks, None))

    beat = asyncio.create_task(_heartbeat(ctx, batch_id))
    pending = read()
    try:
        while (chunk := await pending) is not None:
            # The next chunk is read and validated while this one is written: the database
            # driver lets go of the GIL while it writes, so the two overlap.
            pending = read()
            copies: list[CacheCopy] = []
            if isinstance(chunk, Unplanned):
                # Planned here, on the loop, once the cache has said which requests it
                # answers: the reader's thread only validates.
                answers = await ctx.store.cached_answers(chunk.targets(), since=since)
                copies = reader.plan(chunk, answers)
                chunk = chunk.rows
            await ctx.store.import_chunk(
                batch_id,
                ctx.owner,
                chunk,
                lease_until=ctx.lease_until(),
                duplicate=reader.duplicate,
                copies=copies,
                now=ctx.clock(),
            )
        reader.planner.check_minimums(ctx.providers.min_requests)
        await ctx.store.finish_import(
            batch_id,
            ctx.owner,
            reader.planner.rows(),
            endpoint=batch["endpoint"],
            now=ctx.clock(),
            estimated_cost=within_cap(reader, batch.get("max_cost")),
        )
    except BaseException as exc:
        beat.cancel()
        errors = [batch_error(exc, reader.line).as_dict()] if keep_failed else None
        await _undo(ctx, batch_id, errors)
        raise
    finally:
        # A read still running ends with its chunk; nothing waits for what it finds.
        pending.cancel()
        await cancel_and_wait(beat)
    log.info("batch %s: %d requests in %d jobs", batch_id, reader.count, len(reader.planner.jobs))
    for provider, model in sorted({(job.provider, job.model) for job in reader.planner.jobs}):
        if ctx.pricer.price(provider, model) is None:
            log.warning(
                "batch %s: no known price for %s/%s: its costs will be null, not 0 "
                "(set one in UNIBATCH_PRICES)",
                batch_id,
                provider,
                model,
            )
    return reader.count


async def cache_hits(
    ctx: Context,
    source: Source,
    *,
    model: str | None = None,
    cache: CachePolicy,
    namespace: str = LOCAL,
) -> Counter[str]:
    """How many requests of `source` an import with `cache` would answer from the store
    now, per "provider/model". Reads and validates as an import does (a bad line raises
    the same error), a chunk at a time, looking each chunk's keys up by the index; writes
    nothing."""
    reader = RequestReader(
        source,
        batch_id="",
        planner=Planner("", 0.0),
        providers=ctx.providers,
        model=model,
        chunk=ctx.settings.ingest_chunk,
        namespace=namespace,
    )
    chunks = reader.iter_unplanned()
    since = cache.since(ctx.clock())
    hits: Counter[str] = Counter()
    while (chunk := await asyncio.to_thread(next, chunks, None)) is not None:
        targets = chunk.targets()
        answers = await ctx.store.cached_answers(targets, since=since)
        # Per request, not per key: a file may ask the same thing twice.
        for row in chunk.rows:
            if row[5] in answers:
                provider, bare_model, _ = targets[row[5]]
                hits[f"{provider}/{bare_model}"] += 1
    return hits


def within_cap(reader: RequestReader, max_cost: float | None) -> float | None:
    """The batch's estimated cost, or `CostLimitError` when it is over `max_cost` or
    unknown: raised before the import ends, so the batch is undone and nothing is sent."""
    meter = reader.meter
    if meter is None or max_cost is None:
        return None
    if meter.unpriced:
        raise CostLimitError(
            f"no known price for {meter.unpriced[0]}, so the batch's cost cannot be held to "
            "max_cost; give the model a price in UNIBATCH_PRICES",
            path=reader.path,
            field="max_cost",
        )
    if meter.total > max_cost:
        raise CostLimitError(
            f"the batch is estimated to cost ${meter.total:.6f} at batch prices (input "
            f"tokens plus each request's max_tokens), over its max_cost ${max_cost:.6f}; "
            "nothing was sent (`unibatch estimate` shows the figures)",
            path=reader.path,
            field="max_cost",
        )
    return meter.total


def batch_error(exc: BaseException, line: int | None) -> BatchError:
    """What a caller is told about an import that failed with `exc` (at `line`)."""
    if isinstance(exc, UnknownProviderError):
        return BatchError("model_not_found", exc.detail, exc.line, exc.field or "model")
    if isinstance(exc, CostLimitError):
        return BatchError("max_cost_exceeded", exc.detail, None, "max_cost")
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
