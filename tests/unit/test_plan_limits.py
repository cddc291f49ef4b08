"""Limits and rules applied while a file is read: embedding inputs per OpenAI batch, and
rules that look at the model actually sent (after `--model` and the provider prefix)."""

from __future__ import annotations

from typing import Any

import pytest

from unibatch.engine.inputs import RequestReader, embedding_inputs
from unibatch.engine.plan import Planner
from unibatch.errors import InputError, LimitError
from unibatch.providers.registry import ProviderSet

ENV = {"OPENAI_API_KEY": "k", "XAI_API_KEY": "k"}


async def plan(lines: list[dict[str, Any]], model: str | None = None) -> Planner:
    planner = Planner("ubb_test", 0.0)
    reader = RequestReader(
        lines, batch_id="ubb_test", planner=planner, providers=ProviderSet(ENV), model=model
    )
    async for _ in reader.chunks():
        pass
    return planner


def embed(i: int, inputs: Any) -> dict[str, Any]:
    return {
        "custom_id": f"e{i}",
        "url": "/v1/embeddings",
        "body": {"model": "openai/text-embedding-3-small", "input": inputs},
    }


@pytest.mark.parametrize(
    ("value", "count"),
    [("one text", 1), (["a", "b", "c"], 3), ([1, 2, 3], 1), ([[1, 2], [3]], 2), (None, 1)],
)
def test_embedding_inputs_are_counted_as_openai_counts_them(value: Any, count: int) -> None:
    assert embedding_inputs({"input": value}) == count


async def test_embeddings_batches_split_at_50000_inputs() -> None:
    # 30 requests of 2,000 texts: 60,000 inputs, more than one OpenAI batch takes.
    planner = await plan([embed(i, ["text"] * 2_000) for i in range(30)])
    assert [r["request_count"] for r in planner.rows()] == [25, 5]


async def test_one_request_over_the_input_limit_is_refused() -> None:
    # OpenAI's embedding models take 2,048 inputs per request (a rule of theirs)...
    with pytest.raises(InputError, match=r"line 1: .*body\.input: input takes at most 2048"):
        await plan([embed(0, ["text"] * 2_049)])
    # ... and no model takes more than one batch holds.
    line = embed(0, ["text"] * 50_001)
    line["body"]["model"] = "openai/own-embedder"
    with pytest.raises(LimitError, match="50001 inputs"):
        await plan([line])


async def test_chat_requests_are_not_counted_as_inputs() -> None:
    chat = {"messages": [{"role": "user", "content": "hi"}]}
    lines = [{"custom_id": f"c{i}", "body": chat} for i in range(60_000 // 50)]
    planner = await plan(lines, model="openai/gpt-4o-mini")
    assert len(planner.rows()) == 1


@pytest.mark.parametrize("model", ["xai/grok-4", "xai:grok-4"])
async def test_rules_see_the_model_given_on_the_command_line(model: str) -> None:
    """The body names no model (or another one): the rule for the model actually sent
    (grok-4 is a reasoning model, which refuses `stop`) still applies."""
    lines = [
        {"custom_id": "a", "body": {"messages": [{"role": "user", "content": "hi"}], "stop": "x"}},
        {
            "custom_id": "b",
            "body": {
                "model": "xai/grok-3",
                "messages": [{"role": "user", "content": "hi"}],
                "stop": "x",
            },
        },
    ]
    with pytest.raises(
        InputError, match=r"^line 1: xai cannot honour body\.stop: grok-4 is a reasoning"
    ):
        await plan(lines, model=model)
