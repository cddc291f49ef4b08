"""A job runs as long as its provider's own window allows (plus a margin), unless the
batch or the settings say otherwise."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from unibatch.config import Settings
from unibatch.engine.runners.batch import MAX_AGE_MARGIN, max_age
from unibatch.providers.registry import ProviderSet

ENV = {
    "OPENAI_API_KEY": "k",
    "ANTHROPIC_API_KEY": "k",
    "GEMINI_API_KEY": "k",
    "XAI_API_KEY": "k",
}
HOUR = 3600.0


@pytest.mark.parametrize(
    ("provider", "window"),
    [("openai", 24 * HOUR), ("anthropic", 24 * HOUR), ("gemini", 48 * HOUR), ("xai", 720 * HOUR)],
)
async def test_each_provider_keeps_its_own_window(provider: str, window: float) -> None:
    providers = ProviderSet(ENV)
    try:
        adapter = providers.get(provider)
        batch: Any = SimpleNamespace(max_age=None)
        assert max_age(batch, adapter) == window + MAX_AGE_MARGIN
        assert max_age(SimpleNamespace(max_age=600.0), adapter) == 600.0  # type: ignore[arg-type]
    finally:
        await providers.aclose()


def test_no_single_default_unless_set(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().max_age is None
    monkeypatch.setenv("UNIBATCH_MAX_AGE", "7200")
    assert Settings().max_age == 7200.0
