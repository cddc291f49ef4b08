"""Named state changes of leased jobs and batches: one method per step outcome.

Every write here is conditional on the caller still holding the row's lease and
returns False when it does not (another worker took the row over; the caller stops).
Methods that end a step release the lease; the others keep it for the rest of the step.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from unibatch.store.records import HandlerState, JobPhase, ProviderState
from unibatch.store.tables import batches, jobs, webhook_deliveries
from unibatch.types import BatchStatus

# A job whose provider batch is forgotten, to be sent again from the start.
SENT_AGAIN: dict[str, Any] = {
    "phase": JobPhase.PENDING,
    "status": BatchStatus.PENDING,
    "provider_batch_id": None,
    "native_status": None,
    "input_file_id": None,
    "output_file_id": None,
    "error_file_id": None,
    "provider_completed": 0,
    "provider_failed": 0,
    "provider_cancelled": 0,
    "errors": [],
    "submitted_at": None,
    "cancel_sent": False,
    "poll_count": 0,
    "transient_errors": 0,
}


async def wake_waiting(conn: AsyncConnection, job_id: str, now: float) -> None:
    """A job left its provider's queue: the jobs waiting there for room look again at
    `now` instead of at their next scheduled look (`unibatch.store.queue`)."""
    provider = sa.select(jobs.c.provider).where(jobs.c.id == job_id).scalar_subquery()
    await conn.execute(
        jobs.update()
        .where(
            jobs.c.provider == provider,
            jobs.c.phase == JobPhase.PENDING,
            jobs.c.queue_wait.is_not(None),
            jobs.c.next_run_at > now,
        )
        .values(next_run_at=now)
    )


# The leased table of each kind of step (`unibatch.engine.steps`).
_LEASED = {"job": jobs, "batch": batches, "webhook": webhook_deliveries}


class Transitions:
    """Mixed into `Store`: the state changes the engine's steps make."""

    engine: AsyncEngine

    async def _update_leased(
        self,
        table: sa.Table,
        item_id: str,
        owner: str,
        release: bool,
        values: dict[str, Any],
        *,
        flush: bool = True,
        wake_at: float | None = None,
    ) -> bool:
        if release:
            values.update(lease_owner=None, lease_until=None)
        async with self.engine.begin() as conn:
            if not flush and conn.dialect.name == "postgresql":
                await conn.exec_driver_sql("SET LOCAL synchronous_commit TO OFF")
            result = await conn.execute(
                table.update()
                .where(table.c.id == item_id, table.c.lease_owner == owner)
                .values(values)
            )
            if result.rowcount and wake_at is not None:
                await wake_waiting(conn, item_id, wake_at)
            return bool(result.rowcount)

    async def _job(
        self,
        job_id: str,
        owner: str,
        *,
        release: bool,
        flush: bool = True,
        wake_at: float | None = None,
        **values: Any,
    ) -> bool:
        """Update a leased job; `wake_at`: it leaves its provider's queue, so the jobs
        waiting for room there are due at that time."""
        return await self._update_leased(
            jobs, job_id, owner, release, values, flush=flush, wake_at=wake_at
        )

    async def _batch(self, batch_id: str, owner: str, *, release: bool, **values: Any) -> bool:
        return await self._update_leased(batches, batch_id, owner, release, values)

    # -- jobs ------------------------------------------------------------------------

    async def renew_leases(
        self, kind: str, ids: Collection[str], owner: str, *, until: float
    ) -> set[str]:
        """Extend `owner`'s leases of these jobs, batches or webhook deliveries (`kind`) to
        `until`; the ids it still held (a lease taken over by another worker is not renewed)."""
        table = _LEASED[kind]
        async with self.engine.begin() as conn:
            result = await conn.execute(
                table.update()
                .where(table.c.id.in_(list(ids)), table.c.lease_owner == owner)
                .values(lease_until=until)
                .returning(table.c.id)
            )
            return {row[0] for row in result}

    async def lease_owners(self, kind: str, ids: Collection[str]) -> dict[str, str | None]:
        """Who holds the lease of these jobs, batches or deliveries now (None: nobody)."""
        table = _LEASED[kind]
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                sa.select(table.c.id, table.c.lease_owner).where(table.c.id.in_(list(ids)))
            )
            return {row[0]: row[1] for row in rows}

    async def release_job(self, job_id: str, owner: str) -> bool:
        """Give a job back unchanged (it is due again at once)."""
        return await self._job(job_id, owner, release=True)

    async def job_submitting(self, job_id: str, owner: str, *, attempts: int) -> bool:
        """About to send the job: recorded before the upload, so that after a crash the
        next attempt looks for the provider batch instead of creating another."""
        return await self._job(
            job_id, owner, release=False, phase=JobPhase.SUBMITTING, submit_attempts=attempts
        )

    async def job_running(
        self,
        job_id: str,
        owner: str,
        state: ProviderState,
        *,
        submitted_at: float,
        next_run_at: float,
    ) -> bool:
        """The provider accepted the job (or it was found there after a restart)."""
        return await self._job(
            job_id,
            owner,
            release=True,
            phase=JobPhase.RUNNING,
            submitted_at=submitted_at,
            transient_errors=0,
            poll_count=0,
            next_run_at=next_run_at,
            **state.values(),
        )

    async def job_polled(
        self, job_id: str, owner: str, state: ProviderState, *, poll_count: int, next_run_at: float
    ) -> bool:
        """The provider's batch is still running; look again at `next_run_at`.

        On PostgreSQL the commit does not wait for its WAL flush (the most frequent write
        of a worker with many jobs in flight): a server crash may lose the latest of these
        commits, never an earlier one alone, and a lost one only means the job is polled
        again (a read; its lease has lapsed by then)."""
        return await self._job(
            job_id,
            owner,
            release=True,
            flush=False,
            poll_count=poll_count,
            transient_errors=0,
            next_run_at=next_run_at,
            **state.values(),
        )

    async def job_cancel_sent(self, job_id: str, owner: str) -> bool:
        """The cancel reached the provider; it is not sent again."""
        return await self._job(job_id, owner, release=False, cancel_sent=True)

    async def job_ingesting(
        self, job_id: str, owner: str, state: ProviderState, *, next_run_at: float
    ) -> bool:
        """The provider's batch ended: its results are to be read."""
        return await self._job(
            job_id,
            owner,
            release=True,
            wake_at=next_run_at,
            phase=JobPhase.INGESTING,
            transient_errors=0,
            next_run_at=next_run_at,
            **state.values(),
        )

    async def job_given_up(
        self, job_id: str, owner: str, error: str, *, next_run_at: float
    ) -> bool:
        """The provider kept refusing to report on the job: it failed, but whatever
        results it has are still read (the job goes through ingest)."""
        return await self._job(
            job_id,
            owner,
            release=True,
            wake_at=next_run_at,
            phase=JobPhase.INGESTING,
            status=BatchStatus.FAILED,
            errors=[error],
            last_error=error,
            next_run_at=next_run_at,
        )

    async def fail_job(self, job_id: str, owner: str, error: str, *, now: float) -> bool:
        """The provider refused the job for good: it is done, with nothing to ingest."""
        return await self._job(
            job_id,
            owner,
            release=True,
            wake_at=now,
            phase=JobPhase.DONE,
            status=BatchStatus.FAILED,
            errors=[error],
            last_error=error,
            finished_at=now,
            next_run_at=None,
        )

    async def resubmit_job(self, job_id: str, owner: str, error: str, *, now: float) -> bool:
        """The provider batch recorded for the job was not its own (adopted after a crash):
        forget it and send the job again."""
        return await self._job(
            job_id, owner, release=True, **SENT_AGAIN, last_error=error, next_run_at=now
        )

    async def cancel_job(self, job_id: str, owner: str, *, now: float) -> bool:
        """The batch was cancelled before the job was sent."""
        return await self._job(
            job_id,
            owner,
            release=True,
            phase=JobPhase.DONE,
            status=BatchStatus.CANCELLED,
            finished_at=now,
            next_run_at=None,
        )

    async def set_job_price(self, job_id: str, price: str | None) -> None:
        """Record the price (JSON text) the job's results are costed at."""
        async with self.engine.begin() as conn:
            await conn.execute(jobs.update().where(jobs.c.id == job_id).values(price=price))

    async def finish_job(self, job_id: str, owner: str, *, now: float) -> bool:
        """Every result of the job is stored."""
        return await self._job(
            job_id, owner, release=True, phase=JobPhase.DONE, finished_at=now, next_run_at=None
        )

    async def retry_job_later(
        self,
        job_id: str,
        owner: str,
        error: str,
        *,
        at: float,
        transient_errors: int | None = None,
    ) -> bool:
        """The step failed in a way time may fix: run it again at `at`. A transient
        error also records how many came in a row (they widen the backoff)."""
        values: dict[str, Any] = {"last_error": error, "next_run_at": at}
        if transient_errors is not None:
            values["transient_errors"] = transient_errors
        return await self._job(job_id, owner, release=True, **values)

    # -- batches ---------------------------------------------------------------------

    async def release_batch(self, batch_id: str, owner: str) -> bool:
        return await self._batch(batch_id, owner, release=True)

    async def handler_due(self, batch_id: str, owner: str, *, at: float) -> bool:
        """A finalized batch has a completion handler to call."""
        return await self._batch(
            batch_id, owner, release=False, handler_state=HandlerState.PENDING, next_run_at=at
        )

    async def handler_failed(
        self, batch_id: str, owner: str, error: str, *, attempts: int, retry_at: float
    ) -> bool:
        """The handler raised; it is called again at `retry_at`."""
        return await self._batch(
            batch_id,
            owner,
            release=True,
            handler_attempts=attempts,
            handler_error=error,
            next_run_at=retry_at,
        )

    async def handler_done(self, batch_id: str, owner: str, *, attempts: int) -> bool:
        return await self._batch(
            batch_id,
            owner,
            release=True,
            handler_state=HandlerState.DONE,
            handler_attempts=attempts,
            handler_error=None,
            next_run_at=None,
        )
