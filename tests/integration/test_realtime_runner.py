"""The real-time runner against the emulators over loopback HTTP: every request answered
once, 429s waited out, limits respected (counted at the emulator), crashes resumed."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import orjson
import pytest
import sqlalchemy as sa

from tests.support.emulated import chat_lines, open_engine
from tests.support.waiting import until
from unibatch.config import RealtimeLimit, Settings
from unibatch.emulators import RunningEmulator
from unibatch.engine import Engine
from unibatch.engine.runners.realtime import LOST_IN_CRASH
from unibatch.store.tables import jobs
from unibatch.types import BatchStatus, RequestStatus


def local_lines(n: int, prefix: str = "r") -> list[dict[str, Any]]:
    return chat_lines(n, "local/llama3.1:8b", prefix)


async def unified(engine: Engine, batch_id: str) -> list[dict[str, Any]]:
    lines: list[dict[str, Any]] = []
    async for chunk in engine.result_lines(batch_id, "unified"):
        lines += [orjson.loads(line) for line in chunk]
    return lines


def max_in_window(times: list[float], span: float) -> int:
    """The most requests within any `span` seconds."""
    times = sorted(times)
    most, start = 0, 0
    for end, at in enumerate(times):
        while at - times[start] >= span:
            start += 1
        most = max(most, end - start + 1)
    return most


async def test_local_batch_runs_in_real_time_each_request_answered_once(
    database_url: str, emulator: RunningEmulator, fast_settings: Settings
) -> None:
    engine = await open_engine(database_url, emulator, fast_settings)
    try:
        batch_id = await engine.create_batch(local_lines(60))
        batch = await engine.wait(batch_id, interval=0.05, timeout=60)
        assert batch.status is BatchStatus.COMPLETED
        assert batch.request_counts.succeeded == 60
        jobs = await engine.store.jobs_of(batch_id)
        assert [job.mode for job in jobs] == ["realtime"]
        rows = await unified(engine, batch_id)
        assert [r["custom_id"] for r in rows] == [f"r-{i:05d}" for i in range(60)]
        assert {r["mode"] for r in rows} == {"realtime"}
        assert {r["provider"] for r in rows} == {"local"}
        assert all(r["response"]["object"] == "chat.completion" for r in rows)
        # A local server's price is unknown: null, not zero.
        assert {orjson.dumps(r["cost"]) for r in rows} == {b"null"}
        assert all(r["usage"]["input_tokens"] > 0 for r in rows)
        results = [r async for r in engine.results(batch_id)]
        assert {r.mode for r in results} == {"realtime"} and {r.cost for r in results} == {None}
        assert set((await engine.store.send_counts(batch_id)).values()) == {1}
        gate = emulator.emulators["local"].realtime
        assert len(gate.answers) == 60 and set(gate.answers.values()) == {1}
        # No files, no batches: only the synchronous endpoint was called.
        seen = emulator.emulators["local"].requests_seen
        assert seen == {"POST /chat/completions": 60}
    finally:
        await engine.aclose()


async def test_rate_limits_and_server_errors_are_sent_again_errors_of_the_request_are_not(
    database_url: str, emulator: RunningEmulator, fast_settings: Settings
) -> None:
    local = emulator.emulators["local"]
    local.inject_faults(3, 429, retry_after=0.01)
    lines = local_lines(10)
    lines[3]["body"]["messages"][0]["content"] = "emulate-error:400"
    lines[4]["body"]["messages"][0]["content"] = "emulate-error:503"
    settings = fast_settings.model_copy(update={"realtime_max_tries": 3, "realtime_concurrency": 2})
    engine = await open_engine(database_url, emulator, settings)
    try:
        # Two attempts: the 503 goes out again in a follow-up real-time job.
        batch_id = await engine.create_batch(lines, max_attempts=2)
        await engine.wait(batch_id, interval=0.05, timeout=60)
        by_id = {r.custom_id: r for r in [r async for r in engine.results(batch_id)]}
        assert by_id["r-00003"].status is RequestStatus.ERRORED
        assert by_id["r-00003"].error is not None and not by_id["r-00003"].error.retryable
        assert by_id["r-00004"].error is not None and by_id["r-00004"].error.retryable
        assert by_id["r-00004"].error.code == "server_error"
        succeeded = [r for r in by_id.values() if r.status is RequestStatus.SUCCEEDED]
        assert len(succeeded) == 8
        # 10 requests, 3 answered 429 first, and the 503 sent 3 times in each of its two
        # attempts; the 400 is not retried.
        assert local.requests_seen["POST /chat/completions"] == 10 + 3 + 2 + 3
        assert by_id["r-00004"].attempts == 2 and by_id["r-00003"].attempts == 1
        assert [a.error.code for a in by_id["r-00004"].history if a.error] == ["server_error"]
        assert local.realtime.answers[_key(lines[3])] == 1
    finally:
        await engine.aclose()


def _key(line: dict[str, Any]) -> str:
    from unibatch.emulators.kit.realtime import body_key

    body = dict(line["body"], model=line["body"]["model"].split("/", 1)[1])
    return body_key(orjson.dumps(body))


@pytest.mark.parametrize("limited", [True, False])
async def test_rpm_limit_holds_at_the_emulator(
    database_url: str, emulator: RunningEmulator, fast_settings: Settings, limited: bool
) -> None:
    """The runner's RPM limit, counted at the emulator. The emulator's minute lasts one
    second here (time_scale 1/60) and it refuses a 41st request within one; the runner
    sends 1200 RPM (20 a second, at most a quarter of a second's worth at once). The
    control: without a limit the runner overruns an emulator that takes 5 a second (429s,
    waited out)."""
    emulator.config.update({"time_scale": 1 / 60, "max_rpm": 40 if limited else 5})
    limits = {"local": RealtimeLimit(rpm=1200 if limited else None, concurrency=8)}
    settings = fast_settings.model_copy(update={"realtime_limits": limits})
    engine = await open_engine(database_url, emulator, settings)
    total = 100 if limited else 30
    try:
        batch_id = await engine.create_batch(local_lines(total))
        batch = await engine.wait(batch_id, interval=0.05, timeout=120)
        assert batch.request_counts.succeeded == total
        gate = emulator.emulators["local"].realtime
        if limited:
            assert gate.limited == 0
            assert max_in_window(gate.admitted_at, 1.0) <= 40
        else:
            assert gate.limited > 0
            assert max_in_window(gate.admitted_at, 1.0) <= 5
        assert len(gate.answers) == total and set(gate.answers.values()) == {1}
    finally:
        await engine.aclose()


async def test_tpm_limit_holds_at_the_emulator(
    database_url: str, emulator: RunningEmulator, fast_settings: Settings
) -> None:
    """Each request counts about 80 tokens at the emulator (its bytes / 4 plus its
    max_tokens) against 1,600 a second; the runner sends 600 a second, at most a quarter
    of a second's worth at once."""
    emulator.config.update({"time_scale": 1 / 60, "max_tpm": 1600})
    limits = {"local/llama3.1:8b": RealtimeLimit(tpm=36_000, concurrency=8)}
    settings = fast_settings.model_copy(update={"realtime_limits": limits})
    engine = await open_engine(database_url, emulator, settings)
    try:
        batch_id = await engine.create_batch(local_lines(60))
        batch = await engine.wait(batch_id, interval=0.05, timeout=120)
        assert batch.request_counts.succeeded == 60
        gate = emulator.emulators["local"].realtime
        assert gate.limited == 0
        # Throttled: 60 requests of ~80 tokens at 600 tokens a second take seconds.
        assert max_in_window(gate.admitted_at, 1.0) <= 20
    finally:
        await engine.aclose()


@pytest.mark.parametrize("resend", [True, False])
async def test_a_request_sent_before_a_crash_without_a_result(
    database_url: str, emulator: RunningEmulator, fast_settings: Settings, resend: bool
) -> None:
    """Markers without results (what a killed worker leaves) are sent again, or with
    resend_lost off stored as `lost_in_crash`; requests with a result are never sent."""
    settings = fast_settings.model_copy(update={"realtime_resend_lost": resend})
    engine = await open_engine(database_url, emulator, settings)
    try:
        batch_id = await engine.create_batch(local_lines(6))
        job = (await engine.store.jobs_of(batch_id))[0]
        # What a worker killed mid-flight leaves: two requests marked sent, one of which
        # has its answer stored already.
        claimed = await engine.store.claim_jobs(engine.owner, 10.0**10, lease=60.0, limit=1)
        assert [j.id for j in claimed] == [job.id]
        marked = await engine.store.mark_sending(
            batch_id, job.id, ["r-00000", "r-00001"], owner=engine.owner, now=1.0, lease_until=1e11
        )
        assert marked == "ok"
        await engine.store.retry_job_later(job.id, engine.owner, "killed", at=0.0)
        await engine.wait(batch_id, interval=0.05, timeout=60)
        results = {r.custom_id: r for r in [r async for r in engine.results(batch_id)]}
        sends = await engine.store.send_counts(batch_id)
        gate = emulator.emulators["local"].realtime
        if resend:
            assert all(r.status is RequestStatus.SUCCEEDED for r in results.values())
            assert sends["r-00000"] == 2 and sends["r-00002"] == 1
            assert sum(gate.answers.values()) == 6
        else:
            lost = results["r-00000"]
            assert lost.status is RequestStatus.ERRORED and lost.error is not None
            assert lost.error.code == LOST_IN_CRASH and not lost.error.retryable
            assert sends["r-00000"] == 1
            assert sum(gate.answers.values()) == 4
    finally:
        await engine.aclose()


async def held_after(
    engine: Engine, emulator: RunningEmulator, *, answers: int, lines: int, senders: int
) -> tuple[str, asyncio.Future[Any]]:
    """A batch of `lines` requests being waited for, once the emulator has given `answers`
    answers and holds the next request of each of the `senders`."""
    emulator.config.update({"max_realtime_answers": answers})
    gate = emulator.emulators["local"].realtime
    batch_id = await engine.create_batch(local_lines(lines))
    # No timer of its own: the test ends it (by its cancel, or by letting the emulator
    # answer), and on a busy machine a fixed time limit here would fail a correct run.
    waiting = asyncio.ensure_future(engine.wait(batch_id, interval=0.05))

    async def all_held() -> bool:
        return gate.held == senders

    await until(all_held, "every sender held at the emulator", 120)
    return batch_id, waiting


async def test_cancel_stops_sending_and_cancels_the_rest(
    database_url: str, emulator: RunningEmulator, fast_settings: Settings
) -> None:
    engine = await open_engine(
        database_url, emulator, fast_settings.model_copy(update={"realtime_concurrency": 2})
    )
    gate = emulator.emulators["local"].realtime
    try:
        batch_id, waiting = await held_after(engine, emulator, answers=5, lines=40, senders=2)
        await engine.cancel(batch_id)
        emulator.config.update({"max_realtime_answers": None})
        batch = await waiting
        assert batch.status is BatchStatus.CANCELLED
        counts = batch.request_counts
        # The five answered, and the two in flight at the cancel: nothing sent after it.
        assert (counts.succeeded, counts.cancelled) == (7, 33)
        assert sum(gate.answers.values()) == 7
    finally:
        await engine.aclose()


async def test_a_worker_that_lost_the_job_sends_nothing_more(
    database_url: str,
    emulator: RunningEmulator,
    fast_settings: Settings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    engine = await open_engine(
        database_url, emulator, fast_settings.model_copy(update={"realtime_concurrency": 1})
    )
    gate = emulator.emulators["local"].realtime
    try:
        batch_id, waiting = await held_after(engine, emulator, answers=3, lines=10, senders=1)
        # Another worker takes the job over while the fourth request is in flight.
        async with engine.store.engine.begin() as conn:
            await conn.execute(
                sa.update(jobs)
                .where(jobs.c.batch_id == batch_id)
                .values(lease_owner="another-worker", lease_until=1e12)
            )
        emulator.config.update({"max_realtime_answers": None})

        async def answered() -> bool:
            return len(gate.answered_at) == 4

        await until(answered, "the held request answered", 120)

        # The runner's own signal that it stopped: cancelling the wait before it would let
        # a runner that ignored the lost lease pass.
        async def stopped() -> bool:
            return any("lease lost; stopped sending" in r.getMessage() for r in caplog.records)

        await until(stopped, "the runner stopping for its lost lease", 120)
        waiting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await waiting
        # Its answer was not stored under a lease it no longer holds, and nothing more
        # was sent: the new owner resumes from three results and four markers.
        assert emulator.emulators["local"].requests_seen["POST /chat/completions"] == 4
        assert len(await engine.store.send_counts(batch_id)) == 4
        stored = [r async for r in engine.results(batch_id)]
        assert len(stored) == 3
    finally:
        await engine.aclose()
