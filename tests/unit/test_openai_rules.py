"""OpenAI bodies are sent as written, but one OpenAI would refuse for its model is refused
while the file is read, naming the field."""

from __future__ import annotations

from typing import Any

import pytest

from unibatch.errors import InputError
from unibatch.providers.openai.translate import TRANSLATOR

CHAT = "/v1/chat/completions"
HI = [{"role": "user", "content": "Hi"}]


def body(model: str = "gpt-4o-mini", **fields: Any) -> dict[str, Any]:
    return {"model": model, "messages": HI, **fields}


@pytest.mark.parametrize(
    ("request_body", "field", "words"),
    [
        (body(temperature=2.5), "temperature", "must be <= 2"),
        (body(stop=list("abcde")), "stop", "at most 4"),
        (body(top_logprobs=2), "top_logprobs", "needs logprobs"),
        (body("o1", max_tokens=100), "max_tokens", "use max_completion_tokens"),
        (body("o4-mini-2025-04-16", stop="x"), "stop", "does not take stop"),
        (body("gpt-5-mini", temperature=0.2), "temperature", "only the default temperature"),
        (body("gpt-5", reasoning_effort="xhigh"), "reasoning_effort", "minimal, low"),
        (
            {"model": "text-embedding-ada-002", "input": "x", "dimensions": 8},
            "dimensions",
            "text-embedding-3",
        ),
    ],
)
def test_what_openai_refuses_is_refused_before_sending(
    request_body: dict[str, Any], field: str, words: str
) -> None:
    with pytest.raises(InputError) as caught:
        TRANSLATOR.validate(CHAT, request_body)
    assert caught.value.field == field
    assert str(caught.value).startswith(f"openai cannot honour body.{field}: ")
    assert words in str(caught.value)


def test_bodies_openai_takes_pass_unchanged() -> None:
    for ok in (
        body(max_tokens=100, temperature=0, stop=list("abcd"), logprobs=True, top_logprobs=20),
        body("o3", max_completion_tokens=100, reasoning_effort="high"),
        body("gpt-5.2", temperature=0.3, reasoning_effort="none"),  # no rule known for 5.x
        # Responses API tools do not nest the function; their names are not checked here.
        {"model": "gpt-4o", "input": "hi", "tools": [{"type": "function", "name": "a b"}]},
    ):
        assert TRANSLATOR.to_native(CHAT, ok) == ok


def test_the_native_flag_is_not_sent() -> None:
    sent = TRANSLATOR.to_native(CHAT, {**body(), "unibatch_native": True})
    assert sent == body()
