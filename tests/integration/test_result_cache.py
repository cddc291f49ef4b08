"""The result cache end to end: the engine against the OpenAI emulator over real HTTP, on
SQLite and PostgreSQL. What counts is what the emulator received."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa

from tests.support.clock import ShiftedClock
from tests.support.emulated import chat_lines, emulator_state, open_engine
from unibatch.config import Settings
from unibatch.emulators import RunningEmulator
from unibatch.engine import Engine
from unibatch.engine.cache import CachePolicy
from unibatch.errors import InputError
from unibatch.store.tables import requests, results
from unibatch.types import BatchStatus, Result


async def _run(engine: Engine, lines: Any, **kwargs: Any) -> tuple[str, list[Result]]:
    batch_id = await engine.create_batch(lines, **kwargs)
    batch = await engine.wait(batch_id, interval=0.05, timeout=60)
    assert batch.status is BatchStatus.COMPLETED
    return batch_id, [r async for r in engine.results(batch_id)]


def _sent(emulator: RunningEmulator) -> list[int]:
    """The request count of every provider batch the emulator was sent, oldest first."""
    batches = sorted(emulator_state(emulator)["batches"], key=lambda b: b["created_at"])
    return [b["request_count"] for b in batches]


def _rewritten(lines: list[dict[str, Any]], changed: set[int]) -> list[bytes]:
    """The same requests as JSONL written differently (keys reversed at every level,
    spaces after separators), the prompts of the lines in `changed` altered."""

    def reverse(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: reverse(value[k]) for k in reversed(list(value))}
        if isinstance(value, list):
            return [reverse(v) for v in value]
        return value

    out = []
    for i, line in enumerate(lines):
        line = orjson.loads(orjson.dumps(line))
        if i in changed:
            line["body"]["messages"][0]["content"] += " Changed."
        text = orjson.dumps(reverse(line), option=orjson.OPT_INDENT_2).replace(b"\n", b" ")
        out.append(text + b"\n")
    return out


async def test_resubmitted_file_sends_only_changed_lines(
    engine: Engine, emulator: RunningEmulator, tmp_path: Path
) -> None:
    lines = chat_lines(100)
    first_id, first = await _run(engine, lines, cache=CachePolicy())
    assert _sent(emulator) == [100]

    changed = set(range(0, 100, 10))
    path = tmp_path / "again.jsonl"
    path.write_bytes(b"".join(_rewritten(lines, changed)))
    assert await engine.cache_hits(path) == {"openai/gpt-4o-mini": 90}

    second_id, second = await _run(engine, path, cache=CachePolicy())
    # Only the ten changed lines reached the provider.
    assert _sent(emulator) == [100, 10]
    batch = await engine.get_batch(second_id)
    assert batch.cached == 90
    assert batch.request_counts.succeeded == 100
    before = {r.custom_id: r for r in first}
    for i, result in enumerate(second):
        assert result.custom_id == lines[i]["custom_id"]
        if i in changed:
            assert not result.cached and result.mode == "batch"
            assert result.cost is not None and result.cost.total > 0
            continue
        assert result.cached and result.mode == "cache"
        assert result.as_unified()["cached"] is True
        assert result.response == before[result.custom_id].response
        assert result.usage == before[result.custom_id].usage
        assert result.cost is not None and result.cost.total == 0
    # Costs of the batch are those of the ten requests sent.
    sent_cost = sum(r.cost.total for r in second if r.cost is not None)
    assert batch.cost.total == pytest.approx(sent_cost)
    # The export marks them too.
    unified = [
        orjson.loads(line)
        async for lines in engine.result_lines(second_id, "unified")
        for line in lines
    ]
    assert [u["cached"] for u in unified] == [i not in changed for i in range(100)]
    assert first_id != second_id


async def test_fully_cached_batch_sends_nothing_and_completes(
    engine: Engine, emulator: RunningEmulator
) -> None:
    await _run(engine, chat_lines(20), cache=CachePolicy())
    batch_id, again = await _run(engine, chat_lines(20), cache=CachePolicy())
    assert _sent(emulator) == [20]
    assert all(r.cached for r in again)
    batch = await engine.get_batch(batch_id)
    assert batch.cost.total == 0
    assert batch.cached == 20


async def test_without_cache_everything_is_sent(engine: Engine, emulator: RunningEmulator) -> None:
    await _run(engine, chat_lines(10), cache=CachePolicy())
    _, again = await _run(engine, chat_lines(10))
    assert _sent(emulator) == [10, 10]
    assert not any(r.cached for r in again)


async def test_batch_without_cache_answers_no_later_batch(
    engine: Engine, emulator: RunningEmulator
) -> None:
    """The cache is opt-in on both sides: a batch sent without it stores no keys."""
    await _run(engine, chat_lines(10))
    assert await engine.cache_hits(chat_lines(10)) == {}
    _, again = await _run(engine, chat_lines(10), cache=CachePolicy())
    assert _sent(emulator) == [10, 10]
    assert not any(r.cached for r in again)
    # That one stored its keys: the next is answered.
    assert await engine.cache_hits(chat_lines(10)) == {"openai/gpt-4o-mini": 10}


async def test_other_model_or_params_are_not_answered(
    engine: Engine, emulator: RunningEmulator
) -> None:
    await _run(engine, chat_lines(10), cache=CachePolicy())
    other_model = chat_lines(10, model="openai/gpt-4o")
    hotter = chat_lines(10)
    for line in hotter:
        line["body"]["temperature"] = 0.5
    assert await engine.cache_hits(other_model) == {}
    assert await engine.cache_hits(hotter) == {}
    # `openai:` names the same model as `openai/`.
    assert await engine.cache_hits(chat_lines(10, model="openai:gpt-4o-mini")) == {
        "openai/gpt-4o-mini": 10
    }


async def test_ttl_bounds_the_age_of_answers(engine: Engine, emulator: RunningEmulator) -> None:
    clock = ShiftedClock()
    engine.ctx.clock = clock
    await _run(engine, chat_lines(10), cache=CachePolicy())
    clock.advance(2 * 3600)
    assert await engine.cache_hits(chat_lines(10), cache=CachePolicy(ttl=3600)) == {}
    assert await engine.cache_hits(chat_lines(10), cache=CachePolicy(ttl=3 * 3600)) == {
        "openai/gpt-4o-mini": 10
    }
    _, again = await _run(engine, chat_lines(10), cache=CachePolicy(ttl=3600))
    assert _sent(emulator) == [10, 10]
    assert not any(r.cached for r in again)


@pytest.mark.parametrize("emulator", [{"failure_rate": 1.0}], indirect=True)
async def test_failed_requests_are_not_answered_from_the_cache(
    database_url: str, emulator: RunningEmulator
) -> None:
    engine = await open_engine(
        database_url, emulator, Settings(poll_schedule=(0.1,), max_attempts=1)
    )
    try:
        batch_id = await engine.create_batch(chat_lines(5), cache=CachePolicy())
        await engine.wait(batch_id, interval=0.05, timeout=60)
        assert await engine.cache_hits(chat_lines(5)) == {}
    finally:
        await engine.aclose()


async def test_failed_import_leaves_no_copied_answers(
    database_url: str, emulator: RunningEmulator
) -> None:
    """A cached import that fails after a chunk was stored leaves none of its copies."""
    engine = await open_engine(
        database_url, emulator, Settings(poll_schedule=(0.1,), ingest_chunk=5)
    )
    try:
        await _run(engine, chat_lines(10), cache=CachePolicy())
        stored = await _count_results(engine)
        bad = [*chat_lines(10), {"custom_id": "broken"}]
        with pytest.raises(InputError, match="line 11"):
            await engine.create_batch(bad, cache=CachePolicy())
        assert await _count_results(engine) == stored
    finally:
        await engine.aclose()


async def _count_results(engine: Engine) -> int:
    async with engine.store.engine.connect() as conn:
        return int((await conn.execute(sa.select(sa.func.count()).select_from(results))).scalar())


async def test_keys_sharing_a_hash_are_told_apart(engine: Engine) -> None:
    """The index holds 8 bytes of each key; the whole key decides."""
    await _run(engine, chat_lines(1), cache=CachePolicy())
    async with engine.store.engine.connect() as conn:
        key = (await conn.execute(sa.select(requests.c.cache_key))).scalar_one()
    target = ("openai", "gpt-4o-mini", "/v1/chat/completions")
    assert set(await engine.store.cached_answers({bytes(key): target})) == {bytes(key)}
    twin = bytes(key)[:8] + bytes(24)
    assert twin != bytes(key)
    assert await engine.store.cached_answers({twin: target}) == {}
    # Nor is an answer given by another model than the key's.
    other = ("openai", "gpt-4o", "/v1/chat/completions")
    assert await engine.store.cached_answers({bytes(key): other}) == {}
