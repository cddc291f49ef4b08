"""Named operations of deadlines (`unibatch.engine.deadline`): what a batch still has to
run, how fast the real-time runner has been running a model, and the switch itself.

The switch is one conditional write of the batch (`deadline_switched_at`, set once): every
worker polling one of the batch's provider jobs reads it with its claim and cancels that
job; nothing else changes until the jobs have ended and the batch's round is closed
(`Store.finalize`), where the unfinished requests move to real-time jobs in the
transaction that closes it.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from unibatch.store.records import JobMode, JobPhase
from unibatch.store.tables import batches, jobs
from unibatch.store.transitions import Transitions

# Real-time jobs read to measure a model's throughput: the most recent ones.
_RECENT_RUNS = 20


class DeadlineOps(Transitions):
    """Mixed into `Store`."""

    engine: AsyncEngine

    async def unfinished_by_model(self, batch_id: str) -> list[tuple[str, str, int]]:
        """Per provider and model, the requests of the batch's Batch API jobs that have
        not ended, less those the provider last said were done."""
        j = jobs.c
        left = j.request_count - j.provider_completed - j.provider_failed
        query = (
            sa.select(j.provider, j.model, sa.func.sum(left))
            .where(j.batch_id == batch_id, j.mode == JobMode.BATCH, j.phase != JobPhase.DONE)
            .group_by(j.provider, j.model)
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [(str(p), str(m), max(int(n or 0), 0)) for p, m, n in rows]

    async def realtime_runs(
        self, provider: str, model: str, *, since: float
    ) -> list[tuple[int, float]]:
        """The request count and duration (seconds) of the most recent real-time jobs of
        `provider/model` that ended after `since`, in any batch."""
        j = jobs.c
        query = (
            sa.select(j.request_count, j.finished_at - j.submitted_at)
            .where(
                j.provider == provider,
                j.model == model,
                j.mode == JobMode.REALTIME,
                j.phase == JobPhase.DONE,
                j.status == "completed",
                j.submitted_at.is_not(None),
                j.finished_at > since,
            )
            .order_by(j.finished_at.desc())
            .limit(_RECENT_RUNS)
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [(int(n), float(d)) for n, d in rows if n and d is not None and d > 0]

    async def switch_to_realtime(self, batch_id: str, now: float) -> None:
        """The batch stops waiting for the Batch API (once: a later call keeps the first
        time). Its jobs not sent yet are due at once: one waiting out a retry's backoff
        runs in real time now instead of after it."""
        j = jobs.c
        async with self.engine.begin() as conn:
            await conn.execute(
                batches.update()
                .where(batches.c.id == batch_id, batches.c.deadline_switched_at.is_(None))
                .values(deadline_switched_at=now)
            )
            await conn.execute(
                jobs.update()
                .where(
                    j.batch_id == batch_id,
                    j.mode == JobMode.BATCH,
                    j.phase == JobPhase.PENDING,
                    j.next_run_at > now,
                )
                .values(next_run_at=now)
            )

    async def job_to_realtime(self, job_id: str, owner: str, *, now: float) -> bool:
        """A job not yet sent runs through the real-time runner instead (due at once; no
        longer waiting for room in the provider's batch queue)."""
        return await self._job(
            job_id, owner, release=True, mode=JobMode.REALTIME, next_run_at=now, queue_wait=None
        )
