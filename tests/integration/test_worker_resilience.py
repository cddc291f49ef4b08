"""Workers outlive database outages, and keep the steps they run: leases are renewed while
a slow step runs, so another worker never takes it over mid-flight."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from tests.support.emulated import chat_lines, emulator_state, provider_env
from unibatch.config import Settings
from unibatch.emulators import RunningEmulator
from unibatch.engine import Engine
from unibatch.gateway import GatewaySettings, create_app
from unibatch.providers.base import JobSpec, ProviderJob, RequestLine
from unibatch.providers.openai import SPEC as OPENAI
from unibatch.providers.openai.adapter import OpenAIProvider
from unibatch.providers.registry import ProviderSet
from unibatch.store import Store, open_store
from unibatch.types import BatchStatus


class OutageStore(Store):
    """The store, with the database unreachable for claims while `down` is set (what a
    PostgreSQL restart or a long SQLite write lock looks like to the worker loop)."""

    down = False

    async def claim_jobs(self, *args: Any, **kwargs: Any) -> Any:
        if self.down:
            raise sa.exc.OperationalError("SELECT … FOR UPDATE", {}, ConnectionRefusedError())
        return await super().claim_jobs(*args, **kwargs)


async def until(condition: Any, what: str, timeout: float = 60) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await condition():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


async def test_worker_survives_a_database_outage(
    database_url: str,
    emulator: RunningEmulator,
    fast_settings: Settings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    opened = await open_store(database_url)
    store = OutageStore(opened.engine)
    engine = Engine(store, fast_settings, ProviderSet(provider_env(emulator)))
    stop = asyncio.Event()
    worker: asyncio.Task[None] | None = None
    try:
        batch_id = await engine.create_batch(chat_lines(5))
        store.down = True
        worker = asyncio.create_task(engine.run_worker(stop))

        async def failing() -> bool:
            return engine.worker_health().error is not None

        await until(failing, "the worker to notice the outage")
        await asyncio.sleep(0)
        assert not worker.done() and engine.worker_health().running
        store.down = False

        async def finished() -> bool:
            return (await engine.get_batch(batch_id)).status is BatchStatus.COMPLETED

        await until(finished, "the batch to complete after the outage")
        assert engine.worker_health().error is None
        stop.set()
        await asyncio.wait({worker}, timeout=30)
        assert worker.done() and not engine.worker_health().running
    finally:
        stop.set()
        if worker is not None:
            await asyncio.wait({worker}, timeout=30)
        await engine.aclose()
    messages = [r.getMessage() for r in caplog.records]
    assert sum("cannot reach the database" in m for m in messages) == 1  # once per outage
    assert any("answers again" in m for m in messages)


class SlowUpload(OpenAIProvider):
    """Spends longer than a lease before it starts sending the job (a slow network)."""

    delay = 4.0

    async def submit(self, spec: JobSpec, lines: AsyncIterable[RequestLine]) -> ProviderJob:
        await asyncio.sleep(self.delay)
        return await super().submit(spec, lines)


async def test_a_slow_step_keeps_its_lease(
    database_url: str, emulator: RunningEmulator, fast_settings: Settings
) -> None:
    settings = fast_settings.model_copy(update={"lease_seconds": 1.5})
    env = provider_env(emulator)
    slow = SlowUpload(OPENAI, "k", env["OPENAI_BASE_URL"])
    first = await Engine.open(
        database_url, settings=settings, providers=ProviderSet(env, overrides={"openai": slow})
    )
    second = await Engine.open(database_url, settings=settings, providers=ProviderSet(env))
    try:
        batch_id = await first.create_batch(chat_lines(5))
        submitting = asyncio.create_task(first.run_once(batch_id=batch_id))

        async def claimed() -> bool:
            (job,) = await first.store.jobs_of(batch_id)
            return job.phase == "submitting"

        await until(claimed, "the first worker to start submitting")
        # The other worker keeps looking for due work while the first is stuck in submit,
        # far past the first worker's original lease.
        while not submitting.done():
            await second.run_once(batch_id=batch_id)
            await asyncio.sleep(0.05)
        assert submitting.result() == 1
        assert len(emulator_state(emulator)["batches"]) == 1
        batch = await second.wait(batch_id, interval=0.05, timeout=60)
        assert batch.request_counts.succeeded == 5
        assert len(emulator_state(emulator)["batches"]) == 1  # sent once, by its owner
    finally:
        await first.aclose()
        await second.aclose()


async def test_health_answers_503_while_the_worker_cannot_reach_the_database(
    sqlite_url: str, emulator: RunningEmulator, fast_settings: Settings, tmp_path: Any
) -> None:
    opened = await open_store(sqlite_url)
    store = OutageStore(opened.engine)
    engine = Engine(store, fast_settings, ProviderSet(provider_env(emulator)))
    app = create_app(engine, gateway_settings=GatewaySettings(files_dir=tmp_path / "files"))
    transport = httpx.ASGITransport(app=app)
    try:
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=transport, base_url="http://gw") as client,
        ):

            async def status(code: int) -> bool:
                return (await client.get("/health")).status_code == code

            await until(lambda: status(200), "a healthy worker")
            store.down = True
            await until(lambda: status(503), "/health to report the outage")
            body = (await client.get("/health")).json()
            assert (body["status"], body["worker"]) == ("unavailable", False)
            assert "ConnectionRefusedError" in body["worker_error"]
            store.down = False
            await until(lambda: status(200), "/health to report the recovery")
    finally:
        await engine.aclose()
