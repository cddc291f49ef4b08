"""Waiting for a condition with a deadline, the only way tests wait."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def until(
    condition: Callable[[], Awaitable[bool]], what: str, timeout: float = 10.0, step: float = 0.02
) -> None:
    """Return once `condition()` is true; fail naming `what` after `timeout` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(step)


def polled(
    fetch: Callable[[], T], done: Callable[[T], bool], what: str, timeout: float = 120.0
) -> T:
    """Call `fetch` until `done` holds for its answer, and return that answer; fail naming
    `what` and the last answer after `timeout` seconds (generous: the deadline only stops
    a test that would never end, it is not part of what the test checks)."""
    deadline = time.monotonic() + timeout
    while not done(value := fetch()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}: {value!r}")
        time.sleep(0.02)
    return value
