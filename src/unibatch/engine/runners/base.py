"""The runner interface: how a job's requests reach its provider, one step at a time."""

from __future__ import annotations

from typing import Protocol

from unibatch.engine.context import Context
from unibatch.store.records import JobRecord


class Runner(Protocol):
    """Advances a claimed job by one step and writes its next state through the store.

    A step runs under the job's lease and must be idempotent: after a crash it is run
    again from the state last written. Claiming, leases, result inserts, finalizing and
    the retry of transient errors are shared by every runner (`unibatch.engine.jobs`)."""

    async def step(self, ctx: Context, job: JobRecord) -> None: ...
