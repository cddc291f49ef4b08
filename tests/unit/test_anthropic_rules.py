"""The rules Anthropic enforces per model family, applied before anything is sent, and the
translation fixes that keep ordinary OpenAI bodies inside them."""

from __future__ import annotations

import base64
import re
from typing import Any

import pytest

from unibatch.errors import InputError
from unibatch.providers.anthropic.rules import RULES
from unibatch.providers.anthropic.translate import TRANSLATOR, to_messages_params

USER = {"role": "user", "content": "Hi"}
TOOL = {"type": "function", "function": {"name": "get", "parameters": {"type": "object"}}}


def body(model: str = "claude-haiku-4-5", **fields: Any) -> dict[str, Any]:
    return {"model": model, "messages": [USER], **fields}


def refused(request: dict[str, Any], field: str) -> str:
    with pytest.raises(InputError) as caught:
        to_messages_params(request)
    message = str(caught.value)
    assert re.match(rf"anthropic cannot honour body\.{re.escape(field)}[:.\[]", message), message
    return message


@pytest.mark.parametrize(
    "model",
    ["claude-haiku-4-5", "claude-sonnet-4-5-20250929", "claude-opus-4-1", "claude-opus-4-6"],
)
def test_temperature_and_top_p_together_are_refused_where_claude_refuses_them(model: str) -> None:
    assert "not both" in refused(body(model, temperature=0.2, top_p=0.9), "top_p")
    assert to_messages_params(body(model, temperature=0.2))["temperature"] == 0.2
    assert to_messages_params(body(model, top_p=0.9))["top_p"] == 0.9


@pytest.mark.parametrize(
    "model", ["claude-3-5-haiku-20241022", "claude-sonnet-4-20250514", "claude-opus-4-0"]
)
def test_older_models_take_both_sampling_parameters(model: str) -> None:
    params = to_messages_params(body(model, temperature=0.2, top_p=0.9))
    assert (params["temperature"], params["top_p"]) == (0.2, 0.9)


@pytest.mark.parametrize("model", ["claude-opus-4-7", "claude-sonnet-5", "claude-next-9"])
@pytest.mark.parametrize("field", ["temperature", "top_p"])
def test_newest_and_unknown_models_take_no_sampling_parameters(model: str, field: str) -> None:
    assert "deprecated for this model" in refused(body(model, **{field: 0.5}), field)
    assert "temperature" not in to_messages_params(body(model))


def test_native_bodies_are_checked_too() -> None:
    native = {"unibatch_native": True, "model": "claude-opus-4-7", "max_tokens": 5}
    refused({**native, "messages": [USER], "top_k": 5}, "top_k")


@pytest.mark.parametrize("stop", ["", "  ", ["ok", "\n"]])
def test_blank_stop_sequences_are_refused(stop: Any) -> None:
    refused(body(stop=stop), "stop")


def test_parallel_tool_calls_without_tools_sends_no_tool_choice() -> None:
    params = to_messages_params(body(parallel_tool_calls=False))
    assert "tool_choice" not in params
    with_tools = to_messages_params(body(tools=[TOOL], parallel_tool_calls=False))
    assert with_tools["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}


def conversation(*calls: tuple[str, str]) -> list[dict[str, Any]]:
    tool_calls = [
        {"id": call_id, "type": "function", "function": {"name": "get", "arguments": arguments}}
        for call_id, arguments in calls
    ]
    results = [{"role": "tool", "tool_call_id": call_id, "content": "x"} for call_id, _ in calls]
    return [USER, {"role": "assistant", "tool_calls": tool_calls}, *results]


def test_tool_call_ids_must_match_anthropics_pattern() -> None:
    message = refused(body(messages=conversation(("call.1:x", "{}")), tools=[TOOL]), "messages")
    assert "messages.1.content.0.tool_use.id" in message


def test_tool_call_ids_must_be_unique() -> None:
    calls = conversation(("call_1", "{}"), ("call_1", "{}"))
    assert "unique" in refused(body(messages=calls, tools=[TOOL]), "messages")


def test_tool_call_arguments_must_be_an_object() -> None:
    message = refused(body(messages=conversation(("call_1", "[1, 2]")), tools=[TOOL]), "messages")
    assert "JSON object" in message


def image(url: str) -> dict[str, Any]:
    return body(messages=[{"role": "user", "content": [{"type": "image_url", "image_url": url}]}])


def test_image_jpg_is_sent_as_jpeg() -> None:
    params = to_messages_params(image("data:image/jpg;base64,AAAA"))
    block = params["messages"][0]["content"][0]
    assert block["source"]["media_type"] == "image/jpeg"


def test_images_anthropic_cannot_read_are_refused() -> None:
    assert "JPEG, PNG, GIF or WebP" in refused(image("data:image/bmp;base64,AAAA"), "messages")


def document(media: str, data: bytes) -> dict[str, Any]:
    url = f"data:{media};base64,{base64.b64encode(data).decode()}"
    part = {"type": "file", "file": {"file_data": url}}
    return body(messages=[{"role": "user", "content": [part]}])


def test_plain_text_documents_are_sent_as_text_sources() -> None:
    params = to_messages_params(document("text/plain", "Grüße".encode()))
    source = params["messages"][0]["content"][0]["source"]
    assert source == {"type": "text", "media_type": "text/plain", "data": "Grüße"}


def test_other_documents_must_be_pdf() -> None:
    to_messages_params(document("application/pdf", b"%PDF-1.4"))
    assert "must be PDF or plain text" in refused(
        document("application/msword", b"doc"), "messages"
    )


def test_strict_tools_and_schemas_stay_strict() -> None:
    strict_tool = {"type": "function", "function": {**TOOL["function"], "strict": True}}
    assert to_messages_params(body(tools=[strict_tool]))["tools"][0]["strict"] is True
    assert "strict" not in to_messages_params(body(tools=[TOOL]))["tools"][0]
    schema = {"name": "out", "schema": {"type": "object"}, "strict": True}
    params = to_messages_params(
        body(response_format={"type": "json_schema", "json_schema": schema})
    )
    assert params["tools"][0]["strict"] is True


def test_thinking_tokens_are_reasoning_tokens() -> None:
    message = {
        "id": "msg_1",
        "model": "claude-opus-4-7",
        "content": [{"type": "thinking", "thinking": "..."}, {"type": "text", "text": "ok"}],
        "stop_reason": "end_turn",
        "usage": {
            "input_tokens": 10,
            "output_tokens": 50,
            "output_tokens_details": {"thinking_tokens": 40},
        },
    }
    chat, usage = TRANSLATOR.from_native(message)
    assert usage.reasoning_tokens == 40 and usage.output_tokens == 50
    assert chat["usage"]["completion_tokens_details"]["reasoning_tokens"] == 40


def test_every_rule_names_its_source() -> None:
    rules = RULES.defaults + tuple(r for f in RULES.families for r in f.rules)
    assert rules and all(rule.source for rule in rules)
    assert RULES.family("claude-opus-4-7") is not None
    assert RULES.family("claude-opus-4-7").prefix == "claude-"  # type: ignore[union-attr]
    assert RULES.family("anthropic/claude-3-haiku-20240307").prefix == "claude-3"  # type: ignore[union-attr]


# -- reasoning_effort --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "effort", "sent"),
    [
        ("claude-opus-4-7", "xhigh", "xhigh"),
        ("claude-next-9", "max", "max"),
        ("claude-opus-4-6", "max", "max"),
        ("claude-sonnet-4-6", "minimal", "low"),
    ],
)
def test_effort_models_get_adaptive_thinking_at_that_effort(
    model: str, effort: str, sent: str
) -> None:
    params = to_messages_params(body(model, reasoning_effort=effort))
    assert params["output_config"] == {"effort": sent}
    assert params["thinking"] == {"type": "adaptive"}
    # Thinking counts toward max_tokens: without one the default leaves room for it.
    assert params["max_tokens"] == 4096 + 16384
    given = to_messages_params(body(model, reasoning_effort=effort, max_completion_tokens=900))
    assert given["max_tokens"] == 900


@pytest.mark.parametrize(
    ("model", "effort", "budget"),
    [
        ("claude-sonnet-4-5", "minimal", 1024),
        ("claude-haiku-4-5-20251001", "low", 2048),
        ("claude-3-7-sonnet-latest", "medium", 8192),
        ("claude-opus-4-1", "high", 16384),
    ],
)
def test_older_thinking_models_get_a_budget(model: str, effort: str, budget: int) -> None:
    params = to_messages_params(body(model, reasoning_effort=effort))
    assert params["thinking"] == {"type": "enabled", "budget_tokens": budget}
    assert params["max_tokens"] == 4096 + budget
    assert "output_config" not in params


def test_opus_4_5_gets_effort_and_a_budget() -> None:
    params = to_messages_params(body("claude-opus-4-5", reasoning_effort="medium"))
    assert params["output_config"] == {"effort": "medium"}
    assert params["thinking"] == {"type": "enabled", "budget_tokens": 8192}


@pytest.mark.parametrize(
    ("model", "effort", "words"),
    [
        ("claude-opus-4-6", "xhigh", "effort is one of low, medium, high, max (not xhigh)"),
        ("claude-opus-4-5", "max", "(not max)"),
        ("claude-sonnet-4-5", "xhigh", "thinks within a token budget"),
        ("claude-3-5-haiku-20241022", "low", "neither thinks nor takes effort"),
    ],
)
def test_levels_a_model_lacks_are_refused(model: str, effort: str, words: str) -> None:
    assert words in refused(body(model, reasoning_effort=effort), "reasoning_effort")


def test_none_asks_for_no_thinking_on_every_model() -> None:
    for model in ("claude-3-5-haiku-20241022", "claude-sonnet-4-5", "claude-opus-4-7"):
        params = to_messages_params(body(model, reasoning_effort="none"))
        assert "thinking" not in params and "output_config" not in params
    with pytest.raises(InputError, match="must be one of none, minimal"):
        to_messages_params(body(reasoning_effort="extreme"))


def test_what_thinking_forbids_is_refused() -> None:
    assert "temperature may only be 1" in refused(
        body("claude-sonnet-4-5", reasoning_effort="low", temperature=0.3), "temperature"
    )
    assert to_messages_params(body("claude-sonnet-4-5", reasoning_effort="low", temperature=1))
    schema = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}}
    assert "forced tool" in refused(
        body("claude-opus-4-6", reasoning_effort="low", response_format=schema), "tool_choice"
    )
    assert "below max_tokens" in refused(
        body("claude-haiku-4-5", reasoning_effort="high", max_tokens=2000), "max_tokens"
    )


def test_native_thinking_is_checked_against_the_family() -> None:
    native = {"unibatch_native": True, "model": "claude-opus-4-7", "max_tokens": 5000}
    thinking = {"type": "enabled", "budget_tokens": 2048}
    refused({**native, "messages": [USER], "thinking": thinking}, "reasoning_effort")
    effort = {"effort": "low"}
    older = {**native, "model": "claude-haiku-4-5", "messages": [USER], "output_config": effort}
    assert "no effort setting" in refused(older, "reasoning_effort")


@pytest.mark.parametrize("temperature", [1.5, 2, -0.1])
def test_temperature_outside_claudes_range_is_refused(temperature: float) -> None:
    assert "temperature is from 0 to 1" in refused(body(temperature=temperature), "temperature")
    assert to_messages_params(body(temperature=1))["temperature"] == 1


@pytest.mark.parametrize(
    ("model", "limit"),
    [
        ("claude-3-haiku-20240307", 4096),
        ("claude-3-5-haiku-20241022", 8192),
        ("claude-opus-4-1", 32_000),
        ("claude-opus-4-20250514", 32_000),
        ("claude-haiku-4-5", 64_000),
        ("claude-sonnet-4-5-20250929", 64_000),
        ("claude-opus-4-6", 128_000),
        ("claude-next-9", 128_000),
    ],
)
def test_max_tokens_above_the_models_maximum_output_is_refused(model: str, limit: int) -> None:
    for key in ("max_tokens", "max_completion_tokens"):
        message = refused(body(model, **{key: limit + 1}), "max_tokens")
        assert f"at most {limit:,} output tokens" in message
    assert to_messages_params(body(model, max_tokens=limit))["max_tokens"] == limit


def test_the_default_max_tokens_with_thinking_stays_within_every_family() -> None:
    for model in ("claude-3-haiku-20240307", "claude-opus-4-1", "claude-haiku-4-5"):
        to_messages_params(body(model))
    params = to_messages_params(body("claude-opus-4-1", reasoning_effort="high"))
    assert params["max_tokens"] <= 32_000


def test_tool_names_and_schemas_claude_refuses() -> None:
    dotted = {"type": "function", "function": {"name": "get.weather"}}
    assert "1 to 128 letters" in refused(body(tools=[dotted]), "tools")
    long_name = {"type": "function", "function": {"name": "x" * 128}}
    assert to_messages_params(body(tools=[long_name]))["tools"][0]["name"] == "x" * 128
    listing = {"type": "function", "function": {"name": "get", "parameters": {"type": "array"}}}
    assert "type object" in refused(body(tools=[listing]), "tools")


def test_a_response_schema_that_is_not_an_object_is_refused() -> None:
    fmt = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "array"}}}
    message = refused(body(response_format=fmt), "response_format.json_schema.schema")
    assert "wrap the schema in an object" in message


def test_empty_text_is_refused() -> None:
    assert "empty text" in refused(body(messages=[{"role": "user", "content": ""}]), "messages")
    empty_part = {
        "role": "user",
        "content": [{"type": "text", "text": ""}, {"type": "text", "text": "x"}],
    }
    refused(body(messages=[empty_part]), "messages")


CALL = {"id": "call_1", "type": "function", "function": {"name": "get", "arguments": "{}"}}
ASKED = {"role": "assistant", "content": None, "tool_calls": [CALL]}
ANSWER = {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}


def test_tool_calls_must_be_answered_in_the_next_message() -> None:
    fine = to_messages_params(body(messages=[USER, ASKED, ANSWER, USER], tools=[TOOL]))
    assert [m["role"] for m in fine["messages"]] == ["user", "assistant", "user"]
    unanswered = refused(body(messages=[USER, ASKED, USER], tools=[TOOL]), "messages")
    assert "right after the assistant message" in unanswered
    orphan = refused(body(messages=[USER, ANSWER], tools=[TOOL]), "messages")
    assert "must answer a tool call" in orphan
