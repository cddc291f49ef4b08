"""The real-time runner: send a job's requests one by one to the provider's ordinary
synchronous endpoint, and store each answer as it arrives.

One step sends every request of the job that has no result yet, at most `concurrency` at
once, within the requests- and tokens-per-minute limits of its provider and model
(`pacing`). A rate limit, overload, server error or timeout is sent again after the
provider's Retry-After (or a backoff); after `realtime_max_tries` sends it is stored as a
retryable error.

Durability. Before a request is sent, a marker is committed (`realtime_sends`, in a group
with the other requests about to go); its answer is committed as soon as it arrives, and a
request's slot is free again only once that is done. A worker killed at any point leaves:
requests with a result (never sent again: the runner only reads requests without one),
requests with neither marker nor result (never sent: sent normally after a restart), and
requests with a marker but no result, the ones in flight at the kill. Their answers were
lost with the worker; the provider may or may not have run them. By default they are sent
again (at least once); with `UNIBATCH_REALTIME_RESEND_LOST=false` they are stored as the
error `lost_in_crash` instead (at most once: not retryable, so automatic retries leave
it alone; `unibatch retry` can still send it again on purpose). Every write checks the job's lease
in its transaction, so a worker that lost the job stops before sending more, and every
marker write reads the batch's cancel flag, so nothing is sent after a cancel.

Costs are the list price (no batch discount); a model whose price is unknown (a local
server's) gets a null cost. Results are marked `mode: "realtime"` through their job.

Handing over. The runner works on whatever requests point at its job and have no result:
a deadline (`unibatch.engine.deadline`) moves the unfinished requests of a cancelled Batch
API job to a new real-time job of the same batch, or turns a job not sent yet to
`realtime`, and this runner finishes them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

import orjson

from unibatch import codec
from unibatch.decode.records import records
from unibatch.engine.context import Context
from unibatch.engine.runners.pacing import Pacer, pacer_for
from unibatch.engine.schedule import retry_delay
from unibatch.errors import (
    ConfigurationError,
    InputError,
    PermanentProviderError,
    TransientProviderError,
)
from unibatch.metrics.counters import REALTIME_SENDS
from unibatch.pricing import UNKNOWN
from unibatch.providers.base import Provider, RequestLine, ResultRow
from unibatch.store.realtime import PendingRow
from unibatch.store.records import JobPhase, JobRecord
from unibatch.types import BatchStatus, ErrorInfo, RequestStatus

log = logging.getLogger("unibatch.engine")
T = TypeVar("T")

# Requests read from the store per query.
_PAGE = 500
# The code of a request whose answer was lost in a crash, when it is not sent again.
LOST_IN_CRASH = "lost_in_crash"


class LeaseLost(Exception):
    """Another worker holds the job now: stop without sending anything more."""


class BatchCancelled(Exception):
    """The batch's cancel was asked for: send nothing more."""


class GroupWriter(Generic[T]):
    """Writes items in groups: each `put` returns once its item is committed (or raises
    what the write raised), and items put while a write is under way go together in the
    next one: one transaction for many requests, without holding any of them back."""

    def __init__(self, flush: Callable[[list[T]], Awaitable[None]]) -> None:
        self._flush = flush
        self._queue: list[tuple[T, asyncio.Future[None]]] = []
        self._task: asyncio.Task[None] | None = None

    async def put(self, item: T) -> None:
        future = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._drain())
        await future

    async def _drain(self) -> None:
        while self._queue:
            group, self._queue = self._queue, []
            error: BaseException | None = None
            try:
                await self._flush([item for item, _ in group])
            except Exception as exc:
                error = exc
            for _, future in group:
                if future.done():
                    continue
                if error is None:
                    future.set_result(None)
                else:
                    future.set_exception(error)

    async def aclose(self) -> None:
        if self._task is not None:
            with contextlib.suppress(Exception):
                await self._task


def estimate_tokens(line: RequestLine) -> int:
    """Tokens a request may count against a TPM limit before its usage is known: about
    four bytes a token of the body, plus the output it may ask for (providers count
    `max_tokens` towards the limit when the request arrives)."""
    size = len(line.data) if line.data is not None else len(orjson.dumps(line.body))
    body = line.body
    most = body.get("max_completion_tokens") or body.get("max_tokens") or 0
    return size // 4 + (int(most) if isinstance(most, int | float) else 0)


def _gave_up(custom_id: str, exc: TransientProviderError) -> ResultRow:
    status = exc.status_code
    if status == 429:
        code = "rate_limit_exceeded"
    elif status is None:
        code = "timeout"
    else:
        code = "server_error"
    return ResultRow(
        custom_id=custom_id,
        status=RequestStatus.ERRORED,
        status_code=status,
        error=ErrorInfo(code=code, message=str(exc), retryable=True),
    )


def _refused(custom_id: str, exc: Exception) -> ResultRow:
    status = exc.status_code if isinstance(exc, PermanentProviderError) else 400
    return ResultRow(
        custom_id=custom_id,
        status=RequestStatus.ERRORED,
        status_code=status,
        error=ErrorInfo(code="invalid_request", message=str(exc), retryable=False),
    )


class RealtimeRunner:
    """Runs a job through the provider's synchronous endpoint (see the module docstring)."""

    async def step(self, ctx: Context, job: JobRecord) -> None:
        batch = await ctx.store.get_batch(job.batch_id)
        if batch is None or batch.cancel_requested:
            await ctx.store.realtime_done(
                job.id, ctx.owner, status=BatchStatus.CANCELLED, now=ctx.clock()
            )
            return
        provider = ctx.providers.get(job.provider)
        if not provider.spec.has_realtime:
            # Checked before any marker is written: the user fixes this, not time.
            raise ConfigurationError(f"{job.provider} has no real-time endpoint in unibatch")
        if job.phase is not JobPhase.RUNNING and not await ctx.store.realtime_started(
            job.id, ctx.owner, now=ctx.clock()
        ):
            return
        # Real-time requests are billed at list prices.
        price = ctx.pricer.price_used(job.provider, job.model, 1.0, discounted=False)
        await ctx.store.set_job_price(job.id, price)
        try:
            cancelled = await _JobRun(ctx, provider, job).run()
        except LeaseLost:
            log.warning("job %s: lease lost; stopped sending", job.id)
            return
        status = BatchStatus.CANCELLED if cancelled else BatchStatus.COMPLETED
        await ctx.store.realtime_done(job.id, ctx.owner, status=status, now=ctx.clock())


class _JobRun:
    """One step's sending of one job."""

    def __init__(self, ctx: Context, provider: Provider, job: JobRecord) -> None:
        self.ctx, self.provider, self.job = ctx, provider, job
        settings = ctx.settings
        limit = settings.realtime_limit(job.provider, job.model)
        self.concurrency = limit.concurrency or settings.realtime_concurrency
        self.pacer: Pacer = pacer_for(job.provider, job.model, limit)
        # Unknown prices (a local server's) make null costs, not free ones.
        self.rates = ctx.pricer.list_rates(job.provider, job.model) or UNKNOWN
        self.marks = GroupWriter(self._mark)
        self.results = GroupWriter(self._store)
        self.cancelled = False
        self._reading = asyncio.Lock()
        self._page: deque[PendingRow] = deque()
        self._after = -1

    async def _mark(self, custom_ids: list[str]) -> None:
        ctx = self.ctx
        found = await ctx.store.mark_sending(
            self.job.batch_id,
            self.job.id,
            custom_ids,
            owner=ctx.owner,
            now=ctx.clock(),
            lease_until=ctx.lease_until(),
        )
        if found == "lease_lost":
            raise LeaseLost()
        if found == "cancelled":
            raise BatchCancelled()
        REALTIME_SENDS.labels(self.job.provider).inc(len(custom_ids))

    async def _store(self, rows: list[ResultRow]) -> None:
        ctx, job = self.ctx, self.job
        made, _ = records(job.batch_id, job.id, self.rates, rows, ctx.clock())
        if not await ctx.store.insert_results(
            made, job_id=job.id, owner=ctx.owner, lease_until=ctx.lease_until()
        ):
            raise LeaseLost()

    async def run(self) -> bool:
        """Send every request without a result; True when the batch was cancelled first."""
        senders = [asyncio.ensure_future(self._sender()) for _ in range(self.concurrency)]
        try:
            # The first error (a lost lease, the database gone) ends the step; the
            # requests in flight keep their markers and are resumed from the store.
            await asyncio.gather(*senders)
        finally:
            for sender in senders:
                sender.cancel()
            await asyncio.gather(*senders, return_exceptions=True)
            await self.marks.aclose()
            await self.results.aclose()
        return self.cancelled

    async def _next(self) -> PendingRow | None:
        """The next request to send, read from the store a page at a time."""
        async with self._reading:
            if self.cancelled:
                return None
            if not self._page:
                page = await self.ctx.store.realtime_pending(
                    self.job.id, after=self._after, limit=_PAGE
                )
                if not page:
                    return None
                self._after = page[-1][0]
                self._page.extend(page)
            return self._page.popleft()

    async def _sender(self) -> None:
        settings = self.ctx.settings
        while (item := await self._next()) is not None:
            seq, custom_id, packed, sends = item
            line = RequestLine(custom_id, seq=seq, data=codec.json_bytes(packed))
            if sends and not settings.realtime_resend_lost:
                await self.results.put(_lost(custom_id, sends))
                continue
            if sends:
                log.info(
                    "job %s: %s was in flight in a crash; sending it again", self.job.id, custom_id
                )
            estimate = estimate_tokens(line)
            await self.pacer.acquire(estimate)
            try:
                await self.marks.put(custom_id)
            except BatchCancelled:
                self.cancelled = True
                return
            row = await self._send(line)
            await self.results.put(row)
            self.pacer.settle(estimate, row.usage.input_tokens + row.usage.output_tokens)

    async def _send(self, line: RequestLine) -> ResultRow:
        settings = self.ctx.settings
        tries = 0
        while True:
            tries += 1
            try:
                row = await self.provider.realtime(self.job.endpoint, self.job.model, line)
            except TransientProviderError as exc:
                if tries >= settings.realtime_max_tries:
                    return _gave_up(line.custom_id, exc)
                delay = retry_delay(settings.poll_schedule, tries, exc.retry_after)
                if exc.status_code == 429:
                    # The limit is the provider's, shared by every request of the model.
                    self.pacer.pause(delay)
                    await self.pacer.acquire(0)
                else:
                    await asyncio.sleep(delay)
                continue
            except (InputError, PermanentProviderError) as exc:
                return _refused(line.custom_id, exc)
            row.custom_id = line.custom_id
            return row


def _lost(custom_id: str, sends: int) -> ResultRow:
    return ResultRow(
        custom_id=custom_id,
        status=RequestStatus.ERRORED,
        error=ErrorInfo(
            code=LOST_IN_CRASH,
            message=(
                f"sent {sends} time(s), but the worker stopped before the answer was stored; "
                "not sent again (UNIBATCH_REALTIME_RESEND_LOST=false)"
            ),
            # At most once was asked for: an automatic retry would break it.
            retryable=False,
        ),
    )


__all__ = ["LOST_IN_CRASH", "RealtimeRunner"]
