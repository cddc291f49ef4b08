"""Deterministic stand-ins for the synchronous OpenAI responses a batch line would get.

Each faker maps a request body to ``(response_body, usage)``. The text is ``"Echo: "`` plus a
digest of the last user message, token counts are derived from text length (about four
characters a token), and ``max_tokens``-style limits truncate the reply the way the real
endpoints do, so cost and truncation handling can be tested.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from ..kit.fakes import hex_digest, text_of, tokens, unit

# Endpoints whose synchronous responses the emulator can fake.
EMULATED_ENDPOINTS = frozenset(
    {"/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/responses"}
)


@dataclass
class Usage:
    """Token usage in the batch object's vocabulary."""

    input_tokens: int = 0
    cached_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0

    def add(self, other: Usage) -> None:
        self.input_tokens += other.input_tokens
        self.cached_tokens += other.cached_tokens
        self.output_tokens += other.output_tokens
        self.reasoning_tokens += other.reasoning_tokens

    def as_json(self) -> dict[str, Any]:
        return {
            "input_tokens": self.input_tokens,
            "input_tokens_details": {"cached_tokens": self.cached_tokens},
            "output_tokens": self.output_tokens,
            "output_tokens_details": {"reasoning_tokens": self.reasoning_tokens},
            "total_tokens": self.input_tokens + self.output_tokens,
        }


def _cached(prompt_tokens: int) -> int:
    # Real prompt caching starts at 1,024 tokens in 128-token steps; emulate a half-hit.
    return (prompt_tokens // 2) // 128 * 128 if prompt_tokens >= 1024 else 0


def _reply(text: str, limit: Any) -> tuple[str, int, bool]:
    """The assistant text, its token count, and whether ``limit`` truncated it."""
    content = f"Echo: {hex_digest(text, size=6)}"
    count = tokens(content)
    if isinstance(limit, int) and not isinstance(limit, bool) and 0 < limit < count:
        return content[: limit * 4], limit, True
    return content, count, False


def _chat(body: dict[str, Any], rid: str, created: int) -> tuple[dict[str, Any], Usage]:
    messages = body.get("messages") if isinstance(body.get("messages"), list) else []
    assert isinstance(messages, list)
    prompt = 3 + sum(4 + tokens(text_of(m.get("content"))) for m in messages if isinstance(m, dict))
    users = [m for m in messages if isinstance(m, dict) and m.get("role") == "user"]
    last = text_of(users[-1].get("content")) if users else ""
    limit = body.get("max_completion_tokens", body.get("max_tokens"))
    content, out, cut = _reply(last, limit)
    n = body.get("n") if isinstance(body.get("n"), int) and body["n"] > 0 else 1
    assert isinstance(n, int)
    # OpenAI answers at most 128 choices; an uncapped n let one line exhaust memory.
    n = min(n, 128)
    choice: dict[str, Any] = {
        "message": {"role": "assistant", "content": content, "refusal": None, "annotations": []},
        "logprobs": None,
        "finish_reason": "length" if cut else "stop",
    }
    cached = _cached(prompt)
    usage = {
        "prompt_tokens": prompt,
        "completion_tokens": out * n,
        "total_tokens": prompt + out * n,
        "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
    }
    response = {
        "id": f"chatcmpl-{rid[:29]}",
        "object": "chat.completion",
        "created": created,
        "model": body["model"],
        "choices": [{"index": i, **choice} for i in range(n)],
        "usage": usage,
        "service_tier": "default",
        "system_fingerprint": "fp_emulator",
    }
    return response, Usage(prompt, cached, out * n, 0)


def _completion(body: dict[str, Any], rid: str, created: int) -> tuple[dict[str, Any], Usage]:
    prompt_text = text_of(body.get("prompt"))
    prompt = tokens(prompt_text)
    text, out, cut = _reply(prompt_text, body.get("max_tokens"))
    response = {
        "id": f"cmpl-{rid[:29]}",
        "object": "text_completion",
        "created": created,
        "model": body["model"],
        "choices": [
            {
                "text": text,
                "index": 0,
                "logprobs": None,
                "finish_reason": "length" if cut else "stop",
            }
        ],
        "usage": {"prompt_tokens": prompt, "completion_tokens": out, "total_tokens": prompt + out},
    }
    return response, Usage(prompt, 0, out, 0)


def _embeddings(body: dict[str, Any], rid: str, created: int) -> tuple[dict[str, Any], Usage]:
    raw = body.get("input")
    inputs: list[Any]
    if isinstance(raw, list) and raw and all(isinstance(x, int) for x in raw):
        inputs = [raw]  # one input given as a token array
    elif isinstance(raw, list):
        inputs = raw
    else:
        inputs = [raw]
    dims = body.get("dimensions")
    dims = dims if isinstance(dims, int) and 0 < dims <= 4096 else 8
    data, prompt = [], 0
    for index, item in enumerate(inputs):
        prompt += len(item) if isinstance(item, list) else tokens(text_of(item))
        seed = orjson.dumps(item)
        raw_vec = [unit(seed, i) * 2 - 1 for i in range(dims)]
        norm = math.sqrt(sum(v * v for v in raw_vec)) or 1.0
        vector = [round(v / norm, 6) for v in raw_vec]
        data.append({"object": "embedding", "index": index, "embedding": vector})
    response = {
        "object": "list",
        "data": data,
        "model": body["model"],
        "usage": {"prompt_tokens": prompt, "total_tokens": prompt},
    }
    return response, Usage(prompt, 0, 0, 0)


def _responses(body: dict[str, Any], rid: str, created: int) -> tuple[dict[str, Any], Usage]:
    raw, instructions = body.get("input"), body.get("instructions")
    prompt = tokens(text_of(raw)) + (tokens(instructions) if isinstance(instructions, str) else 0)
    if isinstance(raw, list):
        users = [i for i in raw if isinstance(i, dict) and i.get("role", "user") == "user"]
        last = text_of(users[-1].get("content")) if users else ""
    else:
        last = text_of(raw)
    text, out, cut = _reply(last, body.get("max_output_tokens"))
    cached = _cached(prompt)
    message = {
        "type": "message",
        "id": f"msg_{rid}",
        "status": "incomplete" if cut else "completed",
        "role": "assistant",
        "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}],
    }
    response = {
        "id": f"resp_{rid}",
        "object": "response",
        "created_at": created,
        "status": "incomplete" if cut else "completed",
        "error": None,
        "incomplete_details": {"reason": "max_output_tokens"} if cut else None,
        "instructions": instructions,
        "max_output_tokens": body.get("max_output_tokens"),
        "model": body["model"],
        "output": [message],
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "reasoning": {"effort": None, "summary": None},
        "temperature": body.get("temperature", 1.0),
        "text": {"format": {"type": "text"}},
        "tool_choice": "auto",
        "tools": [],
        "top_p": body.get("top_p", 1.0),
        "truncation": "disabled",
        "metadata": body.get("metadata") or {},
        "usage": {
            "input_tokens": prompt,
            "input_tokens_details": {"cached_tokens": cached},
            "output_tokens": out,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": prompt + out,
        },
    }
    return response, Usage(prompt, cached, out, 0)


Faker = Callable[[dict[str, Any], str, int], tuple[dict[str, Any], Usage]]

FAKERS: dict[str, Faker] = {
    "/v1/chat/completions": _chat,
    "/v1/completions": _completion,
    "/v1/embeddings": _embeddings,
    "/v1/responses": _responses,
}
