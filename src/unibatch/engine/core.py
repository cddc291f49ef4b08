"""The engine: the one place front ends (Python API, CLI, gateway) go through."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Collection,
    Iterable,
    Mapping,
    Sequence,
)
from dataclasses import dataclass
from functools import partial
from typing import Any

from unibatch.config import Settings
from unibatch.engine.batches import run_batch_step
from unibatch.engine.cache import LOCAL, CachePolicy
from unibatch.engine.context import Context
from unibatch.engine.deadline import Deadline
from unibatch.engine.export import Format, result_lines
from unibatch.engine.imports import (
    cache_hits,
    check_requests,
    draft_batch,
    import_requests,
    sweep_imports,
)
from unibatch.engine.inputs import Source
from unibatch.engine.jobs import run_job_step
from unibatch.engine.retry import RetryOutcome, retry_batch
from unibatch.engine.steps import Kind, StepPool, cancel_and_wait
from unibatch.engine.views import batch_view, batch_views, list_views, result_view
from unibatch.engine.webhooks import run_delivery_step
from unibatch.errors import NotFoundError
from unibatch.logs import redact
from unibatch.pricing import Pricer
from unibatch.providers.registry import ProviderSet
from unibatch.store import Store, open_store
from unibatch.store.ops import ResultHook
from unibatch.store.records import HandlerState
from unibatch.types import Batch, Result

log = logging.getLogger("unibatch.engine")
ProgressCallback = Callable[[Batch], Awaitable[None] | None]
# A store's claim of one kind of step, and the step that runs what it claimed.
Claim = Callable[..., Awaitable[Sequence[Any]]]
Step = Callable[[Context, Any], Awaitable[None]]


@dataclass
class WorkerHealth:
    """How a worker loop is doing: `last_loop` is `time.monotonic()` when it last went
    round, `error` the database error it is retrying, if any."""

    running: bool = False
    last_loop: float | None = None
    error: str | None = None


class Engine:
    """Submits, tracks and finishes batches. Safe to run in any number of processes.

    `result_hooks` run in every transaction that stores results; front ends pass what
    they account for (the gateway's usage events):

    >>> from unibatch.gateway.accounting import result_hooks
    >>> engine = await Engine.open(result_hooks=result_hooks())   # doctest: +SKIP
    """

    def __init__(
        self,
        store: Store,
        settings: Settings | None = None,
        providers: ProviderSet | None = None,
        pricer: Pricer | None = None,
        *,
        result_hooks: Iterable[ResultHook] = (),
    ) -> None:
        settings = settings or Settings()
        self.ctx = Context(
            store=store,
            settings=settings,
            providers=providers or ProviderSet(timeout=settings.http_timeout),
            pricer=pricer or Pricer.from_settings(settings),
        )
        for hook in result_hooks:
            self.add_result_hook(hook)
        self._worker = WorkerHealth()

    @classmethod
    async def open(
        cls,
        database_url: str | None = None,
        *,
        settings: Settings | None = None,
        providers: ProviderSet | None = None,
        result_hooks: Iterable[ResultHook] = (),
    ) -> Engine:
        settings = settings or Settings()
        if database_url:
            settings = settings.model_copy(update={"database_url": database_url})
        store = await open_store(settings.database_url)
        return cls(store, settings, providers, result_hooks=result_hooks)

    def add_result_hook(self, hook: ResultHook) -> None:
        """Run `hook(conn, batch_id, records)` in every transaction that stores results
        (see `Store.add_result_hook`). Front ends add what they account for, such as the
        gateway's usage events; adding a hook twice changes nothing."""
        if hook not in self.ctx.store.result_hooks:
            self.ctx.store.add_result_hook(hook)

    @property
    def store(self) -> Store:
        return self.ctx.store

    @property
    def settings(self) -> Settings:
        return self.ctx.settings

    @property
    def providers(self) -> ProviderSet:
        return self.ctx.providers

    @property
    def pricer(self) -> Pricer:
        return self.ctx.pricer

    @property
    def owner(self) -> str:
        """This engine's name in leases (host, pid and a random part)."""
        return self.ctx.owner

    async def aclose(self) -> None:
        await self.ctx.aclose()

    # -- front-end operations ----------------------------------------------------------

    async def create_batch(
        self,
        source: Source,
        *,
        model: str | None = None,
        metadata: Mapping[str, str] | None = None,
        on_complete: str | None = None,
        max_age: float | None = None,
        max_attempts: int | None = None,
        fallback_models: Sequence[str] | None = None,
        stuck_after: float | None = None,
        deadline: Deadline | None = None,
        batch_id: str | None = None,
        keep_failed: bool = False,
        cache: CachePolicy | None = None,
        webhooks: Sequence[str] = (),
        max_cost: float | None = None,
    ) -> str:
        """Validate, plan and store a batch; nothing is sent yet. Requests are stored in
        committed chunks while the batch stays invisible, so a long import holds no lock
        for its whole length; a bad line undoes it all and raises `InputError` naming it
        (with `keep_failed` the batch stays, `failed`, with the error). `batch_id` lets a
        front end record its own rows for the batch (the gateway's ownership and budget
        reservation) before the batch exists. `max_attempts` (default: the setting, 3)
        is how many times a request that fails in a retryable way is sent in all. A
        provider job that fails, or stays in validating / in_progress past `stuck_after`
        seconds (default 6 h), moves its unfinished requests to the next of
        `fallback_models` ("provider/model"). With `cache`, a request already answered
        (same provider, model, endpoint and body) is answered from the store, not sent.
        With a `deadline` (a timezone-aware datetime, a duration such as "2h" or an ISO
        8601 time with its zone, or epoch seconds) the batch stops waiting for the Batch
        API in time to run what is left in real time before it
        (`unibatch.engine.deadline`).

        `webhooks` are the ids of the endpoints told when the batch ends or is retried
        (`webhook_targets`). With `max_cost` (USD), a
        batch estimated at batch prices to cost more is refused (`CostLimitError`) before
        anything is sent, and a running batch is cancelled once its results' cost plus the
        estimate of the rest passes it."""
        batch = self.draft_batch(
            metadata=metadata,
            on_complete=on_complete,
            max_age=max_age,
            max_attempts=max_attempts,
            fallback_models=fallback_models,
            stuck_after=stuck_after,
            deadline=deadline,
            batch_id=batch_id,
            webhooks=webhooks,
            max_cost=max_cost,
        )
        await self.store.start_import(batch)
        await self.import_batch(batch, source, model=model, keep_failed=keep_failed, cache=cache)
        return str(batch["id"])

    def draft_batch(
        self,
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
    ) -> dict[str, Any]:
        """The row of a batch to import, not yet written: a front end writes it with
        `Store.insert_import` in its own transaction, then calls `import_batch` (the
        gateway answers in between, while the batch is `validating`)."""
        return draft_batch(
            self.ctx,
            endpoint=endpoint,
            metadata=metadata,
            on_complete=on_complete,
            max_age=max_age,
            max_attempts=max_attempts,
            fallback_models=fallback_models,
            stuck_after=stuck_after,
            deadline=deadline,
            batch_id=batch_id,
            webhooks=webhooks,
            max_cost=max_cost,
        )

    async def webhook_targets(
        self,
        url: str | None,
        *,
        key_id: str | None = None,
        new_secret: str | None = None,
        configured: bool = True,
    ) -> tuple[list[str], dict[str, Any] | None]:
        """The webhook endpoint ids a new batch of `key_id` notifies, and the endpoint
        registered for `url` now if it was unknown (signed with `new_secret`, else the
        `webhook_secret` setting if `configured`; with neither, `InputError`)."""
        secret = new_secret or (self.settings.webhook_secret if configured else None)
        return await self.store.webhook_targets(
            url, key_id, new_secret=secret, now=self.ctx.clock()
        )

    async def import_batch(
        self,
        batch: dict[str, Any],
        source: Source,
        *,
        model: str | None = None,
        keep_failed: bool = False,
        cache: CachePolicy | None = None,
        namespace: str = LOCAL,
    ) -> int:
        """Import the requests of a drafted batch (see `create_batch`); how many. Cache
        keys are made within `namespace` (`unibatch.engine.cache`)."""
        return await import_requests(
            self.ctx,
            batch,
            source,
            model=model,
            keep_failed=keep_failed,
            cache=cache,
            namespace=namespace,
        )

    async def cache_hits(
        self,
        source: Source,
        *,
        model: str | None = None,
        cache: CachePolicy | None = None,
        namespace: str = LOCAL,
    ) -> Counter[str]:
        """How many requests of `source` the result cache would answer now (with
        `cache`'s TTL), per "provider/model"; nothing is stored or sent. For estimates
        before a submit."""
        return await cache_hits(
            self.ctx, source, model=model, cache=cache or CachePolicy(), namespace=namespace
        )

    def check_requests(self, source: Source, *, model: str | None = None) -> int:
        """Validate the requests of `source` as `create_batch` would, storing nothing; how
        many (`InputError` naming the first bad line). Synchronous: run it in a thread."""
        return check_requests(self.ctx, source, model=model)

    async def sweep_imports(self) -> int:
        """Fail batches whose import stopped half way (its process died); how many.
        Workers do it as they start and every lease period."""
        return await sweep_imports(self.ctx)

    async def get_batch(self, batch_id: str, *, importing: bool = False) -> Batch:
        """The batch; one still being imported (`validating`) only with `importing`, for
        the front end that started it."""
        return await batch_view(self.store, batch_id, importing=importing)

    async def get_batches(self, batch_ids: Sequence[str]) -> list[Batch]:
        """The batches of `batch_ids` that exist, in that order, in a fixed number of
        queries however many are asked for."""
        return await batch_views(self.store, batch_ids)

    async def list_batches(self, *, status: str | None = None, limit: int = 100) -> list[Batch]:
        return await list_views(self.store, status=status, limit=limit)

    async def cancel(self, batch_id: str, *, importing: bool = False) -> Batch:
        """Request cancellation; workers (or `wait`) cancel the provider jobs. With
        `importing`, a batch still being imported too: it ends cancelled once imported."""
        if await self.store.get_batch(batch_id, importing=importing) is None:
            raise NotFoundError(f"no batch {batch_id!r}")
        await self.store.request_cancel(batch_id, time.time())
        return await self.get_batch(batch_id, importing=importing)

    async def retry(
        self,
        batch_id: str,
        *,
        statuses: Collection[str] | None = None,
        model: str | None = None,
        max_attempts: int | None = None,
    ) -> RetryOutcome:
        """Send the requests of an ended batch whose result has one of `statuses`
        (default: errored, expired, cancelled) again, into the same batch, on `model` if
        given; the batch is under way again until they end. Requests the new model's rules
        refuse stay as they were (`RetryOutcome.refused` says why)."""
        return await retry_batch(
            self.ctx, batch_id, statuses=statuses, model=model, max_attempts=max_attempts
        )

    async def results(self, batch_id: str) -> AsyncIterator[Result]:
        """Every result landed so far, in input order."""
        if await self.store.get_batch(batch_id) is None:
            raise NotFoundError(f"no batch {batch_id!r}")
        async for chunk in self.store.iter_results(batch_id):
            retried = [row["custom_id"] for row in chunk if row["attempts"] > 1]
            history = await self.store.history(batch_id, retried) if retried else {}
            for row in chunk:
                yield result_view(row, history.get(row["custom_id"], ()))

    async def result_lines(
        self, batch_id: str, fmt: Format, *, keep: Callable[[str], bool] | None = None
    ) -> AsyncIterator[list[bytes]]:
        """Every result landed so far, in input order, as JSONL lines: OpenAI batch output
        lines (`fmt="openai"`, only of the rows whose status `keep` accepts, if given) or
        ours (`"unified"`), the bytes of `Result.as_openai` / `as_unified`, written from
        the stored rows (for exports of any size), a list of lines at a time."""
        if await self.store.get_batch(batch_id) is None:
            raise NotFoundError(f"no batch {batch_id!r}")
        async for lines in result_lines(self.store, batch_id, fmt, keep=keep):
            yield lines

    # -- driving the lifecycle ---------------------------------------------------------

    def _claims(self) -> tuple[tuple[Kind, Claim, Step], ...]:
        """Each kind of step: how it is claimed and how it runs, in the order a round
        runs them: jobs first, so a batch whose last job just ended is finalized in the
        same round, and deliveries last, so its events go out in that round too."""
        store = self.ctx.store
        return (
            ("job", store.claim_jobs, run_job_step),
            ("batch", store.claim_batches, run_batch_step),
            ("webhook", store.claim_deliveries, run_delivery_step),
        )

    async def run_once(self, *, batch_id: str | None = None, limit: int = 10) -> int:
        """Run the steps that are due now (optionally for one batch), at most `limit` of
        each kind (jobs, batches, webhook deliveries), side by side (`worker_concurrency`
        at once); how many ran."""
        ctx = self.ctx
        lease = ctx.settings.lease_seconds
        pool = StepPool(ctx, ctx.settings.worker_concurrency)
        try:
            for kind, claim, step in self._claims():
                for item in await claim(
                    ctx.owner, ctx.clock(), lease=lease, limit=limit, batch_id=batch_id
                ):
                    pool.start(kind, item.id, partial(step, ctx, item))
                await pool.drain()
        finally:
            await pool.aclose()
        return pool.finished

    async def _claim_into(self, pool: StepPool) -> int:
        """Claim as many due steps as `pool` has free slots, skipping the ones it runs,
        and start them; how many were claimed."""
        ctx = self.ctx
        lease = ctx.settings.lease_seconds
        started = 0
        for kind, claim, step in self._claims():
            if not pool.free:
                break
            for item in await claim(
                ctx.owner, ctx.clock(), lease=lease, limit=pool.free, exclude=pool.running(kind)
            ):
                pool.start(kind, item.id, partial(step, ctx, item))
                started += 1
        return started

    async def _pause(self, pool: StepPool, idle: float, *, until_due: bool) -> None:
        """Wait until enough running steps have ended to claim again (`pool.refill`) or,
        at most `idle` later, something is due (`until_due`; otherwise every slot is busy
        and only steps ending free one). Claiming after each step would cost two write
        transactions per step; waiting for a few slots delays new work by at most `idle`."""
        sleep = self._sleep_until_due(None, idle) if until_due else asyncio.sleep(idle)
        timer = asyncio.ensure_future(sleep)
        changed: asyncio.Future[None] | None = None
        try:
            while True:
                changed = asyncio.ensure_future(pool.wait_changed())
                await asyncio.wait({timer, changed}, return_when=asyncio.FIRST_COMPLETED)
                if timer.done() or pool.free >= pool.refill:
                    break
        finally:
            await _cancelled(*(t for t in (timer, changed) if t is not None and not t.done()))
        if timer.done() and not timer.cancelled():
            timer.result()  # an error while waiting (the database) is the loop's error

    async def _sleep_until_due(self, batch_id: str | None, cap: float) -> None:
        due = await self.store.next_due(batch_id)
        delay = cap if due is None else min(max(due - self.ctx.clock(), 0.0), cap)
        await asyncio.sleep(max(delay, 0.01))

    async def wait(
        self,
        batch_id: str,
        *,
        on_progress: ProgressCallback | None = None,
        interval: float = 1.0,
        timeout: float | None = None,
    ) -> Batch:
        """Drive the batch in-process until it is terminal and its handler has been tried.
        Other workers may share the work: every step is leased."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            worked = await self.run_once(batch_id=batch_id)
            # A batch still being imported (by a gateway, say) is waited for too.
            row = await self.store.get_batch(batch_id, importing=True)
            if row is None:
                raise NotFoundError(f"no batch {batch_id!r}")
            # The full view aggregates every result; build it only when someone looks.
            # Waiting ends once the handler has been tried: a handler that keeps failing is
            # retried by workers, and must not keep `wait` (or `submit --wait`) hanging.
            finished = (
                row.status.terminal
                and (row.handler_state is not HandlerState.PENDING or row.handler_attempts > 0)
                # Its webhooks tried once too (a failing receiver is retried by workers).
                and not await self.store.first_delivery_pending(batch_id)
            )
            if on_progress is not None or finished:
                batch = await self.get_batch(batch_id, importing=True)
                if on_progress is not None:
                    maybe = on_progress(batch)
                    if maybe is not None:
                        await maybe
                if finished:
                    return batch
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"batch {batch_id} still {row.status} after {timeout}s")
            if not worked:
                await self._sleep_until_due(batch_id, interval)

    async def run_worker(self, stop: asyncio.Event, *, idle: float | None = None) -> None:
        """Process due work until `stop` is set (the worker's main loop).

        A database outage does not end it: the loop backs off (up to a minute between
        tries), logs the outage once, and says when it is over. `worker_health()` tells
        how it is doing."""
        idle = idle if idle is not None else self.ctx.settings.worker_idle
        log.info("worker %s started", self.ctx.owner)
        self._worker = WorkerHealth(running=True, last_loop=time.monotonic())
        backoff = 0.0
        next_sweep = 0.0
        # Steps run as tasks, so the loop keeps claiming while a slow poll or a long
        # ingest runs, up to `worker_concurrency` at once.
        pool = StepPool(self.ctx, self.ctx.settings.worker_concurrency)
        try:
            while not stop.is_set():
                try:
                    if time.monotonic() >= next_sweep:
                        # Imports that died half way: failed, never run.
                        await self.sweep_imports()
                        next_sweep = time.monotonic() + self.ctx.settings.lease_seconds
                    wanted = pool.free
                    claimed = await self._claim_into(pool)
                    if not wanted or claimed < wanted:
                        # Full, or nothing more is due now.
                        await self._until(stop, self._pause(pool, idle, until_due=wanted > 0))
                except Exception as exc:
                    if not backoff:
                        log.error(
                            "worker %s: cannot reach the database (%s); retrying with backoff",
                            self.ctx.owner,
                            exc,
                        )
                    backoff = min(max(backoff * 2, 0.5), 60.0)
                    # Shown by the gateway's /health: no connection string passwords.
                    self._worker.error = redact(str(exc))
                    await self._until(stop, asyncio.sleep(backoff))
                else:
                    if backoff:
                        log.warning("worker %s: the database answers again", self.ctx.owner)
                    backoff, self._worker.error = 0.0, None
                self._worker.last_loop = time.monotonic()
            # Stopping lets the steps under way finish, as a step never stops half way
            # by choice; cancelled (or killed), their leases run out and they run again.
            await pool.drain()
        finally:
            await pool.aclose()
            self._worker.running = False
            log.info("worker %s stopped", self.ctx.owner)

    @staticmethod
    async def _until(stop: asyncio.Event, pause: Awaitable[None]) -> None:
        """Await `pause`, or less if `stop` is set meanwhile."""
        sleeper = asyncio.ensure_future(pause)
        stopper = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({sleeper, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            await _cancelled(stopper, *([] if sleeper.done() else [sleeper]))
        if not sleeper.cancelled():
            sleeper.result()  # an error while waiting (the database) is the loop's error

    def worker_health(self) -> WorkerHealth:
        """Whether this engine's worker loop runs, when it last went round, and the error
        it is retrying, if any."""
        return self._worker


async def _cancelled(*tasks: asyncio.Future[Any]) -> None:
    """Cancel `tasks` and wait until they have unwound: a task cancelled mid-query must
    give its connection back before the engine closes, or closing it waits forever. A
    cancellation of the caller meanwhile is raised afterwards, not swallowed."""
    await cancel_and_wait(*tasks)
