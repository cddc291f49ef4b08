"""A store operation that dies the first time it is called, as a killed worker would."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any


class KilledOnce:
    """Wraps `real`: its first call raises, after running it (its writes are rolled back
    with the transaction it runs in) when `runs_first`, else before it runs; `calls`
    records what that first call returned (None when it did not run). `on_kill` runs just
    before the raise (a test moving its clock past the dead worker's leases, say)."""

    def __init__(
        self,
        real: Callable[..., Awaitable[Any]],
        *,
        runs_first: bool,
        on_kill: Callable[[], None] = lambda: None,
    ) -> None:
        self.real, self.runs_first, self.on_kill = real, runs_first, on_kill
        self.calls: list[Any] = []

    async def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.calls:
            return await self.real(*args, **kwargs)
        self.calls.append(await self.real(*args, **kwargs) if self.runs_first else None)
        self.on_kill()
        raise RuntimeError("worker killed")
