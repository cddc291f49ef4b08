"""The rules Gemini enforces per model family, applied before anything is sent, and the
translation fixes that keep ordinary OpenAI bodies inside them."""

from __future__ import annotations

import re
from typing import Any

import orjson
import pytest

from unibatch.errors import InputError
from unibatch.providers.gemini.adapter import parse_entry
from unibatch.providers.gemini.rules import RULES
from unibatch.providers.gemini.translate import to_chat_completion, to_request
from unibatch.types import RequestStatus

USER = {"role": "user", "content": "What is the weather in Paris?"}
TOOL = {
    "type": "function",
    "function": {"name": "weather", "parameters": {"type": "object"}},
}


def body(model: str, **fields: Any) -> dict[str, Any]:
    return {"model": model, "messages": [USER], **fields}


def refused(request: dict[str, Any], field: str) -> str:
    with pytest.raises(InputError) as caught:
        to_request(request)
    message = str(caught.value)
    assert re.match(rf"gemini cannot honour body\.{re.escape(field)}\b", message), message
    return message


def call(signature: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": "call_1",
        "type": "function",
        "function": {"name": "weather", "arguments": '{"city": "Paris"}'},
    }
    if signature is not None:
        out["extra_content"] = {"google": {"thought_signature": signature}}
    return out


def tool_turn(signature: str | None) -> list[dict[str, Any]]:
    return [
        USER,
        {"role": "assistant", "content": None, "tool_calls": [call(signature)]},
        {"role": "tool", "tool_call_id": "call_1", "content": '{"temp": 12}'},
    ]


def test_thought_signatures_come_back_on_tool_calls_and_are_sent_again() -> None:
    response = {
        "candidates": [
            {
                "content": {
                    "role": "model",
                    "parts": [
                        {
                            "functionCall": {"name": "weather", "args": {"city": "Paris"}},
                            "thoughtSignature": "c2lnbmF0dXJl",
                        }
                    ],
                },
                "finishReason": "STOP",
            }
        ]
    }
    chat = to_chat_completion(response, "gemini-3-pro-preview")
    sent_back = chat["choices"][0]["message"]["tool_calls"][0]
    assert sent_back["extra_content"] == {"google": {"thought_signature": "c2lnbmF0dXJl"}}
    request = to_request(
        body(
            "gemini-3-pro-preview",
            messages=[
                USER,
                chat["choices"][0]["message"],
                {"role": "tool", "tool_call_id": sent_back["id"], "content": '{"temp": 12}'},
            ],
            tools=[TOOL],
        )
    )
    part = request["contents"][1]["parts"][0]
    assert part["thoughtSignature"] == "c2lnbmF0dXJl"


def test_gemini_3_refuses_a_current_tool_turn_without_signatures() -> None:
    message = refused(
        body("gemini-3-pro-preview", messages=tool_turn(None), tools=[TOOL]), "messages"
    )
    assert "thought signature" in message
    to_request(body("gemini-3-pro-preview", messages=tool_turn("sig"), tools=[TOOL]))
    # Earlier turns, answered before the user wrote again, are not checked by Gemini.
    older = [*tool_turn(None), {"role": "assistant", "content": "12 degrees"}, USER]
    to_request(body("gemini-3-flash-preview", messages=older, tools=[TOOL]))
    # Gemini 2.5 never asks for signatures.
    to_request(body("gemini-2.5-flash", messages=tool_turn(None), tools=[TOOL]))


@pytest.mark.parametrize(
    ("model", "effort", "config"),
    [
        ("gemini-3-pro-preview", "low", {"thinkingLevel": "LOW"}),
        ("gemini-3-pro-preview", "high", {"thinkingLevel": "HIGH"}),
        ("gemini-3-flash-preview", "minimal", {"thinkingLevel": "MINIMAL"}),
        ("gemini-3-flash-preview", "medium", {"thinkingLevel": "MEDIUM"}),
        ("gemini-2.5-flash", "none", {"thinkingBudget": 0}),
        ("gemini-2.5-flash", "high", {"thinkingBudget": 24576}),
        # 2.5 Pro only thinks: `minimal` is its smallest budget, never 0.
        ("gemini-2.5-pro", "minimal", {"thinkingBudget": 128}),
    ],
)
def test_reasoning_effort_follows_the_model(model: str, effort: str, config: Any) -> None:
    request = to_request(body(model, reasoning_effort=effort))
    assert request["generationConfig"]["thinkingConfig"] == config


@pytest.mark.parametrize(
    ("model", "effort"),
    [
        ("gemini-2.5-pro", "none"),
        ("gemini-3-pro-preview", "none"),
        ("gemini-3-pro-preview", "medium"),
        ("gemini-3-flash-preview", "none"),
        ("gemini-4-ultra", "minimal"),  # unknown: the newest (Pro) rules
    ],
)
def test_thinking_a_model_cannot_do_is_refused(model: str, effort: str) -> None:
    refused(body(model, reasoning_effort=effort), "reasoning_effort")


def test_tools_with_json_mode_are_refused_by_2x_models_only() -> None:
    fmt = {"type": "json_object"}
    refused(body("gemini-2.5-flash", tools=[TOOL], response_format=fmt), "response_format")
    refused(body("gemini-2.0-flash", tools=[TOOL], response_format=fmt), "response_format")
    request = to_request(body("gemini-3-flash-preview", tools=[TOOL], response_format=fmt))
    assert request["generationConfig"]["responseMimeType"] == "application/json"


def test_penalties_only_where_enabled_and_zero_ones_dropped() -> None:
    refused(body("gemini-2.5-flash", presence_penalty=0.5), "presence_penalty")
    refused(body("gemini-3-pro-preview", frequency_penalty=0.5), "frequency_penalty")
    request = to_request(body("gemini-2.0-flash", presence_penalty=0.5))
    assert request["generationConfig"]["presencePenalty"] == 0.5
    zero = to_request(body("gemini-2.5-flash", presence_penalty=0, frequency_penalty=0.0))
    assert "generationConfig" not in zero


def entry(reason: str) -> dict[str, Any]:
    return {
        "key": "ubseq-0",
        "response": {
            "candidates": [{"content": {"parts": [{"text": ""}]}, "finishReason": reason}],
            "usageMetadata": {"promptTokenCount": 7, "candidatesTokenCount": 3},
        },
    }


@pytest.mark.parametrize(
    ("reason", "retryable"),
    [
        ("MALFORMED_FUNCTION_CALL", True),
        ("OTHER", True),
        ("UNEXPECTED_TOOL_CALL", False),
        ("TOO_MANY_TOOL_CALLS", False),
        ("SOMETHING_NEW", False),
    ],
)
def test_finish_reasons_without_an_answer_are_errors(reason: str, retryable: bool) -> None:
    line = entry(reason)
    row = parse_entry(line, line["key"], "gemini-2.5-flash", orjson.dumps(line))
    assert row.status is RequestStatus.ERRORED
    assert row.error is not None
    assert (row.error.code, row.error.retryable) == (reason.lower(), retryable)
    assert reason in row.error.message
    # The provider billed the attempt: its tokens are kept.
    assert (row.usage.input_tokens, row.usage.output_tokens) == (7, 3)


@pytest.mark.parametrize(("reason", "finish"), [("STOP", "stop"), ("SAFETY", "content_filter")])
def test_answers_and_refusals_still_succeed(reason: str, finish: str) -> None:
    line = entry(reason)
    row = parse_entry(line, line["key"], "gemini-2.5-flash", orjson.dumps(line))
    assert row.status is RequestStatus.SUCCEEDED
    assert row.body is not None and row.body["choices"][0]["finish_reason"] == finish


def test_every_rule_names_its_source() -> None:
    rules = RULES.defaults + tuple(r for f in RULES.families for r in f.rules)
    assert rules and all(rule.source for rule in rules)
    assert RULES.family("models/gemini-2.5-pro").prefix == "gemini-2.5-pro"  # type: ignore[union-attr]


@pytest.mark.parametrize("model", ["gemini-2.5-flash", "gemini-2.0-flash", "gemini-3-pro-preview"])
def test_sampling_limits_of_every_model(model: str) -> None:
    assert "from 0 to 2" in refused(body(model, temperature=2.5), "temperature")
    assert "at most 5 stop sequences" in refused(body(model, stop=list("abcdef")), "stop")
    request = to_request(body(model, temperature=2, stop=list("abcde")))
    assert request["generationConfig"]["stopSequences"] == list("abcde")


@pytest.mark.parametrize("name", ["1st_tool", "get weather", "x" * 65, "get/weather"])
def test_function_names_gemini_refuses(name: str) -> None:
    tool = {"type": "function", "function": {"name": name}}
    assert "starts with a letter or an underscore" in refused(
        body("gemini-2.5-flash", tools=[tool]), "tools"
    )


def test_function_names_gemini_takes() -> None:
    names = ["_private", "ns.get:weather-1", "x" * 64]
    tools = [{"type": "function", "function": {"name": n}} for n in names]
    request = to_request(body("gemini-2.5-flash", tools=tools))
    assert [d["name"] for d in request["tools"][0]["functionDeclarations"]] == names
