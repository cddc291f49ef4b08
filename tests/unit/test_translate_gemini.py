"""Chat Completions <-> Gemini translation: every mapped field, both directions, and the
fields Gemini cannot honour (refused by name before anything is sent)."""

from __future__ import annotations

from typing import Any

import pytest

from unibatch.errors import InputError
from unibatch.providers.gemini.adapter import GeminiProvider, map_status, parse_entry
from unibatch.providers.gemini.translate import (
    to_chat_completion,
    to_embed_request,
    to_embedding_response,
    to_request,
    usage_of,
)
from unibatch.types import BatchStatus, RequestStatus, Usage

USER = {"role": "user", "content": "hi"}
HI = {"role": "user", "parts": [{"text": "hi"}]}
PNG = "iVBORw0KGgo="
WEATHER = {
    "type": "function",
    "function": {
        "name": "weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
CALL = {
    "id": "call_1",
    "type": "function",
    "function": {"name": "weather", "arguments": '{"city": "Oslo"}'},
}

REQUESTS: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("plain user text", {"messages": [USER]}, {"contents": [HI]}),
    (
        "system and developer become systemInstruction",
        {
            "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "developer", "content": [{"type": "text", "text": "no emoji"}]},
                USER,
            ]
        },
        {
            "systemInstruction": {"parts": [{"text": "be brief"}, {"text": "no emoji"}]},
            "contents": [HI],
        },
    ),
    (
        "assistant turns become role model",
        {"messages": [USER, {"role": "assistant", "content": "hello"}, USER]},
        {"contents": [HI, {"role": "model", "parts": [{"text": "hello"}]}, HI]},
    ),
    (
        "data URL image becomes inlineData",
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "what is it"},
                        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                    ],
                }
            ]
        },
        {
            "contents": [
                {
                    "role": "user",
                    "parts": [
                        {"text": "what is it"},
                        {"inlineData": {"mimeType": "image/png", "data": PNG}},
                    ],
                }
            ]
        },
    ),
    (
        "http image becomes fileData with a guessed MIME type",
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "image_url", "image_url": {"url": "https://x.test/cat.jpg?s=1"}}
                    ],
                }
            ]
        },
        {
            "contents": [
                {
                    "role": "user",
                    "parts": [
                        {
                            "fileData": {
                                "mimeType": "image/jpeg",
                                "fileUri": "https://x.test/cat.jpg?s=1",
                            }
                        }
                    ],
                }
            ]
        },
    ),
    (
        "tools and tool_choice auto",
        {"messages": [USER], "tools": [WEATHER], "tool_choice": "auto"},
        {
            "contents": [HI],
            "tools": [
                {
                    "functionDeclarations": [
                        {
                            "name": "weather",
                            "description": "Weather for a city",
                            "parametersJsonSchema": WEATHER["function"]["parameters"],
                        }
                    ]
                }
            ],
            "toolConfig": {"functionCallingConfig": {"mode": "AUTO"}},
        },
    ),
    (
        "tool_choice none",
        {"messages": [USER], "tools": [WEATHER], "tool_choice": "none"},
        {"toolConfig": {"functionCallingConfig": {"mode": "NONE"}}},
    ),
    (
        "tool_choice required",
        {"messages": [USER], "tools": [WEATHER], "tool_choice": "required"},
        {"toolConfig": {"functionCallingConfig": {"mode": "ANY"}}},
    ),
    (
        "tool_choice naming a function",
        {
            "messages": [USER],
            "tools": [WEATHER],
            "tool_choice": {"type": "function", "function": {"name": "weather"}},
        },
        {
            "toolConfig": {
                "functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["weather"]}
            }
        },
    ),
    (
        "tool calls and tool answers",
        {
            "messages": [
                USER,
                {"role": "assistant", "content": None, "tool_calls": [CALL]},
                {"role": "tool", "tool_call_id": "call_1", "content": '{"temp": 3}'},
                {"role": "tool", "tool_call_id": "call_1", "content": "windy"},
            ]
        },
        {
            "contents": [
                HI,
                {
                    "role": "model",
                    "parts": [{"functionCall": {"name": "weather", "args": {"city": "Oslo"}}}],
                },
                {
                    "role": "user",
                    "parts": [
                        {"functionResponse": {"name": "weather", "response": {"temp": 3}}},
                        {"functionResponse": {"name": "weather", "response": {"output": "windy"}}},
                    ],
                },
            ]
        },
    ),
    (
        "json_object",
        {"messages": [USER], "response_format": {"type": "json_object"}},
        {"generationConfig": {"responseMimeType": "application/json"}},
    ),
    (
        "json_schema",
        {
            "messages": [USER],
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "x", "schema": {"type": "object"}},
            },
        },
        {
            "generationConfig": {
                "responseMimeType": "application/json",
                "responseJsonSchema": {"type": "object"},
            }
        },
    ),
    (
        "sampling and limits",
        {
            "messages": [USER],
            "temperature": 0.3,
            "top_p": 0.9,
            "max_tokens": 10,
            "seed": 7,
            "n": 2,
            "stop": "END",
            "presence_penalty": 0.1,
            "frequency_penalty": 0.2,
        },
        {
            "generationConfig": {
                "temperature": 0.3,
                "topP": 0.9,
                "maxOutputTokens": 10,
                "seed": 7,
                "candidateCount": 2,
                "stopSequences": ["END"],
                "presencePenalty": 0.1,
                "frequencyPenalty": 0.2,
            }
        },
    ),
    (
        "max_completion_tokens wins, stop list, reasoning effort as a 2.5 budget",
        {
            "model": "gemini-2.5-flash",
            "messages": [USER],
            "max_tokens": 5,
            "max_completion_tokens": 50,
            "stop": ["a", "b"],
            "reasoning_effort": "low",
        },
        {
            "generationConfig": {
                "maxOutputTokens": 50,
                "stopSequences": ["a", "b"],
                "thinkingConfig": {"thinkingBudget": 1024},
            }
        },
    ),
    (
        "fields that change nothing are dropped",
        {"messages": [USER], "model": "m", "user": "u", "metadata": {"a": "b"}, "store": False},
        {"contents": [HI]},
    ),
    (
        "native escape hatch is sent unchanged",
        {
            "unibatch_native": True,
            "model": "m",
            "contents": [HI],
            "safetySettings": [{"category": "HARM_CATEGORY_HATE_SPEECH", "threshold": "OFF"}],
        },
        {
            "contents": [HI],
            "safetySettings": [{"category": "HARM_CATEGORY_HATE_SPEECH", "threshold": "OFF"}],
        },
    ),
]


@pytest.mark.parametrize(
    ("body", "expected"), [r[1:] for r in REQUESTS], ids=[r[0] for r in REQUESTS]
)
def test_request_translation(body: dict[str, Any], expected: dict[str, Any]) -> None:
    got = to_request(body)
    assert {k: got[k] for k in expected} == expected
    GeminiProvider.translator.validate("/v1/chat/completions", body)  # accepted at read time


REFUSED: list[tuple[str, dict[str, Any], str]] = [
    ("unknown field", {"messages": [USER], "logit_bias": {"1": 2}}, "logit_bias"),
    ("audio output", {"messages": [USER], "modalities": ["text", "audio"]}, "modalities"),
    ("parallel calls off", {"messages": [USER], "parallel_tool_calls": False}, "parallel_tool"),
    ("no messages", {"messages": []}, "messages"),
    ("only a system message", {"messages": [{"role": "system", "content": "x"}]}, "messages"),
    ("unknown role", {"messages": [{"role": "robot", "content": "x"}]}, r"messages\[0\].role"),
    (
        "URL without a MIME type",
        {
            "messages": [
                {
                    "role": "user",
                    "content": [{"type": "image_url", "image_url": {"url": "https://x.test/p"}}],
                }
            ]
        },
        r"image_url.url.*data: URL",
    ),
    (
        "bad base64",
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "image_url", "image_url": {"url": "data:image/png;base64,%%"}}
                    ],
                }
            ]
        },
        "base64",
    ),
    (
        "image in a system message",
        {
            "messages": [
                {"role": "system", "content": [{"type": "image_url", "image_url": {"url": "x"}}]},
                USER,
            ]
        },
        r"messages\[0\].content\[0\].type",
    ),
    (
        "tool answer without a call",
        {"messages": [USER, {"role": "tool", "tool_call_id": "nope", "content": "x"}]},
        "tool_call_id",
    ),
    (
        "arguments that are not JSON",
        {
            "messages": [
                USER,
                {
                    "role": "assistant",
                    "tool_calls": [{**CALL, "function": {"name": "f", "arguments": "{"}}],
                },
            ]
        },
        "arguments",
    ),
    ("non-function tool", {"messages": [USER], "tools": [{"type": "web_search"}]}, r"tools\[0\]"),
    ("tool_choice without tools", {"messages": [USER], "tool_choice": "auto"}, "tool_choice"),
    (
        "unknown response format",
        {"messages": [USER], "response_format": {"type": "grammar"}},
        "response_format",
    ),
    ("unknown effort", {"messages": [USER], "reasoning_effort": "max"}, "reasoning_effort"),
]


@pytest.mark.parametrize(("body", "field"), [r[1:] for r in REFUSED], ids=[r[0] for r in REFUSED])
def test_unhonourable_fields_are_refused_by_name(body: dict[str, Any], field: str) -> None:
    # A field Gemini cannot honour, or a malformed one: either way named with the provider.
    named = rf"^gemini cannot honour body\..*{field}|^body\..*{field}.*\(provider gemini\)"
    with pytest.raises(InputError, match=named):
        GeminiProvider.translator.validate("/v1/chat/completions", body)


def candidate(parts: list[dict[str, Any]], reason: str = "STOP", index: int = 0) -> dict[str, Any]:
    return {"content": {"role": "model", "parts": parts}, "finishReason": reason, "index": index}


USAGE = {
    "promptTokenCount": 100,
    "candidatesTokenCount": 20,
    "cachedContentTokenCount": 40,
    "thoughtsTokenCount": 7,
    "totalTokenCount": 127,
}

FINISH = [
    ("STOP", "stop"),
    ("MAX_TOKENS", "length"),
    ("SAFETY", "content_filter"),
    ("RECITATION", "content_filter"),
    ("PROHIBITED_CONTENT", "content_filter"),
    ("FINISH_REASON_UNSPECIFIED", "stop"),
]


@pytest.mark.parametrize(("native", "ours"), FINISH)
def test_finish_reasons(native: str, ours: str) -> None:
    body = to_chat_completion({"candidates": [candidate([{"text": "x"}], native)]}, "m")
    assert body["choices"][0]["finish_reason"] == ours


def test_response_text_usage_and_candidates() -> None:
    response = {
        "candidates": [
            candidate([{"text": "thinking...", "thought": True}, {"text": "Hel"}, {"text": "lo"}]),
            candidate([{"text": "Hi"}], index=1),
        ],
        "usageMetadata": USAGE,
        "modelVersion": "gemini-2.5-pro",
        "responseId": "abc",
        "createTime": "2025-12-03T17:23:06.004734302Z",
    }
    body = to_chat_completion(response, "fallback")
    assert body["id"] == "chatcmpl-abc"
    assert body["model"] == "gemini-2.5-pro"
    assert body["created"] == 1764782586
    assert [c["message"]["content"] for c in body["choices"]] == ["Hello", "Hi"]
    assert [c["index"] for c in body["choices"]] == [0, 1]
    assert body["usage"] == {
        "prompt_tokens": 100,
        "completion_tokens": 27,
        "total_tokens": 127,
        "prompt_tokens_details": {"cached_tokens": 40},
        "completion_tokens_details": {"reasoning_tokens": 7},
    }
    assert usage_of(response) == Usage(100, 27, 40, 7)


def test_function_call_becomes_tool_calls() -> None:
    part = {"functionCall": {"name": "weather", "args": {"city": "Oslo"}}}
    body = to_chat_completion({"candidates": [candidate([part])]}, "m")
    choice = body["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    call = choice["message"]["tool_calls"][0]
    assert call["type"] == "function" and call["id"]
    assert call["function"] == {"name": "weather", "arguments": '{"city":"Oslo"}'}
    # ...and goes back in as the same functionCall on the next turn.
    again = to_request({"messages": [USER, {"role": "assistant", **choice["message"]}]})
    assert again["contents"][1]["parts"] == [part]


def test_blocked_prompt_has_a_content_filter_choice() -> None:
    body = to_chat_completion({"promptFeedback": {"blockReason": "SAFETY"}}, "m")
    assert body["choices"][0]["finish_reason"] == "content_filter"
    assert "SAFETY" in body["choices"][0]["message"]["refusal"]


def test_embeddings_round_trip() -> None:
    request = to_embed_request({"model": "m", "input": ["hello"], "dimensions": 4})
    assert request == {"content": {"parts": [{"text": "hello"}]}, "outputDimensionality": 4}
    body = to_embedding_response({"embedding": {"values": [0.1, 0.2]}}, "text-embedding-004")
    assert body["data"] == [{"object": "embedding", "index": 0, "embedding": [0.1, 0.2]}]
    with pytest.raises(InputError, match=r"^gemini cannot honour body\.input"):
        to_embed_request({"model": "m", "input": ["a", "b"]})
    with pytest.raises(InputError, match="encoding_format"):
        to_embed_request({"model": "m", "input": "a", "encoding_format": "base64"})


@pytest.mark.parametrize(
    ("native", "ours"),
    [
        ("BATCH_STATE_PENDING", BatchStatus.VALIDATING),
        ("JOB_STATE_PENDING", BatchStatus.VALIDATING),
        ("BATCH_STATE_RUNNING", BatchStatus.IN_PROGRESS),
        ("BATCH_STATE_SUCCEEDED", BatchStatus.COMPLETED),
        ("JOB_STATE_SUCCEEDED", BatchStatus.COMPLETED),
        ("BATCH_STATE_FAILED", BatchStatus.FAILED),
        ("BATCH_STATE_CANCELLED", BatchStatus.CANCELLED),
        ("JOB_STATE_EXPIRED", BatchStatus.EXPIRED),
        ("BATCH_STATE_SOMETHING_NEW", BatchStatus.IN_PROGRESS),
    ],
)
def test_states(native: str, ours: BatchStatus) -> None:
    assert map_status(native) is ours


@pytest.mark.parametrize(
    ("error", "code", "status_code", "retryable"),
    [
        ({"code": 13, "message": "internal"}, "http_500", 500, True),
        ({"code": 3, "message": "bad"}, "http_400", 400, False),
        (
            {"code": 429, "message": "slow", "status": "RESOURCE_EXHAUSTED"},
            "RESOURCE_EXHAUSTED",
            429,
            True,
        ),
    ],
)
def test_error_entries(error: dict[str, Any], code: str, status_code: int, retryable: bool) -> None:
    row = parse_entry({"key": "ubseq-4", "error": error}, "ubseq-4", "m", b"{}")
    assert (row.custom_id, row.seq, row.status) == (None, 4, RequestStatus.ERRORED)
    assert row.status_code == status_code
    assert row.error is not None
    assert (row.error.code, row.error.retryable) == (code, retryable)
    assert row.error.message == error["message"]


def test_foreign_key_is_taken_as_the_custom_id() -> None:
    row = parse_entry({"response": {"candidates": []}}, "my-id", "m", b"{}")
    assert (row.custom_id, row.seq, row.status) == ("my-id", None, RequestStatus.SUCCEEDED)


def test_logprobs() -> None:
    result = {
        "chosenCandidates": [{"token": "Hi", "logProbability": -0.1}],
        "topCandidates": [
            {
                "candidates": [
                    {"token": "Hi", "logProbability": -0.1},
                    {"token": "Yo", "logProbability": -2.5},
                ]
            }
        ],
    }
    response = {"candidates": [{**candidate([{"text": "Hi"}]), "logprobsResult": result}]}
    logprobs = to_chat_completion(response, "m")["choices"][0]["logprobs"]
    assert logprobs["content"][0]["token"] == "Hi"
    assert logprobs["content"][0]["logprob"] == -0.1
    assert [t["token"] for t in logprobs["content"][0]["top_logprobs"]] == ["Hi", "Yo"]
    request = to_request({"messages": [USER], "logprobs": True, "top_logprobs": 2})
    assert request["generationConfig"] == {"responseLogprobs": True, "logprobs": 2}


def test_native_body_needs_contents() -> None:
    with pytest.raises(InputError, match=r"^body\.contents: .*\(provider gemini\)"):
        to_request({"unibatch_native": True, "model": "m", "messages": [USER]})
