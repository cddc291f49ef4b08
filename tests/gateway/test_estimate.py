"""The cost estimate a budget reserves counts every answer a request asks for."""

from __future__ import annotations

from typing import Any

import pytest

from unibatch.gateway.convert import estimate_cost
from unibatch.pricing import Price, Pricer

# Output tokens cost $1 each and prompts nothing, so an estimate is its output tokens.
PRICER = Pricer(
    discounts={"openai": 1.0, "gemini": 1.0, "anthropic": 1.0},
    overrides={
        "openai/m": Price(input=0.0, output=1e6),
        "gemini/m": Price(input=0.0, output=1e6),
        "anthropic/m": Price(input=0.0, output=1e6),
    },
)
HI = [{"role": "user", "content": "hi"}]


def _estimate(body: dict[str, Any], default_max_tokens: int = 100) -> float:
    return estimate_cost(
        [{"custom_id": "a", "body": body}],
        pricer=PRICER,
        default_model=None,
        default_max_tokens=default_max_tokens,
    )


@pytest.mark.parametrize(
    ("body", "tokens"),
    [
        ({"model": "openai/m", "messages": HI, "max_tokens": 10}, 10),
        ({"model": "openai/m", "messages": HI, "max_tokens": 10, "n": 5}, 50),
        ({"model": "openai/m", "messages": HI, "max_completion_tokens": 7, "n": 3}, 21),
        # No limit: the default per answer, for each answer.
        ({"model": "openai/m", "messages": HI, "n": 4}, 400),
        # Translated to Gemini's candidateCount: the same count.
        ({"model": "gemini/m", "messages": HI, "max_tokens": 10, "n": 8}, 80),
        (
            {
                "model": "gemini/m",
                "unibatch_native": True,
                "contents": [{"role": "user", "parts": [{"text": "hi"}]}],
                "generationConfig": {"candidateCount": 6, "maxOutputTokens": 20},
            },
            120,
        ),
        (
            {
                "model": "gemini/m",
                "unibatch_native": True,
                "contents": [{"role": "user", "parts": [{"text": "hi"}]}],
                "generation_config": {"candidate_count": 2},
            },
            200,
        ),
        ({"model": "anthropic/m", "messages": HI, "max_tokens": 30}, 30),
        # Not counts: the engine refuses such bodies; the estimate assumes one answer.
        ({"model": "openai/m", "messages": HI, "max_tokens": 10, "n": True}, 10),
        ({"model": "openai/m", "messages": HI, "max_tokens": 10, "n": 0}, 10),
        ({"model": "openai/m", "messages": HI, "max_tokens": 10, "n": "9"}, 10),
    ],
)
def test_output_tokens_are_counted_for_every_answer(body: dict[str, Any], tokens: int) -> None:
    assert _estimate(body) == pytest.approx(tokens)


def test_a_batch_sums_its_lines() -> None:
    lines = [
        {"custom_id": "a", "body": {"model": "openai/m", "messages": HI, "max_tokens": 1, "n": 2}},
        {"custom_id": "b", "body": {"messages": HI, "max_tokens": 3}},
    ]
    total = estimate_cost(lines, pricer=PRICER, default_model="gemini/m", default_max_tokens=5)
    assert total == pytest.approx(2 + 3)
