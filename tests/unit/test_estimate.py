"""`unibatch estimate`: tokens counted as OpenAI counts them, sums per model, refusals."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from unibatch.errors import InputError
from unibatch.estimate import estimate, input_tokens
from unibatch.estimate.encodings import get_encoding
from unibatch.estimate.tokens import DEFAULT_OUTPUT_TOKENS, IMAGE_TOKENS, output_tokens
from unibatch.pricing import Price, Pricer

CHAT = "/v1/chat/completions"

# OpenAI's cookbook ("How to count tokens with tiktoken") lists these messages with the
# prompt_tokens its API reported for them: 129 for gpt-3.5-turbo and gpt-4, 124 for gpt-4o
# and gpt-4o-mini.
COOKBOOK = [
    {
        "role": "system",
        "content": "You are a helpful, pattern-following assistant that translates "
        "corporate jargon into plain English.",
    },
    {
        "role": "system",
        "name": "example_user",
        "content": "New synergies will help drive top-line growth.",
    },
    {
        "role": "system",
        "name": "example_assistant",
        "content": "Things working well together will increase revenue.",
    },
    {
        "role": "system",
        "name": "example_user",
        "content": "Let's circle back when we have more bandwidth to touch base on "
        "opportunities for increased leverage.",
    },
    {
        "role": "system",
        "name": "example_assistant",
        "content": "Let's talk later when we're less busy about how to do better.",
    },
    {
        "role": "user",
        "content": "This late pivot means we don't have time to boil the ocean for the "
        "client deliverable.",
    },
]


@pytest.mark.parametrize(
    ("model", "expected"),
    [("gpt-3.5-turbo", 129), ("gpt-4", 129), ("gpt-4o", 124), ("gpt-4o-mini", 124)],
)
def test_chat_prompt_counts_match_what_openai_reported(model: str, expected: int) -> None:
    assert input_tokens("openai", model, CHAT, {"model": model, "messages": COOKBOOK}) == expected


def _as_sent(encoding: str, messages: list[dict[str, str]]) -> int:
    """The prompt as the model receives it, token by token: each message is
    <|start|>role<|message|>content<|end|>, and the reply is primed with
    <|start|>assistant<|message|>."""
    enc = get_encoding(encoding)
    start, message, end = [-1], [-2], [-3]
    tokens: list[int] = []
    for m in messages:
        tokens += start + enc.encode_ordinary(m["role"]) + message
        tokens += enc.encode_ordinary(m["content"]) + end
    tokens += start + enc.encode_ordinary("assistant") + message
    return len(tokens)


@pytest.mark.parametrize(
    ("model", "encoding"), [("gpt-4o-mini", "o200k_base"), ("gpt-4", "cl100k_base")]
)
def test_chat_estimate_is_the_tokenizer_count_of_the_prompt_as_sent(
    model: str, encoding: str
) -> None:
    messages = [
        {"role": "system", "content": "Réponds en français, brièvement."},
        {"role": "user", "content": "Résume:\n\n    def f(x):\n        return x ** 2  # 日本語"},
        {"role": "assistant", "content": "La fonction renvoie le carré de x."},
        {"role": "user", "content": "<|endoftext|> is text here, not a special token"},
    ]
    body = {"model": model, "messages": messages, "max_tokens": 5}
    assert input_tokens("openai", model, CHAT, body) == _as_sent(encoding, messages)


def test_embeddings_count_their_input_alone() -> None:
    enc = get_encoding("cl100k_base")
    texts = ["the first text", "and a second, longer one"]
    body = {"model": "text-embedding-3-small", "input": texts}
    expected = sum(len(enc.encode_ordinary(t)) for t in texts)
    assert input_tokens("openai", "text-embedding-3-small", "/v1/embeddings", body) == expected
    tokens = {"model": "text-embedding-3-small", "input": [[1, 2, 3], [4, 5]]}
    assert input_tokens("openai", "text-embedding-3-small", "/v1/embeddings", tokens) == 5


def test_responses_count_instructions_and_input_as_messages() -> None:
    body = {"model": "gpt-4o", "instructions": "Be brief.", "input": "Hello there"}
    chat = {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hello there"},
        ]
    }
    assert input_tokens("openai", "gpt-4o", "/v1/responses", body) == input_tokens(
        "openai", "gpt-4o", CHAT, chat
    )


def test_images_are_counted_at_their_fixed_size() -> None:
    text = {"role": "user", "content": [{"type": "text", "text": "What is this?"}]}
    image = {
        "role": "user",
        "content": [
            {"type": "text", "text": "What is this?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
        ],
    }
    with_image = input_tokens("openai", "gpt-4o", CHAT, {"messages": [image]})
    assert with_image == input_tokens("openai", "gpt-4o", CHAT, {"messages": [text]}) + IMAGE_TOKENS


@pytest.mark.parametrize(
    ("body", "native", "expected"),
    [
        ({"max_tokens": 50}, None, 50),
        ({"max_completion_tokens": 70, "n": 3}, None, 210),
        ({}, None, DEFAULT_OUTPUT_TOKENS),
        # Anthropic's translation carries the limit unibatch sends.
        ({}, {"max_tokens": 1234}, 1234),
        ({"max_tokens": 9}, {"max_tokens": 1234}, 9),
    ],
)
def test_output_ceiling(body: dict[str, Any], native: Any, expected: int) -> None:
    assert output_tokens(CHAT, body, native) == expected


def _write(path: Path, bodies: list[dict[str, Any]]) -> Path:
    lines = [{"custom_id": f"r{i}", "body": b} for i, b in enumerate(bodies)]
    path.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines))
    return path


# $1 per million input tokens and $2 per million output at list prices.
PRICER = Pricer(
    overrides={
        "openai/gpt-4o-mini": Price(input=1.0, output=2.0),
        "anthropic/claude-haiku-4-5": Price(input=0.5, output=1.0),
    }
)
HI = [{"role": "user", "content": "hi"}]


def test_models_side_by_side_with_refusals_and_cheapest(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "in.jsonl",
        [
            {"model": "openai/gpt-4o-mini", "messages": HI, "max_tokens": 10},
            {"model": "openai/gpt-4o-mini", "messages": HI, "max_tokens": 20},
            # Anthropic takes no seed: this line is refused there, not priced.
            {"model": "openai/gpt-4o-mini", "messages": HI, "max_tokens": 30, "seed": 1},
        ],
    )
    result = estimate(path, ["openai/gpt-4o-mini", "anthropic/claude-haiku-4-5"], pricer=PRICER)
    assert result.lines == 3
    openai, anthropic = result.models
    per_request = input_tokens("openai", "gpt-4o-mini", CHAT, {"messages": HI})
    assert (openai.requests, openai.input_tokens, openai.output_tokens) == (3, 3 * per_request, 60)
    # OpenAI's batch price is half the list price.
    assert openai.list_cost == pytest.approx((3 * per_request * 1.0 + 60 * 2.0) / 1e6)
    assert openai.batch_cost == pytest.approx(openai.list_cost / 2)
    assert (anthropic.requests, anthropic.refused, anthropic.output_tokens) == (2, 1, 30)
    assert anthropic.refusal is not None and "seed" in anthropic.refusal
    # The cheaper model refuses a line: the cheapest is the one that takes them all, and
    # with one such model there is nothing to compare.
    assert not openai.cheapest and not anthropic.cheapest
    assert result.as_dict()["models"][0]["cached"] == 0


def test_cheapest_is_marked(tmp_path: Path) -> None:
    path = _write(tmp_path / "in.jsonl", [{"messages": HI, "max_tokens": 10}])
    result = estimate(path, ["openai/gpt-4o-mini", "anthropic/claude-haiku-4-5"], pricer=PRICER)
    assert [m.cheapest for m in result.models] == [False, True]


def test_without_models_each_line_is_priced_on_its_own_model(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "in.jsonl",
        [
            {"model": "openai/gpt-4o-mini", "messages": HI},
            {"model": "anthropic/claude-haiku-4-5", "messages": HI},
            {"model": "openai/gpt-4o-mini", "messages": HI},
        ],
    )
    result = estimate(path, pricer=PRICER)
    assert [(m.model, m.requests) for m in result.models] == [
        ("openai/gpt-4o-mini", 2),
        ("anthropic/claude-haiku-4-5", 1),
    ]


def test_a_model_without_a_price_costs_null_not_zero(tmp_path: Path) -> None:
    path = _write(tmp_path / "in.jsonl", [{"messages": HI}])
    result = estimate(path, ["openai/no-such-model-anywhere"], pricer=PRICER)
    entry = result.models[0]
    assert entry.requests == 1 and entry.input_tokens > 0
    assert entry.batch_cost is None and entry.list_cost is None
    assert result.as_dict()["models"][0]["batch_cost"] is None


def test_a_bad_line_is_named(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_bytes(b'{"custom_id": "a", "body": {"messages": []}}\n{"custom_id": "b"}\n')
    with pytest.raises(InputError) as caught:
        estimate(path, ["openai/gpt-4o-mini"], pricer=PRICER)
    assert caught.value.line == 2 and caught.value.field == "body"
    with pytest.raises(InputError) as caught:
        estimate(path, pricer=PRICER)
    assert caught.value.line == 1 and caught.value.field == "model"


def test_an_unknown_provider_in_model_is_an_input_error(tmp_path: Path) -> None:
    path = _write(tmp_path / "in.jsonl", [{"messages": HI}])
    with pytest.raises(InputError, match="--model"):
        estimate(path, ["nosuch/model"], pricer=PRICER)
