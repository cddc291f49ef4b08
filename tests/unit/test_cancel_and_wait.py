"""Cancelling a task and waiting for it to unwind must not swallow a cancellation of the
waiter itself: `Engine.wait` cancelled while its step pool stopped the lease heartbeat
went on waiting for good (`with suppress(CancelledError): await beat` took the waiter's
cancellation for the heartbeat's)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from unibatch.engine.steps import StepPool, cancel_and_wait


class Slow:
    """A task that waits until cancelled, then takes until `release` to end (as a task
    cancelled in the middle of a query gives its connection back first). `ended` lists
    who finished, in order, for the test to compare with its waiter's end."""

    def __init__(self, ended: list[str]) -> None:
        self.started, self.unwinding, self.release = (asyncio.Event() for _ in range(3))
        self.ended = ended

    async def run(self) -> None:
        self.started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.unwinding.set()
            await self.release.wait()
            self.ended.append("task")
            raise

    async def task(self) -> asyncio.Task[None]:
        """The task, once it runs (a task cancelled before it starts never unwinds)."""
        task = asyncio.ensure_future(self.run())
        await self.started.wait()
        return task


async def test_the_waiters_own_cancellation_is_raised_once_the_task_has_unwound() -> None:
    ended: list[str] = []
    slow = Slow(ended)
    task = await slow.task()

    async def waiter_of() -> None:
        try:
            await cancel_and_wait(task)
        finally:
            ended.append("waiter")

    waiter = asyncio.ensure_future(waiter_of())
    await slow.unwinding.wait()
    waiter.cancel()
    slow.release.set()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert ended == ["task", "waiter"]  # the waiter ended only once the task had
    assert task.cancelled()


async def test_a_task_that_ends_cancelled_is_no_error_and_an_error_is_raised() -> None:
    slow = Slow([])
    slow.release.set()
    task = await slow.task()
    await cancel_and_wait(task)
    assert task.cancelled()

    started = asyncio.Event()

    async def fails_when_cancelled() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            raise RuntimeError("unwinding failed") from None

    failing = asyncio.ensure_future(fails_when_cancelled())
    await started.wait()
    with pytest.raises(RuntimeError, match="unwinding failed"):
        await cancel_and_wait(failing)
    with pytest.raises(RuntimeError, match="unwinding failed"):
        await cancel_and_wait(failing)  # already done: its error again, nothing waits

    async def returns() -> None:
        return None

    finished = asyncio.ensure_future(returns())
    await finished
    await cancel_and_wait(finished)


class _Settings:
    lease_seconds = 30.0


class _Ctx:
    settings = _Settings()


async def test_a_pool_drained_by_a_cancelled_caller_raises_the_cancellation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    slow, step_done = Slow([]), asyncio.Event()

    async def heartbeat(self: StepPool) -> None:
        await slow.run()

    monkeypatch.setattr(StepPool, "_heartbeat", heartbeat)
    pool = StepPool(_Ctx(), limit=2)  # type: ignore[arg-type]
    pool.start("job", "ubj_1", step_done.wait)

    async def run_once() -> Any:
        await pool.drain()
        return "returned as if not cancelled"

    caller = asyncio.ensure_future(run_once())
    step_done.set()
    # The step has ended; draining now stops the heartbeat, which is slow to unwind.
    await slow.unwinding.wait()
    caller.cancel()
    slow.release.set()
    with pytest.raises(asyncio.CancelledError):
        await caller


async def test_every_task_is_cancelled_though_the_waiter_is_cancelled_meanwhile() -> None:
    slow = Slow([])
    task = await slow.task()
    other = asyncio.ensure_future(asyncio.Event().wait())
    waiter = asyncio.ensure_future(cancel_and_wait(task, other))
    await slow.unwinding.wait()
    waiter.cancel()
    slow.release.set()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert task.cancelled() and other.cancelled()
