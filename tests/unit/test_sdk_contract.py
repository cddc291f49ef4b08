"""Every request the translation accepts is one the provider's own SDK types describe.

A generated corpus of ordinary OpenAI chat bodies (text, images, tool calls and their
results, tools, tool_choice, response_format, stop, sampling parameters, n and seed, at
values across OpenAI's ranges, some beyond the provider's) goes through the
Anthropic and Gemini translations; each request they accept must validate against the
official SDK's request types with unknown fields refused, and break none of the
provider's rules. A field the SDK types do not know is a bug.

One documented exception: anthropic SDK 1.0 dropped `temperature`, `top_p` and `top_k`
from its types while the API still takes them on the models the rule table allows (the
SDK sends them as extra body fields); they are checked by the rules, not the types.
"""

from __future__ import annotations

import warnings
from typing import Any

from anthropic.types.message_create_params import MessageCreateParamsNonStreaming
from google.genai import types
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import NonInteractiveExampleWarning

from tests.support.typeddicts import problems
from unibatch.errors import InputError
from unibatch.providers.anthropic.rules import RULES as ANTHROPIC_RULES
from unibatch.providers.anthropic.translate import to_messages_params
from unibatch.providers.gemini.rules import RULES as GEMINI_RULES
from unibatch.providers.gemini.translate import to_request

CLAUDE = [
    "claude-haiku-4-5",
    "claude-3-5-haiku-20241022",
    "claude-opus-4-7",
    "claude-sonnet-5",
    "claude-opus-4-5",
    "claude-opus-4-6",
    "claude-3-7-sonnet-latest",
]
GEMINI = ["gemini-2.5-flash", "gemini-2.5-pro", "gemini-2.0-flash", "gemini-3-pro-preview"]
SAMPLING = ("temperature", "top_p", "top_k")

words = st.text(alphabet="abc xyz", min_size=1, max_size=12)
images = st.sampled_from(
    [
        "https://example.com/cat.png",
        "data:image/png;base64,iVBORw0KGgo=",
        "data:image/jpg;base64,/9j/4AAQ",
        "data:image/webp;base64,UklGRg==",
    ]
)
parts = st.one_of(
    st.builds(lambda t: {"type": "text", "text": t}, words),
    st.builds(lambda u: {"type": "image_url", "image_url": {"url": u}}, images),
)
user = st.builds(
    lambda c: {"role": "user", "content": c},
    st.one_of(words, st.lists(parts, min_size=1, max_size=3)),
)
# Names OpenAI takes; "get.weather" only Gemini takes ("." is outside Anthropic's pattern).
names = st.sampled_from(["lookup", "weather", "add", "get.weather", "_x" * 32])
tools = st.lists(names, max_size=3, unique=True).map(
    lambda found: [
        {
            "type": "function",
            "function": {
                "name": name,
                "description": f"{name} tool",
                "parameters": {"type": "object", "properties": {"q": {"type": "string"}}},
                **({"strict": True} if i % 2 else {}),
            },
        }
        for i, name in enumerate(found)
    ]
)


@st.composite
def tool_turn(draw: st.DrawFn, tool_names: list[str]) -> list[dict[str, Any]]:
    """An assistant turn calling tools, and the answer to each call."""
    if not tool_names:
        return []
    count = draw(st.integers(min_value=1, max_value=2))
    calls = [
        {
            "id": f"call_{i}_{draw(st.sampled_from(['a', 'b']))}",
            "type": "function",
            "function": {"name": draw(st.sampled_from(tool_names)), "arguments": '{"q": "x"}'},
            # What Gemini 3 returns with a call and needs back (other providers ignore it).
            "extra_content": {"google": {"thought_signature": "c2lnbmF0dXJl"}},
        }
        for i in range(count)
    ]
    answers = [{"role": "tool", "tool_call_id": c["id"], "content": draw(words)} for c in calls]
    return [{"role": "assistant", "content": None, "tool_calls": calls}, *answers]


@st.composite
def chat_bodies(draw: st.DrawFn, models: list[str]) -> dict[str, Any]:
    declared = draw(tools)
    tool_names = [t["function"]["name"] for t in declared]
    messages: list[dict[str, Any]] = []
    if draw(st.booleans()):
        messages.append({"role": "system", "content": draw(words)})
    messages.append(draw(user))
    messages += draw(tool_turn(tool_names))
    if draw(st.booleans()):
        messages.append(draw(user))
    body: dict[str, Any] = {"model": draw(st.sampled_from(models)), "messages": messages}
    if declared:
        body["tools"] = declared
        body["tool_choice"] = draw(
            st.sampled_from(
                [
                    "auto",
                    "required",
                    "none",
                    {"type": "function", "function": {"name": tool_names[0]}},
                ]
            )
        )
        body["parallel_tool_calls"] = draw(st.booleans())
    elif draw(st.booleans()):
        schema = {"type": "object", "properties": {"answer": {"type": "string"}}}
        body["response_format"] = draw(
            st.sampled_from(
                [
                    {"type": "json_object"},
                    {"type": "text"},
                    {
                        "type": "json_schema",
                        "json_schema": {"name": "out", "schema": schema, "strict": True},
                    },
                    # Not an object at the root: Claude's tool input cannot hold it.
                    {
                        "type": "json_schema",
                        "json_schema": {"name": "out", "schema": {"type": "array"}},
                    },
                ]
            )
        )
    optional = {
        # Gemini takes at most 5 stop sequences.
        "stop": st.one_of(words, st.lists(words, min_size=1, max_size=6)),
        # OpenAI's range; Anthropic's stops at 1.
        "temperature": st.floats(min_value=0, max_value=2),
        "top_p": st.floats(min_value=0.1, max_value=1),
        # Beyond every Claude model's maximum output.
        "max_tokens": st.integers(min_value=1, max_value=140_000),
        # Gemini only (Anthropic refuses both): candidateCount and seed.
        "n": st.integers(min_value=1, max_value=3),
        "seed": st.integers(min_value=0, max_value=2**31 - 1),
        "user": words,
        # openai-python's ReasoningEffort values.
        "reasoning_effort": st.sampled_from(
            ["none", "minimal", "low", "medium", "high", "xhigh", "max"]
        ),
    }
    for name, values in optional.items():
        if name in ("n", "seed") and not body["model"].startswith("gemini"):
            continue
        if draw(st.booleans()):
            body[name] = draw(values)
    return body


CONTRACT = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@CONTRACT
@given(chat_bodies(CLAUDE))
def test_translated_anthropic_requests_match_the_sdk_types(body: dict[str, Any]) -> None:
    try:
        params = to_messages_params(body)
    except InputError:
        return  # refused before sending: what the property allows
    assert not ANTHROPIC_RULES.violations(params, params["model"])
    typed = {k: v for k, v in params.items() if k not in SAMPLING}
    assert problems(typed, MessageCreateParamsNonStreaming) == []


# Each top-level field of Gemini's wire request, and the google-genai type it holds.
GEMINI_FIELDS: dict[str, Any] = {
    "contents": types.Content,
    "systemInstruction": types.Content,
    "tools": types.Tool,
    "toolConfig": types.ToolConfig,
    "generationConfig": types.GenerationConfig,
}


@CONTRACT
@given(chat_bodies(GEMINI))
def test_translated_gemini_requests_match_the_sdk_types(body: dict[str, Any]) -> None:
    try:
        request = to_request(body)
    except InputError:
        return
    assert not GEMINI_RULES.violations(request, body["model"])
    assert set(request) <= set(GEMINI_FIELDS), sorted(request)
    for name, value in request.items():
        for item in value if isinstance(value, list) else [value]:
            GEMINI_FIELDS[name].model_validate(item)  # google-genai forbids unknown fields


def examples(strategy: st.SearchStrategy[dict[str, Any]], n: int) -> list[dict[str, Any]]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NonInteractiveExampleWarning)
        return [strategy.example() for _ in range(n)]


def test_the_corpus_is_mostly_accepted() -> None:
    """The properties above say something only if many generated bodies get through."""
    accepted = {"anthropic": 0, "gemini": 0}
    for body in examples(chat_bodies(CLAUDE), 60):
        try:
            to_messages_params(body)
            accepted["anthropic"] += 1
        except InputError:
            pass
    for body in examples(chat_bodies(GEMINI), 60):
        try:
            to_request(body)
            accepted["gemini"] += 1
        except InputError:
            pass
    assert accepted["anthropic"] >= 15 and accepted["gemini"] >= 15, accepted
