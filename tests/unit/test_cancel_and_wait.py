"""Cancelling a task and waiting for it to unwind must not swallow a cancellation of the
waiter itself: `Engine.wait` cancelled while its step pool stopped the lease heartbeat
went on waiting for good (`with suppress(CancelledError): await beat` took the waiter's
cancellation for the heartbeat's)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from unibatch.engine.steps import StepPool, cancel_and_wait


async def waits_then_unwinds_slowly(unwinding: asyncio.Event, release: asyncio.Event) -> None:
    """Waits until cancelled, then takes until `release` to end (as a task cancelled in
    the middle of a query gives its connection back first)."""
    try:
        await asyncio.Event().wait()
    except asyncio.CancelledError:
        unwinding.set()
        await release.wait()
        raise


def slow_to_unwind(unwinding: asyncio.Event, release: asyncio.Event) -> asyncio.Task[None]:
    return asyncio.ensure_future(waits_then_unwinds_slowly(unwinding, release))


async def test_the_waiters_own_cancellation_is_raised_once_the_task_has_unwound() -> None:
    unwinding, release = asyncio.Event(), asyncio.Event()
    task = slow_to_unwind(unwinding, release)
    await asyncio.sleep(0)
    waiter = asyncio.ensure_future(cancel_and_wait(task))
    await unwinding.wait()
    waiter.cancel()
    await asyncio.sleep(0)
    assert not waiter.done()  # still waiting for the task to unwind
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert task.cancelled()


async def test_a_task_that_ends_cancelled_is_no_error_and_an_error_is_raised() -> None:
    unwinding, release = asyncio.Event(), asyncio.Event()
    release.set()
    task = slow_to_unwind(unwinding, release)
    await asyncio.sleep(0)
    await cancel_and_wait(task)
    assert task.cancelled()

    async def fails_when_cancelled() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            raise RuntimeError("unwinding failed") from None

    failing = asyncio.ensure_future(fails_when_cancelled())
    await asyncio.sleep(0)
    with pytest.raises(RuntimeError, match="unwinding failed"):
        await cancel_and_wait(failing)
    with pytest.raises(RuntimeError, match="unwinding failed"):
        await cancel_and_wait(failing)  # already done: its error again, nothing waits
    finished = asyncio.ensure_future(asyncio.sleep(0))
    await finished
    await cancel_and_wait(finished)


class _Settings:
    lease_seconds = 30.0


class _Ctx:
    settings = _Settings()


async def test_a_pool_drained_by_a_cancelled_caller_raises_the_cancellation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    unwinding, release, step_done = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def heartbeat(self: StepPool) -> None:
        await waits_then_unwinds_slowly(unwinding, release)

    monkeypatch.setattr(StepPool, "_heartbeat", heartbeat)
    pool = StepPool(_Ctx(), limit=2)  # type: ignore[arg-type]
    pool.start("job", "ubj_1", step_done.wait)

    async def run_once() -> Any:
        await pool.drain()
        return "returned as if not cancelled"

    caller = asyncio.ensure_future(run_once())
    step_done.set()
    # The step has ended; draining now stops the heartbeat, which is slow to unwind.
    await unwinding.wait()
    caller.cancel()
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await caller


async def test_every_task_is_cancelled_though_the_waiter_is_cancelled_meanwhile() -> None:
    unwinding, release = asyncio.Event(), asyncio.Event()
    slow = slow_to_unwind(unwinding, release)
    other = asyncio.ensure_future(asyncio.Event().wait())
    await asyncio.sleep(0)
    waiter = asyncio.ensure_future(cancel_and_wait(slow, other))
    await unwinding.wait()
    waiter.cancel()
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert slow.cancelled() and other.cancelled()
