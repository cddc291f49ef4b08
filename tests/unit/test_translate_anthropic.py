"""Chat Completions <-> Anthropic Messages, field by field, and the errors for what
Anthropic cannot honour; plus the adapter's row parsing, status mapping and id rules."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from unibatch.errors import InputError
from unibatch.providers.anthropic import SPEC as ANTHROPIC
from unibatch.providers.anthropic.adapter import AnthropicProvider, map_status, parse_row, wire_id
from unibatch.providers.anthropic.translate import (
    DEFAULT_MAX_TOKENS,
    RESPONSE_TOOL,
    to_chat_completion,
    to_messages_params,
)
from unibatch.providers.base import RequestLine
from unibatch.types import BatchStatus, RequestStatus

USER = {"role": "user", "content": "Hi"}
SCHEMA = {"type": "object", "properties": {"a": {"type": "string"}}}
TOOL = {
    "type": "function",
    "function": {"name": "get", "description": "Get it", "parameters": SCHEMA},
}
ANTHROPIC_TOOL = {"name": "get", "input_schema": SCHEMA, "description": "Get it"}


def body(**fields: Any) -> dict[str, Any]:
    return {"model": "claude-haiku-4-5", "messages": [USER], **fields}


def params(**fields: Any) -> dict[str, Any]:
    return {
        "model": "claude-haiku-4-5",
        "max_tokens": DEFAULT_MAX_TOKENS,
        "messages": [{"role": "user", "content": "Hi"}],
        **fields,
    }


# Each case: Chat Completions body -> the exact Messages params.
REQUEST_CASES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "minimal, default max_tokens": (body(), params()),
    "max_tokens": (body(max_tokens=10), params(max_tokens=10)),
    "max_completion_tokens wins": (
        body(max_tokens=10, max_completion_tokens=20),
        params(max_tokens=20),
    ),
    "sampling": (
        body(temperature=0.5, stop="END"),
        params(temperature=0.5, stop_sequences=["END"]),
    ),
    "both sampling parameters on a model that takes both": (
        body(model="claude-3-5-haiku-20241022", temperature=0.5, top_p=0.9),
        params(model="claude-3-5-haiku-20241022", temperature=0.5, top_p=0.9),
    ),
    "stop list": (body(stop=["a", "b"]), params(stop_sequences=["a", "b"])),
    "no-op unsupported values pass": (
        body(n=1, seed=None, logprobs=False, presence_penalty=0, stream=False, store=False),
        params(),
    ),
    "user": (body(user="u-1"), params(metadata={"user_id": "u-1"})),
    "system and developer hoisted": (
        body(
            messages=[
                {"role": "system", "content": "Be brief."},
                USER,
                {"role": "developer", "content": [{"type": "text", "text": "Use English."}]},
            ]
        ),
        params(system="Be brief.\n\nUse English."),
    ),
    "system with cache_control keeps blocks": (
        body(
            messages=[
                {
                    "role": "system",
                    "content": [
                        {"type": "text", "text": "Long", "cache_control": {"type": "ephemeral"}}
                    ],
                },
                USER,
            ]
        ),
        params(system=[{"type": "text", "text": "Long", "cache_control": {"type": "ephemeral"}}]),
    ),
    "multi-turn": (
        body(messages=[USER, {"role": "assistant", "content": "Hello"}, USER]),
        params(
            messages=[
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello"},
                {"role": "user", "content": "Hi"},
            ]
        ),
    ),
    "images: url and base64 data url": (
        body(
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "What?"},
                        {"type": "image_url", "image_url": {"url": "https://x/y.png"}},
                        {
                            "type": "image_url",
                            "image_url": {"url": "data:image/png;base64,AAAA", "detail": "low"},
                        },
                    ],
                }
            ]
        ),
        params(
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "What?"},
                        {"type": "image", "source": {"type": "url", "url": "https://x/y.png"}},
                        {
                            "type": "image",
                            "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"},
                        },
                    ],
                }
            ]
        ),
    ),
    "pdf file part": (
        body(
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "file", "file": {"file_data": "data:application/pdf;base64,JV"}}
                    ],
                }
            ]
        ),
        params(
            messages=[
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "document",
                            "source": {
                                "type": "base64",
                                "media_type": "application/pdf",
                                "data": "JV",
                            },
                        }
                    ],
                }
            ]
        ),
    ),
    "cache_control on a text part passes through": (
        body(
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "Doc", "cache_control": {"type": "ephemeral"}}
                    ],
                }
            ]
        ),
        params(
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "Doc", "cache_control": {"type": "ephemeral"}}
                    ],
                }
            ]
        ),
    ),
    "tools and tool_choice auto": (
        body(tools=[TOOL], tool_choice="auto"),
        params(tools=[ANTHROPIC_TOOL], tool_choice={"type": "auto"}),
    ),
    "tool_choice none": (
        body(tools=[TOOL], tool_choice="none"),
        params(tools=[ANTHROPIC_TOOL], tool_choice={"type": "none"}),
    ),
    "tool_choice required": (
        body(tools=[TOOL], tool_choice="required"),
        params(tools=[ANTHROPIC_TOOL], tool_choice={"type": "any"}),
    ),
    "tool_choice named": (
        body(tools=[TOOL], tool_choice={"type": "function", "function": {"name": "get"}}),
        params(tools=[ANTHROPIC_TOOL], tool_choice={"type": "tool", "name": "get"}),
    ),
    "parallel_tool_calls false": (
        body(tools=[TOOL], parallel_tool_calls=False),
        params(
            tools=[ANTHROPIC_TOOL],
            tool_choice={"type": "auto", "disable_parallel_tool_use": True},
        ),
    ),
    "cache_control on a tool passes through": (
        body(tools=[{**TOOL, "cache_control": {"type": "ephemeral"}}]),
        params(tools=[{**ANTHROPIC_TOOL, "cache_control": {"type": "ephemeral"}}]),
    ),
    "tool without parameters": (
        body(tools=[{"type": "function", "function": {"name": "ping"}}]),
        params(tools=[{"name": "ping", "input_schema": {"type": "object", "properties": {}}}]),
    ),
    "assistant tool_calls and tool results merge into one user turn": (
        body(
            messages=[
                USER,
                {
                    "role": "assistant",
                    "content": "Looking",
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "get", "arguments": '{"a": "x"}'},
                        },
                        {
                            "id": "call_2",
                            "type": "function",
                            "function": {"name": "get", "arguments": "{}"},
                        },
                    ],
                },
                {"role": "tool", "tool_call_id": "call_1", "content": "one"},
                {
                    "role": "tool",
                    "tool_call_id": "call_2",
                    "content": [{"type": "text", "text": "two"}],
                },
                {"role": "user", "content": "Thanks"},
            ]
        ),
        params(
            messages=[
                {"role": "user", "content": "Hi"},
                {
                    "role": "assistant",
                    "content": [
                        {"type": "text", "text": "Looking"},
                        {"type": "tool_use", "id": "call_1", "name": "get", "input": {"a": "x"}},
                        {"type": "tool_use", "id": "call_2", "name": "get", "input": {}},
                    ],
                },
                {
                    "role": "user",
                    "content": [
                        {"type": "tool_result", "tool_use_id": "call_1", "content": "one"},
                        {
                            "type": "tool_result",
                            "tool_use_id": "call_2",
                            "content": [{"type": "text", "text": "two"}],
                        },
                        {"type": "text", "text": "Thanks"},
                    ],
                },
            ]
        ),
    ),
    "json_schema via a forced tool": (
        body(
            response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": SCHEMA}}
        ),
        params(
            tools=[
                {
                    "name": RESPONSE_TOOL,
                    "description": "Reply by calling this tool with the JSON answer.",
                    "input_schema": SCHEMA,
                }
            ],
            tool_choice={"type": "tool", "name": RESPONSE_TOOL},
        ),
    ),
    "json_object via a forced tool": (
        body(response_format={"type": "json_object"}),
        params(
            tools=[
                {
                    "name": RESPONSE_TOOL,
                    "description": "Reply by calling this tool with the JSON answer.",
                    "input_schema": {"type": "object"},
                }
            ],
            tool_choice={"type": "tool", "name": RESPONSE_TOOL},
        ),
    ),
    "response_format text is a no-op": (body(response_format={"type": "text"}), params()),
    "native escape hatch": (
        {"model": "m", "max_tokens": 5, "messages": [USER], "top_k": 3, "unibatch_native": True},
        {"model": "m", "max_tokens": 5, "messages": [USER], "top_k": 3},
    ),
}


@pytest.mark.parametrize("case", list(REQUEST_CASES))
def test_request_translation(case: str) -> None:
    source, expected = REQUEST_CASES[case]
    assert to_messages_params(source) == expected


# Each case: a body Anthropic cannot honour, and the field the error must name.
ERROR_CASES: dict[str, tuple[dict[str, Any], str]] = {
    "n > 1": (body(n=2), "body.n"),
    "seed": (body(seed=1), "body.seed"),
    "logprobs": (body(logprobs=True), "body.logprobs"),
    "penalty": (body(frequency_penalty=0.5), "body.frequency_penalty"),
    "logit_bias": (body(logit_bias={"1": 2}), "body.logit_bias"),
    "audio": (body(modalities=["text", "audio"]), "body.modalities"),
    "unknown field": (body(frobnicate=1), "body.frobnicate"),
    "temperature above 1": (body(temperature=1.5), "body.temperature"),
    "stream": (body(stream=True), "body.stream"),
    "bad role": (body(messages=[{"role": "function", "content": "x"}]), "messages[0].role"),
    "audio part": (
        body(messages=[{"role": "user", "content": [{"type": "input_audio"}]}]),
        "messages[0].content[0].type",
    ),
    "non-function tool choice": (body(tool_choice={"type": "custom"}), "body.tool_choice"),
    "response_format with tools": (
        body(tools=[TOOL], response_format={"type": "json_object"}),
        "body.response_format",
    ),
    "metadata": (body(metadata={"k": "v"}), "body.metadata"),
}


@pytest.mark.parametrize("case", list(ERROR_CASES))
def test_unsupported_fields_name_field_and_provider(case: str) -> None:
    source, field = ERROR_CASES[case]
    with pytest.raises(InputError, match="anthropic cannot honour") as info:
        AnthropicProvider.translator.validate("/v1/chat/completions", source)
    assert field in str(info.value)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (body(messages=[]), "body.messages must be a non-empty list"),
        (body(max_tokens=0), "body.max_tokens must be a positive integer"),
        (body(messages=[{"role": "system", "content": "x"}]), "no user or assistant message"),
        (
            body(tools=[{"type": "function", "function": {"name": RESPONSE_TOOL}}]),
            "is reserved",
        ),
        (
            body(
                messages=[
                    USER,
                    {
                        "role": "assistant",
                        "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": "{x"}}],
                    },
                ]
            ),
            "arguments is not JSON",
        ),
        (body(messages=[{"role": "tool", "content": "x"}]), "tool_call_id is required"),
    ],
)
def test_malformed_bodies(source: dict[str, Any], message: str) -> None:
    with pytest.raises(InputError, match=message):
        to_messages_params(source)


def message(content: list[dict[str, Any]], stop: str = "end_turn", **usage: int) -> dict[str, Any]:
    return {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-haiku-4-5",
        "content": content,
        "stop_reason": stop,
        "usage": {"input_tokens": 10, "output_tokens": 5, **usage},
    }


@pytest.mark.parametrize(
    ("stop", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        ("something_new", "stop"),
    ],
)
def test_finish_reasons(stop: str, finish: str) -> None:
    out = to_chat_completion(message([{"type": "text", "text": "x"}], stop))
    assert out["choices"][0]["finish_reason"] == finish


def test_text_response_and_usage_with_cache() -> None:
    out = to_chat_completion(
        message(
            [{"type": "thinking", "thinking": "hm"}, {"type": "text", "text": "Hello"}],
            cache_read_input_tokens=100,
            cache_creation_input_tokens=20,
        ),
        created=123,
    )
    assert out["object"] == "chat.completion" and out["created"] == 123
    assert out["id"] == "msg_1" and out["model"] == "claude-haiku-4-5"
    assert out["choices"][0]["message"] == {
        "role": "assistant",
        "content": "Hello",
        "refusal": None,
    }
    assert out["usage"]["prompt_tokens"] == 130
    assert out["usage"]["completion_tokens"] == 5
    assert out["usage"]["total_tokens"] == 135
    assert out["usage"]["prompt_tokens_details"]["cached_tokens"] == 100


def test_tool_use_becomes_tool_calls() -> None:
    block = {"type": "tool_use", "id": "toolu_1", "name": "get", "input": {"a": "x"}}
    out = to_chat_completion(message([block], "tool_use"))
    reply = out["choices"][0]["message"]
    assert reply["content"] is None
    assert reply["tool_calls"] == [
        {"id": "toolu_1", "type": "function", "function": {"name": "get", "arguments": '{"a":"x"}'}}
    ]
    assert out["choices"][0]["finish_reason"] == "tool_calls"


def test_response_tool_becomes_json_content() -> None:
    block = {"type": "tool_use", "id": "toolu_1", "name": RESPONSE_TOOL, "input": {"a": "x"}}
    out = to_chat_completion(message([block], "tool_use"))
    choice = out["choices"][0]
    assert orjson.loads(choice["message"]["content"]) == {"a": "x"}
    assert "tool_calls" not in choice["message"]
    assert choice["finish_reason"] == "stop"


# -- the adapter's wire rules ------------------------------------------------------------


@pytest.mark.parametrize(
    ("custom_id", "sent"),
    [
        ("ok_id-1", "ok_id-1"),
        ("has space", "ubseq-7"),
        ("x" * 65, "ubseq-7"),
        ("x" * 64, "x" * 64),
        ("ünï", "ubseq-7"),
        ("ubseq-1", "ubseq-7"),
    ],
)
def test_wire_ids_outside_a_job(custom_id: str, sent: str) -> None:
    assert wire_id(RequestLine(custom_id, {}, seq=7), tag="not-a-job") == sent


@pytest.mark.parametrize("custom_id", ["ok_id-1", "has space", "x" * 65, "ünï", "ubseq-1"])
def test_engine_lines_carry_their_job_id(custom_id: str) -> None:
    """Whatever the user's id, the wire id names the job, so a batch adopted after a crash
    can be proven to be the job's own."""
    job = "ubj_0190abcdef12" + "0123456789abcdef"
    assert wire_id(RequestLine(custom_id, {}, seq=7), tag=job) == f"{job}-7"


async def test_line_bytes_count_the_translated_request() -> None:
    provider = AnthropicProvider(ANTHROPIC, "k")
    try:
        line = RequestLine("has space", body(response_format={"type": "json_object"}), seq=3)
        entry = {"custom_id": wire_id(line), "params": to_messages_params(line.body)}
        assert len(wire_id(line)) == len("ubj_0190abcdef120123456789abcdef-3")
        assert provider.line_bytes(line) == len(orjson.dumps(entry)) + 1
    finally:
        await provider.aclose()


def row(custom_id: str, result: dict[str, Any]) -> bytes:
    return orjson.dumps({"custom_id": custom_id, "result": result})


def test_succeeded_row() -> None:
    raw = row("a", {"type": "succeeded", "message": message([{"type": "text", "text": "Hi"}])})
    parsed = parse_row(raw, created=5)
    assert (parsed.custom_id, parsed.seq, parsed.status) == ("a", None, RequestStatus.SUCCEEDED)
    assert parsed.status_code == 200 and parsed.raw == raw
    assert parsed.body is not None and parsed.body["created"] == 5
    assert (parsed.usage.input_tokens, parsed.usage.output_tokens) == (10, 5)


def test_seq_rows_name_the_request_by_position() -> None:
    parsed = parse_row(row("ubseq-42", {"type": "canceled"}))
    assert (parsed.custom_id, parsed.seq) == (None, 42)
    assert parsed.status is RequestStatus.CANCELLED
    assert parsed.error is not None and parsed.error.code == "batch_cancelled"


def test_expired_and_errored_rows() -> None:
    expired = parse_row(row("e", {"type": "expired"}))
    assert expired.status is RequestStatus.EXPIRED
    assert expired.error is not None and expired.error.code == "batch_expired"
    error = {
        "type": "error",
        "error": {"type": "invalid_request_error", "message": "max_tokens: Field required"},
        "request_id": None,
    }
    errored = parse_row(row("b", {"type": "errored", "error": error}))
    assert errored.status is RequestStatus.ERRORED and errored.status_code == 400
    assert errored.error is not None
    assert errored.error.code == "invalid_request_error" and not errored.error.retryable
    assert errored.body == {
        "error": {
            "message": "max_tokens: Field required",
            "type": "invalid_request_error",
            "param": None,
            "code": None,
        }
    }
    overloaded = {"type": "error", "error": {"type": "overloaded_error", "message": "busy"}}
    retry = parse_row(row("c", {"type": "errored", "error": overloaded}))
    assert retry.status_code == 529 and retry.error is not None and retry.error.retryable


def counts(**values: int) -> dict[str, int]:
    base = {"processing": 0, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
    return {**base, **values}


@pytest.mark.parametrize(
    ("batch", "status"),
    [
        ({"processing_status": "in_progress"}, BatchStatus.IN_PROGRESS),
        ({"processing_status": "canceling"}, BatchStatus.CANCELLING),
        ({"processing_status": "brand_new"}, BatchStatus.IN_PROGRESS),
        ({"processing_status": "ended", "request_counts": counts(succeeded=3)}, "completed"),
        ({"processing_status": "ended", "request_counts": counts(errored=3)}, "completed"),
        (
            {"processing_status": "ended", "request_counts": counts(succeeded=1, expired=2)},
            "expired",
        ),
        (
            {
                "processing_status": "ended",
                "cancel_initiated_at": "2026-01-01T00:00:00Z",
                "request_counts": counts(succeeded=3),
            },
            "cancelled",
        ),
        (
            {
                "processing_status": "ended",
                "archived_at": "2026-01-01T00:00:00Z",
                "results_url": None,
                "request_counts": counts(succeeded=3),
            },
            "failed",
        ),
    ],
)
def test_status_mapping(batch: dict[str, Any], status: str) -> None:
    assert map_status(batch) == status


def test_job_counts_cancelled_requests_apart_from_failed_ones() -> None:
    job = AnthropicProvider._job(
        {
            "id": "msgbatch_1",
            "processing_status": "ended",
            "request_counts": {
                "processing": 0,
                "succeeded": 4,
                "errored": 1,
                "canceled": 3,
                "expired": 2,
            },
        }
    )
    assert (job.completed, job.failed, job.cancelled, job.total) == (4, 3, 3, 10)
