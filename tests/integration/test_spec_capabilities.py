"""The engine asks a provider's spec what the provider can do, instead of knowing it."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterable

from tests.support.emulated import chat_lines, emulator_state, provider_env
from unibatch.config import Settings
from unibatch.emulators import RunningEmulator
from unibatch.engine import Engine
from unibatch.errors import TransientProviderError
from unibatch.providers.base import JobSpec, ProviderJob, RequestLine
from unibatch.providers.openai import SPEC as OPENAI
from unibatch.providers.openai.adapter import OpenAIProvider
from unibatch.providers.registry import ProviderSet

NO_RECOVERY = dataclasses.replace(OPENAI, finds_lost_batches=False)


class NoFind(OpenAIProvider):
    """Its first create is lost (a timeout); it must never be asked to find a batch."""

    lost = False
    finds = 0

    async def submit(self, spec: JobSpec, lines: AsyncIterable[RequestLine]) -> ProviderJob:
        if not self.lost:
            self.lost = True
            raise TransientProviderError("openai: timeout on POST batches")
        return await super().submit(spec, lines)

    async def find(
        self, tag: str, *, since: float, request_count: int | None = None
    ) -> ProviderJob | None:
        self.finds += 1
        return await super().find(tag, since=since, request_count=request_count)


async def test_a_provider_that_cannot_find_lost_batches_is_not_asked(
    database_url: str, emulator: RunningEmulator, fast_settings: Settings
) -> None:
    env = provider_env(emulator)
    provider = NoFind(NO_RECOVERY, "k", env["OPENAI_BASE_URL"])
    engine = await Engine.open(
        database_url,
        settings=fast_settings,
        providers=ProviderSet(env, overrides={"openai": provider}),
    )
    try:
        batch_id = await engine.create_batch(chat_lines(4))
        batch = await engine.wait(batch_id, interval=0.05, timeout=60)
    finally:
        await engine.aclose()
    assert batch.request_counts.succeeded == 4
    assert provider.lost and provider.finds == 0
    assert len(emulator_state(emulator)["batches"]) == 1
