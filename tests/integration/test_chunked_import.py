"""A large import is stored in committed chunks while the batch stays invisible: readers and
workers on other connections carry on meanwhile, a bad line leaves nothing behind, and an
import whose process died is failed, never run."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from tests.support.emulated import chat_lines, emulator_state, open_engine
from tests.support.waiting import until
from unibatch.config import Settings
from unibatch.emulators.server import RunningEmulator
from unibatch.engine import Engine
from unibatch.errors import InputError, NotFoundError
from unibatch.store.tables import batches, jobs, requests
from unibatch.types import BatchStatus


class GatedLines:
    """Request lines that stop before line `stop` until the test opens `gate`; `reached`
    tells the test the lines before it have been read (their chunks are being stored)."""

    def __init__(self, lines: list[dict[str, Any]], stop: int) -> None:
        self.lines = lines
        self.stop = stop
        self.reached = threading.Event()
        self.gate = threading.Event()

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for number, line in enumerate(self.lines, start=1):
            if number == self.stop:
                self.reached.set()
                # The bound only keeps a broken run from hanging; the test opens the gate.
                self.gate.wait(timeout=120)
            yield line


async def _count(engine: Engine, table: sa.Table, batch_id: str) -> int:
    column = table.c.id if table is batches else table.c.batch_id
    async with engine.store.engine.connect() as conn:
        query = sa.select(sa.func.count()).select_from(table).where(column == batch_id)
        return int((await conn.execute(query)).scalar_one())


async def _status(engine: Engine, batch_id: str) -> str | None:
    async with engine.store.engine.connect() as conn:
        query = sa.select(batches.c.status).where(batches.c.id == batch_id)
        return (await conn.execute(query)).scalar()


@pytest.fixture
def chunked(fast_settings: Settings) -> Settings:
    return fast_settings.model_copy(update={"ingest_chunk": 50})


async def test_reads_and_worker_claims_go_on_during_a_large_import(
    database_url: str, emulator: RunningEmulator, chunked: Settings
) -> None:
    importer = await open_engine(database_url, emulator, chunked)
    other = await open_engine(database_url, emulator, chunked)
    try:
        earlier = await other.create_batch(chat_lines(3, prefix="e"))
        source = GatedLines(chat_lines(500), stop=201)
        importing = "ubb_big"
        task = asyncio.create_task(importer.create_batch(source, batch_id=importing))
        await asyncio.to_thread(source.reached.wait)
        # Four chunks are committed (the fourth is written while the fifth is read, so
        # it may land just after): another connection sees their rows...

        async def four_chunks() -> bool:
            return await _count(other, requests, importing) == 200

        await until(four_chunks, "the first four chunks to be committed")
        # ...while a status read, a list and a worker step on it go on, not waiting.
        assert (await other.get_batch(earlier)).status is BatchStatus.PENDING
        assert [b.id for b in await other.list_batches()] == [earlier]
        with pytest.raises(NotFoundError):
            await other.get_batch(importing)
        assert await other.run_once() >= 1  # the earlier batch's job is sent
        assert (await other.store.jobs_of(earlier))[0].provider_batch_id is not None
        # The half batch is not run: no jobs, still importing.
        assert await _count(other, jobs, importing) == 0
        assert await _status(other, importing) == "validating"

        source.gate.set()
        assert await task == importing
        done = await other.wait(importing, interval=0.05, timeout=60)
        assert done.status is BatchStatus.COMPLETED and done.request_counts.succeeded == 500
    finally:
        source.gate.set()
        await importer.aclose()
        await other.aclose()


@pytest.mark.parametrize("keep_failed", [False, True])
async def test_a_bad_line_in_a_later_chunk_undoes_the_committed_ones(
    database_url: str, emulator: RunningEmulator, fast_settings: Settings, keep_failed: bool
) -> None:
    engine = await open_engine(
        database_url, emulator, fast_settings.model_copy(update={"ingest_chunk": 2})
    )
    try:
        lines: list[Any] = chat_lines(9)
        lines[6] = {"custom_id": "no-body"}
        with pytest.raises(InputError, match=r"line 7: missing body") as caught:
            await engine.create_batch(lines, batch_id="ubb_bad", keep_failed=keep_failed)
        assert caught.value.line == 7
        assert await _count(engine, requests, "ubb_bad") == 0
        assert await _count(engine, jobs, "ubb_bad") == 0
        if not keep_failed:
            assert await _count(engine, batches, "ubb_bad") == 0
            return
        # Kept for a front end to show: failed, saying which line and why.
        failed = await engine.get_batch("ubb_bad")
        assert failed.status is BatchStatus.FAILED and failed.request_counts.total == 0
        [error] = failed.validation_errors
        assert (error.line, error.param, error.code) == (7, "body", "invalid_request")
        assert failed.errors == ("line 7: missing body (a JSON object)",)
    finally:
        await engine.aclose()


async def test_an_import_whose_process_died_is_failed_and_never_run(
    database_url: str, emulator: RunningEmulator, chunked: Settings
) -> None:
    dead = await open_engine(database_url, emulator, chunked)
    live = await open_engine(database_url, emulator, chunked)
    worker = await open_engine(database_url, emulator, chunked)
    try:
        # The state a killed importer leaves: a validating batch with some chunks, whose
        # lease has run out. Another import is live (its lease is current).
        for engine, batch_id in ((dead, "ubb_dead"), (live, "ubb_live")):
            draft = engine.draft_batch(batch_id=batch_id)
            await engine.store.start_import(draft)
            rows = [(batch_id, i, f"c{i}", "ubj_x", b"", None, None) for i in range(120)]
            for start in range(0, 120, 50):
                await engine.store.import_chunk(
                    batch_id,
                    engine.owner,
                    rows[start : start + 50],
                    lease_until=engine.ctx.lease_until(),
                    duplicate=lambda row: AssertionError(row),
                )
        async with dead.store.engine.begin() as conn:
            await conn.execute(
                batches.update().where(batches.c.id == "ubb_dead").values(lease_until=0.0)
            )

        stop = asyncio.Event()
        loop = asyncio.create_task(worker.run_worker(stop, idle=0.01))
        try:

            async def swept() -> bool:
                return await _status(worker, "ubb_dead") == "failed"

            await until(swept, "the worker to sweep the dead import as it starts")
            for _ in range(5):  # and keeps going round without touching the live import
                await worker.run_once()
        finally:
            stop.set()
            await loop
        failed = await worker.get_batch("ubb_dead")
        assert failed.status is BatchStatus.FAILED
        assert [e.code for e in failed.validation_errors] == ["import_interrupted"]
        assert await _count(worker, requests, "ubb_dead") == 0
        assert await _count(worker, jobs, "ubb_dead") == 0
        assert emulator_state(emulator)["batches"] == []
        # The dead importer, were it only stalled, may not write to it any more.
        with pytest.raises(Exception, match="taken over"):
            await dead.store.finish_import("ubb_dead", dead.owner, [], endpoint="x", now=0.0)

        assert await _status(worker, "ubb_live") == "validating"
        assert await _count(worker, requests, "ubb_live") == 120
        assert await worker.sweep_imports() == 0
    finally:
        for engine in (dead, live, worker):
            await engine.aclose()


async def test_sqlite_reads_do_not_wait_for_a_writer(
    sqlite_url: str, emulator: RunningEmulator, fast_settings: Settings
) -> None:
    writer = await open_engine(sqlite_url, emulator, fast_settings)
    reader = await open_engine(sqlite_url, emulator, fast_settings)
    try:
        batch_id = await writer.create_batch(chat_lines(2))
        async with writer.store.engine.begin() as conn:
            # A write transaction holds the lock (as an ingest chunk does)...
            await conn.execute(
                batches.update().where(batches.c.id == batch_id).values(metadata={"k": "v"})
            )
            # ...and status, list and progress reads on another connection answer at once
            # (they used to wait for the lock and then fail with "database is locked").
            assert (await reader.get_batch(batch_id)).metadata == {}
            assert [b.id for b in await reader.list_batches()] == [batch_id]
        assert (await reader.get_batch(batch_id)).metadata == {"k": "v"}
    finally:
        await writer.aclose()
        await reader.aclose()


async def test_a_batch_cancelled_while_it_is_imported_ends_cancelled_unsent(
    database_url: str, emulator: RunningEmulator, chunked: Settings
) -> None:
    engine = await open_engine(database_url, emulator, chunked)
    source = GatedLines(chat_lines(120), stop=101)
    try:
        task = asyncio.create_task(engine.create_batch(source, batch_id="ubb_cancel"))
        await asyncio.to_thread(source.reached.wait)
        seen = await engine.cancel("ubb_cancel", importing=True)
        assert seen.status is BatchStatus.CANCELLING
        source.gate.set()
        await task
        done = await engine.wait("ubb_cancel", interval=0.02, timeout=30)
        assert done.status is BatchStatus.CANCELLED and done.request_counts.cancelled == 120
        assert emulator_state(emulator)["batches"] == []
    finally:
        source.gate.set()
        await engine.aclose()
