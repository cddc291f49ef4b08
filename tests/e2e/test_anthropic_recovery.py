"""Anthropic crash recovery: a Message Batch carries no tag, so a batch created just before
a crash is found by its request count and proven by the job ids in its results. (The
SIGKILL between create and commit is in test_crash_safety.py, for every provider.)"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterable
from typing import Any

import pytest

from tests.support.emulated import chat_lines, emulator_state, open_engine
from unibatch.config import Settings
from unibatch.errors import TransientProviderError
from unibatch.providers.anthropic import SPEC
from unibatch.providers.anthropic.adapter import AnthropicProvider
from unibatch.providers.base import JobSpec, ProviderJob, RequestLine

pytestmark = pytest.mark.slow
MODEL = "anthropic/claude-haiku-4-5"


def anthropic_batches(emulator: Any) -> list[dict[str, Any]]:
    return list(emulator_state(emulator, "anthropic")["batches"])


class LostCreate(AnthropicProvider):
    """The first create fails in a way that proves nothing (a timeout), as a crash would
    leave it; later ones go through."""

    lost = False

    async def submit(self, spec: JobSpec, lines: AsyncIterable[RequestLine]) -> ProviderJob:
        if not self.lost:
            self.lost = True
            raise TransientProviderError("anthropic: timeout on POST v1/messages/batches")
        return await super().submit(spec, lines)


async def test_another_jobs_batch_is_not_taken_for_ours(
    database_url: str, emulator: Any, fast_settings: Settings
) -> None:
    """A batch of the same size made by another job in the window is adopted first; its
    results name the other job, so the job is sent again and ends with its own answers."""
    base = emulator.base_url("anthropic")
    foreign_job = "ubj_0190abcdef12" + "ffffffffffffffff"
    provider = LostCreate(SPEC, "test-key", base)
    try:

        async def foreign_lines() -> AsyncIterable[RequestLine]:
            for i, line in enumerate(chat_lines(12, "claude-haiku-4-5", prefix="other")):
                yield RequestLine(line["custom_id"], line["body"], seq=i)

        spec = JobSpec(foreign_job, "claude-haiku-4-5", "/v1/chat/completions", foreign_job, 12, 0)
        foreign = await AnthropicProvider.submit(provider, spec, foreign_lines())
        engine = await open_engine(database_url, emulator, fast_settings, {"anthropic": provider})
        try:
            batch_id = await engine.create_batch(chat_lines(12, MODEL))
            deadline = time.monotonic() + 60
            while not (batch := await engine.get_batch(batch_id)).status.terminal:
                assert time.monotonic() < deadline, f"stuck in {batch.status}"
                await engine.run_once(batch_id=batch_id)
                await asyncio.sleep(0.02)
            assert batch.request_counts.succeeded == 12
            results = [r async for r in engine.results(batch_id)]
            assert [r.custom_id for r in results] == [f"r-{i:05d}" for i in range(12)]
            (job,) = await engine.store.jobs_of(batch_id)
            assert job.provider_batch_id not in (None, foreign.id)
            # It was adopted, and given up once its results named the other job.
            assert job.last_error is not None and foreign_job in job.last_error
        finally:
            await engine.aclose()
        assert len(anthropic_batches(emulator)) == 2  # the other job's, and ours once
    finally:
        await provider.aclose()
