"""Claimed steps running side by side: at most `limit` at once, their leases renewed.

A worker claims due steps (leases in the database) and hands them to a `StepPool`, which
runs them as tasks so a slow provider call or a long ingest holds up nothing else. One
heartbeat renews the leases of every step still running; a step whose lease was lost
(this process stalled past it and another worker took it over) is cancelled, so it never
runs twice at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from unibatch.engine.context import Context

log = logging.getLogger("unibatch.engine")
Kind = Literal["job", "batch", "webhook"]
KINDS: tuple[Kind, ...] = ("job", "batch", "webhook")


class StepPool:
    """Runs claimed steps concurrently, at most `limit` at once.

    >>> pool = StepPool(ctx, limit=32)                  # doctest: +SKIP
    >>> pool.start("job", job.id, partial(run_job_step, ctx, job))
    >>> await pool.drain()
    """

    def __init__(self, ctx: Context, limit: int) -> None:
        self._ctx = ctx
        self.limit = max(1, limit)
        # A worker claims again once this many slots are free (or after its idle time):
        # a claim per finished step would double the database's write transactions.
        self.refill = max(1, self.limit // 8)
        self._gate = asyncio.Semaphore(self.limit)
        self._running: dict[tuple[Kind, str], asyncio.Task[None]] = {}
        self._changed = asyncio.Event()
        self._beat: asyncio.Task[None] | None = None
        self.finished = 0

    @property
    def free(self) -> int:
        """How many more steps may start now without waiting for a slot."""
        return max(0, self.limit - len(self._running))

    def __len__(self) -> int:
        return len(self._running)

    def running(self, kind: Kind) -> set[str]:
        """Ids of the `kind` steps this pool runs: a worker must not claim them again."""
        return {item_id for k, item_id in self._running if k == kind}

    def start(self, kind: Kind, item_id: str, step: Callable[[], Awaitable[None]]) -> None:
        """Run `step` as soon as a slot is free (at once when `free` > 0)."""
        key = (kind, item_id)
        if key in self._running:
            # The lease is ours and the step is under way: running it again would
            # repeat its provider call (a second submit, say).
            log.warning("%s %s: already running here; not started twice", kind, item_id)
            return
        task = asyncio.ensure_future(self._run(step))
        self._running[key] = task
        task.add_done_callback(lambda t: self._done(key, t))
        if self._beat is None or self._beat.done():
            self._beat = asyncio.ensure_future(self._heartbeat())

    async def _run(self, step: Callable[[], Awaitable[None]]) -> None:
        async with self._gate:
            await step()

    def _done(self, key: tuple[Kind, str], task: asyncio.Task[None]) -> None:
        if self._running.get(key) is task:
            del self._running[key]
        self.finished += 1
        _report(task, *key)
        self._changed.set()

    async def wait_changed(self) -> None:
        """Return when a step finishes (at once if one finished since the last call)."""
        await self._changed.wait()
        self._changed.clear()

    async def drain(self) -> None:
        """Wait until every step has finished."""
        while self._running:
            await asyncio.wait(set(self._running.values()))
        await self._stop_beat()

    async def aclose(self) -> None:
        """Cancel the steps still running (their leases run out; another worker, or this
        one later, runs them again) and wait until they have unwound."""
        tasks = list(self._running.values())
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
        await self._stop_beat()

    async def _stop_beat(self) -> None:
        beat, self._beat = self._beat, None
        if beat is not None:
            await cancel_and_wait(beat)

    async def _heartbeat(self) -> None:
        """Renew the leases of every running step, every third of a lease: a slow provider
        call must not let another worker take a step over mid-flight (and, say, create a
        second provider batch)."""
        ctx = self._ctx
        lease = ctx.settings.lease_seconds
        while self._running:
            await asyncio.sleep(lease / 3)
            for kind in KINDS:
                ids = self.running(kind)
                if not ids:
                    continue
                try:
                    kept = await ctx.store.renew_leases(
                        kind, ids, ctx.owner, until=ctx.clock() + lease
                    )
                except Exception as exc:
                    log.warning("%s leases could not be renewed (%s); trying again", kind, exc)
                    continue
                if kept != ids:
                    await self._stop_lost(kind, ids - kept)

    async def _stop_lost(self, kind: Kind, ids: set[str]) -> None:
        """Cancel the steps whose lease another worker holds now. A lease nobody holds was
        released by its own step, which has written its outcome and is just returning."""
        try:
            owners = await self._ctx.store.lease_owners(kind, ids)
        except Exception as exc:
            log.warning("%s leases could not be read (%s); trying again", kind, exc)
            return
        for item_id in ids:
            owner = owners.get(item_id)
            task = self._running.get((kind, item_id))
            if task is not None and owner is not None and owner != self._ctx.owner:
                log.warning("%s %s: lease lost to another worker; step stopped", kind, item_id)
                task.cancel()


async def cancel_and_wait(*tasks: asyncio.Future[Any]) -> None:
    """Cancel `tasks` and wait until they have unwound (a task cancelled mid-query gives
    its connection back first). A cancellation of the caller meanwhile is raised once
    they have, never swallowed: `with suppress(CancelledError): await task` would
    swallow it too, and the caller (`Engine.wait`, say) would go on as if it had not been
    cancelled. An error a task ended with is raised (the first one), as awaiting it would."""
    for task in tasks:
        task.cancel()
    interrupted: asyncio.CancelledError | None = None
    while not all(task.done() for task in tasks):
        try:
            await asyncio.wait([task for task in tasks if not task.done()])
        except asyncio.CancelledError as exc:
            interrupted = exc
    errors = [task.exception() for task in tasks if not task.cancelled()]
    if interrupted is not None:
        raise interrupted  # the errors above are retrieved: the cancellation goes first
    for error in errors:
        if error is not None:
            raise error


def _report(task: asyncio.Task[None], kind: str, item_id: str) -> None:
    """A bug or outage in one step must not stop the worker: log it and move on. The
    lease runs out and the step is retried later."""
    if task.cancelled():
        return
    exc = task.exception()
    if exc is not None:
        log.error(
            "%s %s: step failed; it will be retried when its lease ends",
            kind,
            item_id,
            exc_info=exc,
        )
