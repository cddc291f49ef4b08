"""Engines wired to a running emulator over real HTTP on loopback."""

from __future__ import annotations

import httpx

from unibatch.config import Settings
from unibatch.engine import Engine
from unibatch.providers.base import Provider
from unibatch.providers.registry import ProviderSet


def provider_env(emulator: object) -> dict[str, str]:
    return {
        "OPENAI_API_KEY": "test-key",
        "OPENAI_BASE_URL": emulator.base_url("openai"),  # type: ignore[attr-defined]
    }


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
