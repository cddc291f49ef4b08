"""The result cache through the gateway: per batch (JSON API field, or metadata for
OpenAI's create), per key, and never across keys."""

from __future__ import annotations

from typing import Any

import httpx

from tests.gateway.conftest import auth, create_from_file, jsonl, new_key, upload
from tests.support.emulated import emulator_state
from unibatch.emulators import RunningEmulator
from unibatch.engine import Engine


def _requests(n: int) -> list[dict[str, Any]]:
    return [
        {"custom_id": f"q{i}", "body": {"messages": [{"role": "user", "content": f"n{i}"}]}}
        for i in range(n)
    ]


async def _run(
    client: httpx.AsyncClient, engine: Engine, key: str, **extra: Any
) -> list[dict[str, Any]]:
    created = await client.post(
        "/v1/batches",
        json={"model": "openai/gpt-4o-mini", "requests": _requests(4), **extra},
        headers=auth(key),
    )
    assert created.status_code == 200, created.text
    return await _results(client, engine, key, created.json()["id"])


async def _results(
    client: httpx.AsyncClient, engine: Engine, key: str, batch_id: str
) -> list[dict[str, Any]]:
    await engine.wait(batch_id, interval=0.05, timeout=30)
    page = await client.get(f"/v1/batches/{batch_id}/results", headers=auth(key))
    data: list[dict[str, Any]] = page.json()["data"]
    return data


def _sent(emulator: RunningEmulator) -> int:
    return sum(b["request_count"] for b in emulator_state(emulator)["batches"])


async def test_answers_are_reused_within_a_key_only(
    client: httpx.AsyncClient, engine: Engine, emulator: RunningEmulator
) -> None:
    alice = (await new_key(client, "alice"))["key"]
    bob = (await new_key(client, "bob"))["key"]
    await _run(client, engine, alice, cache=True)
    again = await _run(client, engine, alice, cache=True)
    assert _sent(emulator) == 4
    assert [r["cached"] for r in again] == [True] * 4
    assert all(r["cost"]["total"] == 0 for r in again)
    # Bob asks the very same things: his requests are sent, Alice's answers stay hers.
    theirs = await _run(client, engine, bob, cache=True)
    assert _sent(emulator) == 8
    assert not any(r["cached"] for r in theirs)
    # Without the cache, Alice's are sent too.
    await _run(client, engine, alice)
    assert _sent(emulator) == 12


async def test_key_setting_and_metadata_turn_the_cache_on(
    client: httpx.AsyncClient, engine: Engine, emulator: RunningEmulator
) -> None:
    cached_key = await new_key(client, "cached", cache=True, cache_ttl=86400)
    assert cached_key["cache"] is True and cached_key["cache_ttl"] == 86400
    key = cached_key["key"]
    await _run(client, engine, key)
    assert [r["cached"] for r in await _run(client, engine, key)] == [True] * 4
    # A batch may still ask to be sent.
    assert not any(r["cached"] for r in await _run(client, engine, key, cache=False))
    assert _sent(emulator) == 8

    # OpenAI's create takes no extra fields: the metadata says it.
    plain = (await new_key(client, "plain"))["key"]
    lines = [{**r, "body": {**r["body"], "model": "openai/gpt-4o-mini"}} for r in _requests(4)]
    for _ in range(2):
        created = await create_from_file(client, plain, lines)
        assert created.status_code == 200, created.text
        # Neither asked for the cache.
        plain_results = await _results(client, engine, plain, created.json()["id"])
        assert not any(r["cached"] for r in plain_results)
    assert _sent(emulator) == 16
    first = await _from_file(client, engine, plain, lines, {"cache": "true", "cache_ttl": "7d"})
    assert not any(r["cached"] for r in first)  # the earlier two stored no keys
    again = await _from_file(client, engine, plain, lines, {"cache": "true"})
    assert [r["cached"] for r in again] == [True] * 4
    assert _sent(emulator) == 20


async def test_bad_cache_options_are_refused(client: httpx.AsyncClient) -> None:
    key = (await new_key(client, "k"))["key"]
    bad = await client.post(
        "/v1/batches",
        json={
            "model": "openai/gpt-4o-mini",
            "requests": _requests(1),
            "metadata": {"cache": "maybe"},
        },
        headers=auth(key),
    )
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "metadata.cache"
    ttl = await client.post(
        "/v1/batches",
        json={
            "model": "openai/gpt-4o-mini",
            "requests": _requests(1),
            "metadata": {"cache": "true", "cache_ttl": "soon"},
        },
        headers=auth(key),
    )
    assert ttl.status_code == 400 and ttl.json()["error"]["param"] == "metadata.cache_ttl"


async def _from_file(
    client: httpx.AsyncClient,
    engine: Engine,
    key: str,
    lines: list[dict[str, Any]],
    metadata: dict[str, str],
) -> list[dict[str, Any]]:
    """The results of a batch made as OpenAI's SDK makes one: an uploaded file."""
    file = await upload(client, key, jsonl(lines))
    created = await client.post(
        "/v1/batches",
        json={
            "input_file_id": file["id"],
            "endpoint": "/v1/chat/completions",
            "completion_window": "24h",
            "metadata": metadata,
        },
        headers=auth(key),
    )
    assert created.status_code == 200, created.text
    return await _results(client, engine, key, created.json()["id"])
