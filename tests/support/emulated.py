"""Engines wired to a running emulator over real HTTP on loopback."""

from __future__ import annotations

import httpx

from tests.support.waiting import until
from unibatch.config import Settings
from unibatch.engine import Engine
from unibatch.providers.base import Provider
from unibatch.providers.registry import ProviderSet, spec_of
from unibatch.types import BatchStatus


def provider_env(emulator: object) -> dict[str, str]:
    """Keys and base URLs for every provider the running emulator serves, in the
    variables each provider's spec names (as the official SDKs name them)."""
    env: dict[str, str] = {}
    for name in emulator.emulators:  # type: ignore[attr-defined]
        spec = spec_of(name)
        env[spec.key_env[0]] = "test-key"
        env[spec.base_url_env] = emulator.base_url(name)  # type: ignore[attr-defined]
        env.update(emulator.emulators[name].client_env())  # type: ignore[attr-defined]
    return env


async def open_engine(
    database_url: str,
    emulator: object,
    settings: Settings,
    overrides: dict[str, Provider] | None = None,
) -> Engine:
    providers = ProviderSet(provider_env(emulator), overrides=overrides)
    return await Engine.open(database_url, settings=settings, providers=providers)


def chat_lines(n: int, model: str = "openai/gpt-4o-mini", prefix: str = "r") -> list[dict]:
    return [
        {
            "custom_id": f"{prefix}-{i:05d}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {
                "model": model,
                "messages": [{"role": "user", "content": f"Say something about {i}."}],
                "max_tokens": 50,
            },
        }
        for i in range(n)
    ]


def emulator_state(emulator: object, provider: str = "openai") -> dict:
    """What the emulator saw, read over its control endpoint (works across threads)."""
    base = emulator.base_url(provider)  # type: ignore[attr-defined]
    response = httpx.get(f"{base}/_emulator/state", timeout=10)
    response.raise_for_status()
    return response.json()


async def drive_until_running(engine: Engine, batch_id: str, timeout: float = 10.0) -> None:
    """Drive a batch until the provider reports it in progress (to cancel it mid-flight)."""

    async def running() -> bool:
        if (await engine.get_batch(batch_id)).status is BatchStatus.IN_PROGRESS:
            return True
        await engine.run_once(batch_id=batch_id)
        return False

    await until(running, f"batch {batch_id} to reach in_progress", timeout, step=0.05)


async def drive_until_phase(
    engine: Engine, batch_id: str, phase: str, timeout: float = 30.0
) -> None:
    """Drive a batch until its (first) job reaches `phase`, e.g. `ingesting`."""

    async def reached() -> bool:
        if (await engine.store.jobs_of(batch_id))[0].phase == phase:
            return True
        await engine.run_once(batch_id=batch_id)
        return False

    await until(reached, f"batch {batch_id} to reach {phase}", timeout, step=0.05)
