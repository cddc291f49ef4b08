"""The file uploaded for an OpenAI job holds, byte for byte, the lines the translation writes
for each request (`{"custom_id", "method", "url", "body"}` encoded by orjson), although
the stored bodies are now streamed out as bytes rather than parsed and encoded again."""

from __future__ import annotations

from typing import Any

import httpx
import orjson

from unibatch.emulators import RunningEmulator
from unibatch.engine import Engine
from unibatch.providers.openai.translate import TRANSLATOR

CHAT = "/v1/chat/completions"
EMBEDDINGS = "/v1/embeddings"


def _chat(content: Any, **extra: Any) -> dict[str, Any]:
    return {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": content}]} | (
        extra
    )


def varied_lines() -> list[dict[str, Any]]:
    schema = {"type": "object", "properties": {"city": {"type": "string", "enum": ["Oslo"]}}}
    bodies: list[tuple[str, dict[str, Any]]] = [
        ("plain", _chat("hello")),
        ("unicode é ✓ 🐝", _chat("héllo ✓ 🐝 日本語")),
        ("escapes", _chat('quote " backslash \\ newline \n tab \t bell \x07 nul \x00 end')),
        (
            "numbers",
            _chat(
                "x",
                temperature=0.7,
                top_p=1.0,
                frequency_penalty=1e-7,
                presence_penalty=-0.0,
                seed=2**62,
                max_tokens=64,
                logit_bias={"50256": -100, "11": 2.5},
            ),
        ),
        ("large, stored compressed", _chat("many words " * 2000)),
        (
            "tools",
            _chat(
                "weather?",
                tools=[{"type": "function", "function": {"name": "get_w", "parameters": schema}}],
                tool_choice="auto",
                response_format={"type": "json_object"},
            ),
        ),
        # Sent in the provider's own shape: the flag is taken off on the way out.
        ("native", _chat("raw", unibatch_native=True, store=False)),
        # The flag's words inside a text are only text.
        ("flag words", _chat('say "unibatch_native" please')),
        ("model last", {"messages": [{"role": "user", "content": "m"}], "model": "openai/gpt-4o"}),
    ]
    lines = [{"custom_id": cid, "body": body} for cid, body in bodies]
    lines.append(
        {
            "custom_id": "embed",
            "method": "POST",
            "url": EMBEDDINGS,
            "body": {"model": "openai/text-embedding-3-small", "input": ["a", "b"]},
        }
    )
    return lines


def expected_line(line: dict[str, Any]) -> bytes:
    """What the adapter wrote for a request before bodies were streamed as bytes: the
    stored body parsed, translated, and the whole line encoded."""
    endpoint = line.get("url", CHAT)
    body = orjson.loads(orjson.dumps(line["body"]))
    body["model"] = body["model"].split("/", 1)[1]
    entry = {
        "custom_id": line["custom_id"],
        "method": "POST",
        "url": endpoint,
        "body": TRANSLATOR.to_native(endpoint, body),
    }
    return orjson.dumps(entry, option=orjson.OPT_APPEND_NEWLINE)


async def test_uploaded_lines_equal_the_translated_requests(
    engine: Engine, emulator: RunningEmulator
) -> None:
    lines = varied_lines()
    batch_id = await engine.create_batch(lines)
    while any(job.input_file_id is None for job in await engine.store.jobs_of(batch_id)):
        assert await engine.run_once(batch_id=batch_id) > 0
    uploaded: dict[str, bytes] = {}
    async with httpx.AsyncClient(
        base_url=emulator.base_url("openai"), headers={"Authorization": "Bearer test"}
    ) as client:
        for job in await engine.store.jobs_of(batch_id):
            response = await client.get(f"/files/{job.input_file_id}/content")
            response.raise_for_status()
            for sent in response.content.splitlines(keepends=True):
                uploaded[orjson.loads(sent)["custom_id"]] = sent
    assert set(uploaded) == {line["custom_id"] for line in lines}
    for line in lines:
        assert uploaded[line["custom_id"]] == expected_line(line), line["custom_id"]
