"""xAI: status from counters, refused fields, request rewrites, result normalisation."""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson
import pytest

from unibatch.errors import InputError, LimitError
from unibatch.providers.registry import provider_class
from unibatch.providers.xai import SPEC as XAI
from unibatch.providers.xai.adapter import XAIProvider, day_of, derive_status, job_of, parse_row
from unibatch.providers.xai.translate import normalize_usage, to_chat_completion, to_native
from unibatch.types import BatchStatus, RequestStatus, Usage


def batch(
    n: int = 0,
    pending: int = 0,
    success: int = 0,
    error: int = 0,
    cancelled: int = 0,
    **extra: Any,
) -> dict[str, Any]:
    state = {
        "num_requests": n,
        "num_pending": pending,
        "num_success": success,
        "num_error": error,
        "num_cancelled": cancelled,
    }
    return {"batch_id": "batch_1", "name": "ubj_1", "state": state, **extra}


@pytest.mark.parametrize(
    ("native", "ours"),
    [
        (batch(), BatchStatus.VALIDATING),
        (batch(8, pending=8), BatchStatus.IN_PROGRESS),
        (batch(8, pending=3, success=4, error=1), BatchStatus.IN_PROGRESS),
        (batch(8, success=7, error=1), BatchStatus.COMPLETED),
        (batch(8, error=8), BatchStatus.COMPLETED),  # errors are per request
        (batch(8, success=5, cancelled=3), BatchStatus.EXPIRED),  # cancelled, by nobody
        (batch(8, pending=2, success=6, cancel_time="2026-08-28"), BatchStatus.CANCELLING),
        (batch(8, success=5, cancelled=3, cancel_time="2026-08-28"), BatchStatus.CANCELLED),
        # Counters revert after a cancel: all succeeded, still our cancel.
        (batch(8, success=8, cancel_time="2026-08-28"), BatchStatus.CANCELLED),
        (batch(cancel_time="2026-08-28"), BatchStatus.CANCELLED),
        (batch(cancel_by_xai_message="JSONL file validation failed: line 2"), BatchStatus.FAILED),
        (
            batch(8, success=4, cancelled=4, cancel_by_xai_message="x", cancel_time="2026-08-28"),
            BatchStatus.FAILED,
        ),
        ({"batch_id": "batch_1"}, BatchStatus.VALIDATING),
    ],
)
def test_status_is_derived_from_counters(native: dict[str, Any], ours: BatchStatus) -> None:
    assert derive_status(native) is ours


def test_job_carries_counters_tag_and_xai_message() -> None:
    job = job_of(batch(8, pending=1, success=5, error=1, cancelled=1, input_file_id="file_1"))
    assert (job.id, job.tag, job.input_file_id) == ("batch_1", "ubj_1", "file_1")
    assert (job.total, job.completed, job.failed, job.cancelled) == (8, 5, 1, 1)
    assert job.native_status == "pending=1 success=5 error=1 cancelled=1"
    failed = job_of(batch(cancel_by_xai_message="JSONL file validation failed: line 2"))
    assert failed.status is BatchStatus.FAILED
    assert failed.errors == ["cancelled by xAI: JSONL file validation failed: line 2"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-08-28", dt.date(2026, 8, 28)),  # REST
        ("2026-08-28T10:11:12.123456789Z", dt.date(2026, 8, 28)),  # RFC 3339
        (None, None),
        ("yesterday", None),
    ],
)
def test_creation_days_are_read_from_either_format(value: Any, expected: dt.date | None) -> None:
    assert day_of(value) == expected


def test_registered_with_limits_and_discount() -> None:
    assert provider_class("xai") is XAIProvider
    assert XAI.batch_limits.max_requests == 50_000
    assert XAI.endpoints == frozenset({"/v1/chat/completions"})
    assert 0 < XAI.batch_discount < 1


# -- validation --------------------------------------------------------------------------


def body(**fields: Any) -> dict[str, Any]:
    return {
        "model": "grok-4-fast-non-reasoning",
        "messages": [{"role": "user", "content": "hi"}],
    } | fields


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"logit_bias": {"1": 5}}, "body.logit_bias"),
        ({"n": 2}, "body.n"),
        ({"audio": {"voice": "alloy", "format": "wav"}}, "body.audio"),
        ({"modalities": ["text", "audio"]}, "body.modalities"),
        ({"prediction": {"type": "content", "content": "x"}}, "body.prediction"),
        ({"store": True}, "body.store"),
        ({"metadata": {"a": "b"}}, "body.metadata"),
        ({"service_tier": "flex"}, "body.service_tier"),
        ({"model": "grok-4", "presence_penalty": 0.5}, "body.presence_penalty"),
        ({"model": "grok-3-mini", "stop": ["\n"]}, "body.stop"),
        ({"model": "grok-4", "reasoning_effort": "high"}, "body.reasoning_effort"),
        (
            {"messages": [{"role": "user", "content": [{"type": "input_audio"}]}]},
            "body.messages[0].content ('input_audio' part)",
        ),
    ],
)
def test_unsupported_fields_are_named(fields: dict[str, Any], named: str) -> None:
    with pytest.raises(InputError) as caught:
        XAIProvider.translator.validate("/v1/chat/completions", body(**fields))
    message = str(caught.value)
    assert message.startswith(f"xai cannot honour {named}")
    assert "unibatch_native" in message


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"n": 1, "store": False, "metadata": {}, "service_tier": "auto", "modalities": ["text"]},
        {"presence_penalty": 0.5, "stop": ["\n"]},  # fine on a non-reasoning model
        {"model": "grok-3-mini", "reasoning_effort": "low"},
        {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]},
        {"unibatch_native": True, "logit_bias": {"1": 5}, "n": 3},
    ],
)
def test_supported_bodies_pass(fields: dict[str, Any]) -> None:
    sent = body(**fields)
    XAIProvider.translator.validate("/v1/chat/completions", sent)
    # Accepted fields reach xAI as written; only our own flag is dropped.
    assert to_native(sent) == {k: v for k, v in sent.items() if k != "unibatch_native"}


def test_oversized_line_is_a_limit_error() -> None:
    huge = body(messages=[{"role": "user", "content": "x" * (25 * 1024 * 1024)}])
    with pytest.raises(LimitError, match="25 MB"):
        XAIProvider.translator.validate("/v1/chat/completions", huge)


def test_native_flag_is_stripped_and_nothing_else_changes() -> None:
    native = body(unibatch_native=True, functions=[{"name": "f"}])
    assert to_native(native) == body(functions=[{"name": "f"}])


def test_legacy_functions_become_tools() -> None:
    sent = to_native(body(functions=[{"name": "f", "parameters": {}}], function_call={"name": "f"}))
    assert sent["tools"] == [{"type": "function", "function": {"name": "f", "parameters": {}}}]
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "f"}}
    assert "functions" not in sent and "function_call" not in sent
    assert to_native(body(function_call="auto"))["tool_choice"] == "auto"


# -- results -----------------------------------------------------------------------------


def completion(**usage: Any) -> dict[str, Any]:
    return {
        "id": "3f1c",
        "object": "chat.completion",
        "created": 1,
        "model": "grok-3-mini",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}
        ],
        "usage": usage,
    }


def test_reasoning_tokens_move_into_completion_tokens() -> None:
    native = {
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "total_tokens": 35,
        "prompt_tokens_details": {"cached_tokens": 4},
        "completion_tokens_details": {"reasoning_tokens": 20},
        "cost_in_usd_ticks": 1234,
        "num_sources_used": 0,
    }
    usage, ours = normalize_usage(native)
    assert (usage["completion_tokens"], usage["total_tokens"]) == (25, 35)
    assert "cost_in_usd_ticks" not in usage and "num_sources_used" not in usage
    assert ours == Usage(input_tokens=10, output_tokens=25, cached_tokens=4, reasoning_tokens=20)


def test_usage_already_counting_reasoning_is_left_alone() -> None:
    native = {
        "prompt_tokens": 10,
        "completion_tokens": 25,
        "total_tokens": 35,
        "completion_tokens_details": {"reasoning_tokens": 20},
    }
    usage, ours = normalize_usage(native)
    assert usage["completion_tokens"] == 25 and ours.output_tokens == 25


@pytest.mark.parametrize(
    ("native", "openai"),
    [
        ("stop", "stop"),
        ("REASON_STOP", "stop"),
        ("max_len", "length"),
        ("REASON_MAX_CONTEXT", "length"),
        ("REASON_TOOL_CALLS", "tool_calls"),
        ("tool_calls", "tool_calls"),
        ("something_new", "something_new"),
    ],
)
def test_finish_reasons(native: str, openai: str) -> None:
    raw = completion(prompt_tokens=1, completion_tokens=1)
    raw["choices"][0]["finish_reason"] = native
    body, _ = to_chat_completion(raw)
    assert body["choices"][0]["finish_reason"] == openai
    assert raw["choices"][0]["finish_reason"] == native  # the native object is untouched


def row(result: dict[str, Any], rid: str = "text-1") -> dict[str, Any]:
    return {"batch_request_id": rid, "batch_result": result}


def test_success_row_is_a_chat_completion_with_raw_kept() -> None:
    native = row({"response": {"chat_get_completion": completion(prompt_tokens=3)}})
    parsed = parse_row(native, BatchStatus.COMPLETED)
    assert parsed.custom_id == "text-1" and parsed.status is RequestStatus.SUCCEEDED
    assert parsed.status_code == 200 and parsed.request_id == "3f1c"
    assert parsed.body is not None and parsed.body["object"] == "chat.completion"
    assert parsed.usage.input_tokens == 3
    assert parsed.raw is not None and orjson.loads(parsed.raw) == native


@pytest.mark.parametrize(
    ("error", "batch_status", "status", "code"),
    [
        (
            "Maximum number of tokens max_tokens must be positive but max_tokens = -5",
            BatchStatus.COMPLETED,
            RequestStatus.ERRORED,
            "xai_error",
        ),
        ("Batch cancelled", BatchStatus.CANCELLED, RequestStatus.CANCELLED, "batch_cancelled"),
        ("Batch cancelled", BatchStatus.EXPIRED, RequestStatus.EXPIRED, "batch_expired"),
        ("Batch cancelled", BatchStatus.FAILED, RequestStatus.ERRORED, "batch_failed"),
        (
            {"code": 13, "message": "Internal error"},
            BatchStatus.COMPLETED,
            RequestStatus.ERRORED,
            "xai_error",
        ),
    ],
)
def test_error_rows_are_bare_strings(
    error: Any, batch_status: BatchStatus, status: RequestStatus, code: str
) -> None:
    parsed = parse_row(row({"error": error}), batch_status)
    assert parsed.status is status
    assert parsed.error is not None and parsed.error.code == code
    assert parsed.error.message and parsed.body is None and parsed.status_code is None


def test_internal_errors_are_retryable_and_validation_errors_not() -> None:
    internal = parse_row(row({"error": "Internal error, please retry"}), BatchStatus.COMPLETED)
    invalid = parse_row(row({"error": "max_tokens must be positive"}), BatchStatus.COMPLETED)
    assert internal.error is not None and internal.error.retryable
    assert invalid.error is not None and not invalid.error.retryable


def test_row_with_nothing_is_an_error_not_a_crash() -> None:
    parsed = parse_row(row({}), BatchStatus.COMPLETED)
    assert parsed.status is RequestStatus.ERRORED
