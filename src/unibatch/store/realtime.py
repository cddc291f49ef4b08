"""Named operations of the real-time runner: which requests of a job still need an answer,
and the marker written before each one is sent.

Every write is conditional on the caller's lease of the job, in the same transaction, so
a worker that lost the job to another one stops before sending anything more.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from unibatch.store.records import JobPhase
from unibatch.store.tables import batches, jobs, requests, results
from unibatch.store.tables import realtime_sends as sends
from unibatch.store.transitions import Transitions
from unibatch.types import BatchStatus

# (seq, custom_id, packed body, sends so far: 0 = never sent)
PendingRow = tuple[int, str, bytes, int]
# What `mark_sending` found: go ahead, another worker holds the job, or the batch's
# cancel was asked for (nothing more is sent).
Marked = Literal["ok", "lease_lost", "cancelled"]


class RealtimeOps(Transitions):
    """Mixed into `Store`."""

    engine: AsyncEngine
    dialect: str

    async def realtime_started(self, job_id: str, owner: str, *, now: float) -> bool:
        """The job is being sent request by request (kept leased)."""
        return await self._job(
            job_id,
            owner,
            release=False,
            phase=JobPhase.RUNNING,
            status=BatchStatus.IN_PROGRESS,
            native_status="realtime",
            submitted_at=sa.func.coalesce(jobs.c.submitted_at, now),
        )

    async def realtime_pending(self, job_id: str, *, after: int, limit: int) -> list[PendingRow]:
        """The job's requests past input position `after` that have no result yet, in
        input order, with how many times each was sent before (keyset paging)."""
        query = (
            sa.select(
                requests.c.seq,
                requests.c.custom_id,
                requests.c.body,
                sa.func.coalesce(sends.c.sends, 0),
            )
            .outerjoin(
                results,
                sa.and_(
                    results.c.batch_id == requests.c.batch_id,
                    results.c.custom_id == requests.c.custom_id,
                ),
            )
            .outerjoin(
                sends,
                sa.and_(
                    sends.c.batch_id == requests.c.batch_id,
                    sends.c.custom_id == requests.c.custom_id,
                    # A marker of an earlier job (a retry's first attempt) is not a send
                    # of this one.
                    sends.c.job_id == job_id,
                ),
            )
            .where(
                requests.c.job_id == job_id,
                requests.c.seq > after,
                results.c.custom_id.is_(None),
            )
            .order_by(requests.c.seq)
            .limit(limit)
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [(int(r[0]), str(r[1]), bytes(r[2]), int(r[3])) for r in rows]

    async def mark_sending(
        self,
        batch_id: str,
        job_id: str,
        custom_ids: Sequence[str],
        *,
        owner: str,
        now: float,
        lease_until: float,
    ) -> Marked:
        """Record that these requests are about to be sent (a resend counts one more) and
        extend the job's lease, unless the lease was lost or the batch is being cancelled
        (then nothing is written). Reading the cancel flag here costs no extra round trip
        and stops sending at the first request after a cancel."""
        if self.dialect == "postgresql":
            insert: Any = postgresql.insert(sends)
        else:
            insert = sqlite.insert(sends)
        rows = [
            {
                "batch_id": batch_id,
                "custom_id": custom_id,
                "job_id": job_id,
                "sends": 1,
                "first_sent_at": now,
                "last_sent_at": now,
            }
            for custom_id in custom_ids
        ]
        stmt = insert.on_conflict_do_update(
            index_elements=[sends.c.batch_id, sends.c.custom_id],
            set_={
                # A follow-up job (a retry) starts its own count.
                "sends": sa.case(
                    (sends.c.job_id == insert.excluded.job_id, sends.c.sends + 1), else_=1
                ),
                "job_id": insert.excluded.job_id,
                "first_sent_at": sa.case(
                    (sends.c.job_id == insert.excluded.job_id, sends.c.first_sent_at),
                    else_=insert.excluded.first_sent_at,
                ),
                "last_sent_at": insert.excluded.last_sent_at,
            },
        )
        async with self.engine.begin() as conn:
            renewed = await conn.execute(
                jobs.update()
                .where(jobs.c.id == job_id, jobs.c.lease_owner == owner)
                .values(lease_until=lease_until)
            )
            if not renewed.rowcount:
                return "lease_lost"
            cancelled = await conn.scalar(
                sa.select(batches.c.cancel_requested).where(batches.c.id == batch_id)
            )
            if cancelled or cancelled is None:
                return "cancelled"
            if rows:
                await conn.execute(stmt, rows)
            return "ok"

    async def realtime_done(
        self, job_id: str, owner: str, *, status: BatchStatus, now: float
    ) -> bool:
        """Every request of the job has its result (or the job was cancelled): release it."""
        return await self._job(
            job_id,
            owner,
            release=True,
            phase=JobPhase.DONE,
            status=status,
            native_status="realtime",
            finished_at=now,
            next_run_at=None,
        )

    async def send_counts(self, batch_id: str) -> dict[str, int]:
        """How many times each request of a batch was sent in real time, by custom_id."""
        query = sa.select(sends.c.custom_id, sends.c.sends).where(sends.c.batch_id == batch_id)
        async with self.engine.connect() as conn:
            return {str(r[0]): int(r[1]) for r in (await conn.execute(query)).all()}
