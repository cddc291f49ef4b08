"""Every request that did not succeed says whether sending it again may help
(`error.retryable` in the unified result), end to end through each provider's emulator."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.emulated import chat_lines, drive_until_running, open_engine
from unibatch.config import Settings
from unibatch.emulators import RunningEmulator
from unibatch.engine import Engine
from unibatch.types import BatchStatus

MODELS = {
    "openai": "openai/gpt-4o-mini",
    "anthropic": "anthropic/claude-haiku-4-5",
    "gemini": "gemini/gemini-2.5-flash",
    "xai": "xai/grok-4-fast-non-reasoning",
    "azure": "azure/gpt-4o-mini",
    "groq": "groq/llama-3.3-70b-versatile",
    "mistral": "mistral/mistral-small-latest",
    "together": "together/meta-llama/Llama-3.3-70B-Instruct-Turbo",
}
# The HTTP status each request asks its emulator to fail with (None: it succeeds).
ASKED = {"r-00000": 429, "r-00001": 500, "r-00002": 400, "r-00003": None}


async def unified(engine: Engine, batch_id: str) -> dict[str, dict[str, Any]]:
    return {r.custom_id: r.as_unified() async for r in engine.results(batch_id)}


@pytest.mark.parametrize("provider", list(MODELS))
async def test_rate_limits_and_server_errors_are_retryable_bad_requests_are_not(
    engine: Engine, provider: str
) -> None:
    lines = chat_lines(len(ASKED), model=MODELS[provider])
    for line, status in zip(lines, ASKED.values(), strict=True):
        if status is not None:
            line["body"]["messages"][0]["content"] += f" emulate-error:{status}"
    batch_id = await engine.create_batch(lines)
    batch = await engine.wait(batch_id, interval=0.05, timeout=60)
    assert batch.request_counts.errored == 3
    rows = await unified(engine, batch_id)
    retryable = {cid: row["error"] and row["error"]["retryable"] for cid, row in rows.items()}
    assert retryable == {"r-00000": True, "r-00001": True, "r-00002": False, "r-00003": None}


async def test_a_cancel_the_user_asked_for_is_not_retryable(
    database_url: str, emulator: RunningEmulator, fast_settings: Settings
) -> None:
    emulator.openai.config.in_progress_seconds = 20_000.0  # scaled: 1000 s, still running
    engine = await open_engine(database_url, emulator, fast_settings)
    try:
        batch_id = await engine.create_batch(chat_lines(5))
        await drive_until_running(engine, batch_id)
        await engine.cancel(batch_id)
        batch = await engine.wait(batch_id, interval=0.05, timeout=60)
        rows = await unified(engine, batch_id)
    finally:
        await engine.aclose()
    assert batch.status is BatchStatus.CANCELLED
    cancelled = [row for row in rows.values() if row["status"] == "cancelled"]
    assert cancelled, "the emulator's cancelled rows were ingested"
    assert {(r["error"]["code"], r["error"]["retryable"]) for r in cancelled} == {
        ("batch_cancelled", False)
    }


async def test_a_cancel_before_submit_is_not_retryable(engine: Engine) -> None:
    batch_id = await engine.create_batch(chat_lines(3))
    await engine.cancel(batch_id)
    await engine.wait(batch_id, interval=0.05, timeout=30)
    rows = await unified(engine, batch_id)
    assert {(r["status"], r["error"]["retryable"]) for r in rows.values()} == {("cancelled", False)}


async def test_a_cancel_for_maximum_age_is_retryable(
    database_url: str, emulator: RunningEmulator, fast_settings: Settings
) -> None:
    emulator.openai.config.in_progress_seconds = 20_000.0  # scaled: 1000 s
    engine = await open_engine(database_url, emulator, fast_settings)
    try:
        batch_id = await engine.create_batch(chat_lines(5), max_age=0.5)
        batch = await engine.wait(batch_id, interval=0.05, timeout=60)
        rows = await unified(engine, batch_id)
    finally:
        await engine.aclose()
    assert batch.status is BatchStatus.EXPIRED
    unrun = [row for row in rows.values() if row["status"] != "succeeded"]
    assert unrun
    assert {r["error"]["retryable"] for r in unrun} == {True}
