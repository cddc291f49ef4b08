"""The runner of jobs answered from the result cache (`unibatch.engine.cache`)."""

from __future__ import annotations

from unibatch.engine.context import Context
from unibatch.store.records import JobRecord


class CacheRunner:
    """A cache job is created done, its results written with its requests; should one
    ever be found unfinished, finishing it is all there is to do: it sends nothing."""

    async def step(self, ctx: Context, job: JobRecord) -> None:
        await ctx.store.finish_job(job.id, ctx.owner, now=ctx.clock())
