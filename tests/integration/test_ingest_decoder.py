"""Ingest through the decoder helper process: same rows as in-process, and its failures
(an error while downloading, the process dying) cost a retry, never a row."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest
import sqlalchemy as sa

from tests.support.emulated import chat_lines, drive_until_phase, open_engine
from tests.support.waiting import until
from unibatch.config import Settings
from unibatch.decode import wire
from unibatch.emulators import RunningEmulator
from unibatch.engine import Engine
from unibatch.errors import ConfigurationError, PermanentProviderError, TransientProviderError
from unibatch.store.tables import jobs, results
from unibatch.types import BatchStatus

N = 60
MODELS = (
    "openai/gpt-4o-mini",
    "anthropic/claude-haiku-4-5",
    "gemini/gemini-2.5-flash",
    "xai/grok-4-fast-non-reasoning",
)


def _decoded(settings: Settings) -> Settings:
    # Every job through the helper, in chunks small enough to need several frames.
    return settings.model_copy(update={"ingest_process_from": 1, "ingest_chunk": 25})


async def _stored(engine: Engine, batch_id: str) -> list[dict]:
    """The stored result rows, minus what differs between two runs (ids, clocks)."""
    async with engine.store.engine.connect() as conn:
        rows = (
            await conn.execute(
                sa.select(results)
                .where(results.c.batch_id == batch_id)
                .order_by(results.c.custom_id)
            )
        ).mappings()
        varying = {"batch_id", "job_id", "created_at", "row_id", "request_id", "body", "raw"}
        return [{k: v for k, v in row.items() if k not in varying} for row in rows]


async def test_decoded_rows_equal_in_process_rows(
    database_url: str, emulator: RunningEmulator, fast_settings: Settings
) -> None:
    emulator.emulators["openai"].config.failure_rate = 0.2  # some errored rows too
    stored = []
    for settings in (fast_settings, _decoded(fast_settings)):
        engine = await open_engine(database_url, emulator, settings)
        try:
            batch_id = await engine.create_batch(chat_lines(N))
            batch = await engine.wait(batch_id, interval=0.05, timeout=60)
            assert batch.status is BatchStatus.COMPLETED
            assert batch.request_counts.total == N
            assert 0 < batch.request_counts.errored < N
            uses_helper = engine.ctx._decoder is not None
            assert uses_helper == (settings.ingest_process_from == 1)
            stored.append(await _stored(engine, batch_id))
        finally:
            await engine.aclose()
    in_process, decoded = stored
    assert len(decoded) == N
    assert decoded == in_process


async def test_every_provider_decodes_alike_in_the_helper(
    database_url: str, emulator: RunningEmulator, fast_settings: Settings
) -> None:
    """One batch over four providers (Gemini's inline results name requests by `seq`)."""
    lines = [
        line
        for model in MODELS
        for line in chat_lines(6, model=model, prefix=model.partition("/")[0])
    ]
    stored = []
    for settings in (fast_settings, _decoded(fast_settings)):
        engine = await open_engine(database_url, emulator, settings)
        try:
            batch_id = await engine.create_batch(lines)
            batch = await engine.wait(batch_id, interval=0.05, timeout=120)
            assert batch.request_counts.succeeded == len(lines)
            stored.append(await _stored(engine, batch_id))
        finally:
            await engine.aclose()
    assert stored[1] == stored[0]
    assert {row["custom_id"] for row in stored[1]} == {line["custom_id"] for line in lines}


async def test_transient_download_error_is_retried(
    database_url: str, emulator: RunningEmulator, fast_settings: Settings
) -> None:
    openai = emulator.emulators["openai"]
    engine = await open_engine(database_url, emulator, _decoded(fast_settings))
    try:
        batch_id = await engine.create_batch(chat_lines(N))
        await drive_until_phase(engine, batch_id, "ingesting")
        openai.inject_faults(1, status=503)  # the download of the output file
        await engine.run_once(batch_id=batch_id)
        job = (await engine.store.jobs_of(batch_id))[0]
        assert job.phase == "ingesting"
        assert job.transient_errors == 1
        assert "HTTP 503" in job.last_error
        batch = await engine.wait(batch_id, interval=0.05, timeout=60)
        assert batch.request_counts.succeeded == N
    finally:
        await engine.aclose()


async def test_helper_killed_mid_ingest_loses_nothing(
    database_url: str, emulator: RunningEmulator, fast_settings: Settings
) -> None:
    openai = emulator.emulators["openai"]
    settings = _decoded(fast_settings).model_copy(update={"ingest_chunk": 5})
    engine = await open_engine(database_url, emulator, settings)
    try:
        batch_id = await engine.create_batch(chat_lines(400))
        await drive_until_phase(engine, batch_id, "ingesting")
        openai.config.download_chunk_delay = 0.2
        decoder = engine.ctx.decoder()
        await decoder.start(warm=["openai", "no-such-provider"])  # a bad name is ignored
        pid = decoder.pid
        assert pid is not None
        step = asyncio.ensure_future(engine.run_once(batch_id=batch_id))

        async def downloading() -> bool:
            return openai.requests_seen["GET /files/{file_id}/content"] > 0

        # Paced by the emulator, the download has far to go once it has begun.
        await until(downloading, "the helper to start the download")
        os.kill(pid, signal.SIGKILL)
        await step
        job = (await engine.store.jobs_of(batch_id))[0]
        assert job.phase == "ingesting"
        assert "decoder process stopped" in job.last_error

        openai.config.download_chunk_delay = 0.0
        batch = await engine.wait(batch_id, interval=0.05, timeout=60)
        assert batch.request_counts.succeeded == 400
        assert decoder.pid not in (None, pid)  # a fresh helper finished the job
        async with engine.store.engine.connect() as conn:
            count = sa.select(sa.func.count()).select_from(results)
            assert (await conn.execute(count.where(results.c.batch_id == batch_id))).scalar() == 400
            done = sa.select(jobs.c.phase).where(jobs.c.batch_id == batch_id)
            assert (await conn.execute(done)).scalar() == "done"
    finally:
        await engine.aclose()
    assert decoder.pid is None  # closed with the engine


@pytest.mark.parametrize(
    "exc",
    [
        TransientProviderError("slow down", status_code=429, retry_after=2.5),
        PermanentProviderError("gone", status_code=404),
        ConfigurationError("no API key for provider 'openai': set OPENAI_API_KEY"),
    ],
)
def test_provider_errors_cross_the_pipe_as_themselves(exc: Exception) -> None:
    back = wire.decode_error(wire.encode_error(exc))
    assert type(back) is type(exc)
    assert str(back) == str(exc)
    for attr in ("status_code", "retry_after"):
        assert getattr(back, attr, None) == getattr(exc, attr, None)


def test_other_errors_cross_the_pipe_as_decoder_errors() -> None:
    back = wire.decode_error(wire.encode_error(KeyError("custom_id")))
    assert isinstance(back, wire.DecoderError)
    assert "KeyError" in str(back) and "custom_id" in str(back)


def test_records_cross_the_pipe_unchanged() -> None:
    rows = [
        (
            "b",
            "a",
            "j",
            "succeeded",
            200,
            None,
            None,
            None,
            None,
            False,
            1,
            2,
            0,
            0,
            1e-6,
            2e-6,
            b"jx",
            None,
            1.5,
        )
    ]
    assert wire.decode_rows(wire.encode_rows(rows, [(0, 7)])) == (rows, [(0, 7)])
