"""A worker runs its claimed steps side by side: a slow poll or a long ingest holds up no
other batch (nor the gateway's API), and every step still runs once, in one worker."""

from __future__ import annotations

import asyncio
import collections
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.support.emulated import chat_lines, drive_until_phase, emulator_state, open_engine
from tests.support.waiting import until
from unibatch.config import Settings
from unibatch.emulators import RunningEmulator
from unibatch.engine import Engine
from unibatch.gateway import GatewaySettings, create_app
from unibatch.providers.base import ProviderJob, ResultRow
from unibatch.providers.openai import SPEC as OPENAI
from unibatch.providers.openai.adapter import OpenAIProvider
from unibatch.types import BatchStatus


class GatedPolls(OpenAIProvider):
    """Every poll waits at the provider's door until the test opens it, counting how many
    are waiting there at once."""

    def __init__(self, base_url: str) -> None:
        super().__init__(OPENAI, "test-key", base_url)
        self.open = asyncio.Event()
        self.waiting = 0

    async def get(self, job: ProviderJob) -> ProviderJob:
        self.waiting += 1
        try:
            await self.open.wait()
        finally:
            self.waiting -= 1
        return await super().get(job)


class GatedDownload(OpenAIProvider):
    """The first job's result download stops after its first chunk until the test lets
    it go on; every other download runs freely."""

    def __init__(self, base_url: str) -> None:
        super().__init__(OPENAI, "test-key", base_url)
        self.go_on = asyncio.Event()
        self.stopped = asyncio.Event()
        self._gated_once = False

    async def results(self, job: ProviderJob) -> AsyncIterator[list[ResultRow]]:
        gate, self._gated_once = not self._gated_once, True
        async for rows in super().results(job):
            yield rows
            if gate:
                gate = False
                self.stopped.set()
                await self.go_on.wait()


def _settings(fast_settings: Settings, **changes: object) -> Settings:
    # Decoded in this process, so the gated adapter is the one reading the results.
    return fast_settings.model_copy(
        update={"worker_concurrency": 4, "ingest_process_from": 0, **changes}
    )


async def _status(engine: Engine, batch_id: str) -> BatchStatus:
    return (await engine.get_batch(batch_id)).status


@pytest.mark.parametrize("emulator", [{"in_progress_seconds": 3600.0}], indirect=True)
async def test_a_worker_polls_several_jobs_at_once(
    database_url: str, emulator: RunningEmulator, fast_settings: Settings
) -> None:
    gated = GatedPolls(emulator.base_url("openai"))
    engine = await open_engine(
        database_url, emulator, _settings(fast_settings), overrides={"openai": gated}
    )
    stop = asyncio.Event()
    worker: asyncio.Task[None] | None = None
    try:
        batch_ids = [await engine.create_batch(chat_lines(2, prefix=f"b{n}")) for n in range(3)]
        worker = asyncio.create_task(engine.run_worker(stop))

        async def all_waiting() -> bool:
            return gated.waiting == 3

        # One after another, the second poll would not start before the first ended.
        await until(all_waiting, "three polls in flight at the same time", timeout=30)
        assert not worker.done()
        gated.open.set()

        async def all_polled() -> bool:
            jobs = [(await engine.store.jobs_of(b))[0] for b in batch_ids]
            return all(job.poll_count >= 1 for job in jobs)

        await until(all_polled, "every job's first poll to be recorded", timeout=30)
    finally:
        gated.open.set()
        stop.set()
        if worker is not None:
            await asyncio.wait({worker}, timeout=30)
        await engine.aclose()
    assert worker.done() and worker.exception() is None


async def test_a_blocked_ingest_holds_up_neither_other_batches_nor_health(
    sqlite_url: str, emulator: RunningEmulator, fast_settings: Settings, tmp_path: Path
) -> None:
    gated = GatedDownload(emulator.base_url("openai"))
    engine = await open_engine(
        sqlite_url,
        emulator,
        _settings(fast_settings, ingest_chunk=5),
        overrides={"openai": gated},
    )
    app = create_app(engine, gateway_settings=GatewaySettings(files_dir=tmp_path / "files"))
    transport = httpx.ASGITransport(app=app)
    try:
        slow = await engine.create_batch(chat_lines(40, prefix="slow"))
        await drive_until_phase(engine, slow, "ingesting")
        quick = await engine.create_batch(chat_lines(3, prefix="quick"))
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=transport, base_url="http://gw") as client,
        ):
            try:
                await asyncio.wait_for(gated.stopped.wait(), 30)

                async def quick_done() -> bool:
                    return await _status(engine, quick) is BatchStatus.COMPLETED

                # While the first batch's ingest is stuck half way, the second one is sent,
                # polled, ingested and finalized by the same worker, and the API answers.
                await until(quick_done, "the other batch to complete", timeout=30)
                health = await client.get("/health")
                assert health.status_code == 200 and health.json()["worker"] is True
                assert not (await _status(engine, slow)).terminal
            finally:
                # The worker's graceful stop waits for the ingest under way.
                gated.go_on.set()

            async def slow_done() -> bool:
                return await _status(engine, slow) is BatchStatus.COMPLETED

            await until(slow_done, "the blocked batch to complete once let go", timeout=60)
        assert (await engine.get_batch(slow)).request_counts.succeeded == 40
    finally:
        gated.go_on.set()
        await engine.aclose()


@pytest.mark.postgres
@pytest.mark.parametrize("emulator", [{"create_delay": 0.3}], indirect=True)
async def test_workers_with_concurrency_send_each_job_once(
    postgres_url: str, emulator: RunningEmulator, fast_settings: Settings
) -> None:
    # Leases far shorter than the run, renewed by each worker's heartbeat while its slow
    # creates are under way: a lapse would let another worker send a job a second time.
    settings = fast_settings.model_copy(update={"worker_concurrency": 8, "lease_seconds": 1.0})
    engines = [await open_engine(postgres_url, emulator, settings) for _ in range(3)]
    stop = asyncio.Event()
    workers: list[asyncio.Task[None]] = []
    try:
        batch_ids = [
            await engines[0].create_batch(chat_lines(2, prefix=f"b{n}")) for n in range(24)
        ]
        workers = [asyncio.create_task(engine.run_worker(stop)) for engine in engines]

        async def all_done() -> bool:
            batches = await engines[0].get_batches(batch_ids)
            return all(b.status is BatchStatus.COMPLETED for b in batches)

        await until(all_done, "every batch to complete", timeout=120)
    finally:
        stop.set()
        if workers:
            await asyncio.wait(workers, timeout=30)
        for engine in engines:
            await engine.aclose()
    creates = emulator_state(emulator)["batches"]
    tags = collections.Counter(b["metadata"]["unibatch_tag"] for b in creates)
    assert len(tags) == 24 and set(tags.values()) == {1}
    assert all(w.done() and w.exception() is None for w in workers)


async def test_a_claim_skips_the_steps_a_worker_already_runs(
    database_url: str, emulator: RunningEmulator, fast_settings: Settings
) -> None:
    engine = await open_engine(database_url, emulator, fast_settings)
    try:
        batch_id = await engine.create_batch(chat_lines(2))
        now = engine.ctx.clock()
        # A lease that has already run out (a late heartbeat) leaves the job claimable...
        (job,) = await engine.store.claim_jobs("w", now, lease=-1.0)
        assert job.batch_id == batch_id
        # ...but not by the worker that is still running its step.
        assert await engine.store.claim_jobs("w", now, lease=10.0, exclude={job.id}) == []
        assert [j.id for j in await engine.store.claim_jobs("w", now, lease=10.0)] == [job.id]
    finally:
        await engine.aclose()
