"""Queue limits as data: the deployment's setting parsed and resolved over each
provider's defaults, the capacity check, and the planner's split by estimated tokens."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from unibatch.config import Settings
from unibatch.engine.plan import Planner
from unibatch.engine.queue import configured_limits, scopes
from unibatch.engine.queue_tokens import input_tokens
from unibatch.errors import LimitError
from unibatch.estimate.tokens import input_tokens as estimated_tokens
from unibatch.providers.anthropic import SPEC as ANTHROPIC
from unibatch.providers.gemini import SPEC as GEMINI
from unibatch.providers.openai import SPEC as OPENAI
from unibatch.store.queue import Limit, Need, apply_learned, check


def test_the_setting_takes_pairs_and_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "UNIBATCH_QUEUE_LIMITS",
        "openai/gpt-4.1.enqueued_tokens=2000000, anthropic.queued_requests=100000,"
        "gemini.concurrent_batches=100",
    )
    assert Settings().queue_limits == {
        "openai/gpt-4.1.enqueued_tokens": 2_000_000,
        "anthropic.queued_requests": 100_000,
        "gemini.concurrent_batches": 100,
    }
    monkeypatch.setenv("UNIBATCH_QUEUE_LIMITS", '{"openai/gpt-4o": {"enqueued_tokens": 5}}')
    assert Settings().queue_limits == {"openai/gpt-4o.enqueued_tokens": 5}


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("openai.tokens=5", "KIND one of enqueued_tokens"),
        ("openai/gpt-4o-mini=5", "KIND one of"),
        ("openai.enqueued_tokens", "must be PROVIDER[/MODEL].KIND=N"),
        ("openai.enqueued_tokens=-1", "0 (no limit) or more"),
        ("openai.enqueued_tokens=lots", "integer"),
    ],
)
def test_a_bad_setting_names_the_entry(
    monkeypatch: pytest.MonkeyPatch, value: str, says: str
) -> None:
    monkeypatch.setenv("UNIBATCH_QUEUE_LIMITS", value)
    with pytest.raises(ValidationError, match="queue_limits") as caught:
        Settings()
    assert says in str(caught.value)


def test_defaults_are_the_providers_published_lowest_tiers() -> None:
    settings = Settings()
    # OpenAI's tiers differ too much for a default: its limit is set or learned.
    assert configured_limits(settings, OPENAI, "gpt-4o-mini") == []
    assert configured_limits(settings, OPENAI, "gpt-5") == []
    assert configured_limits(settings, ANTHROPIC, "claude-haiku-4-5") == [
        Limit("anthropic", "", "queued_requests", 100_000)
    ]
    assert configured_limits(settings, GEMINI, "gemini-2.5-flash") == [
        Limit("gemini", "", "concurrent_batches", 100)
    ]


def test_the_deployment_wins_and_the_model_over_the_provider() -> None:
    settings = Settings(
        queue_limits={
            "openai.enqueued_tokens": 5_000_000,
            "openai/gpt-4o.enqueued_tokens": 0,
            "anthropic/claude-haiku-4-5.queued_requests": 7,
        }
    )
    # The provider's figure replaces the spec's per-model default; each model its own.
    assert configured_limits(settings, OPENAI, "gpt-4o-mini") == [
        Limit("openai", "gpt-4o-mini", "enqueued_tokens", 5_000_000)
    ]
    assert configured_limits(settings, OPENAI, "gpt-4o") == []  # 0: no limit
    # A per-model figure counts that model's jobs only.
    assert configured_limits(settings, ANTHROPIC, "claude-haiku-4-5") == [
        Limit("anthropic", "claude-haiku-4-5", "queued_requests", 7)
    ]


def test_a_learned_limit_holds_until_the_configuration_changes() -> None:
    settings = Settings(queue_limits={"openai/m.enqueued_tokens": 1000})
    configured = configured_limits(settings, OPENAI, "m")
    slots = scopes(settings, OPENAI, "m")
    learned = {("m", "enqueued_tokens"): {"learned": 300, "configured": 1000}}
    assert apply_learned(configured, learned, slots)[0].value == 300
    changed = {("m", "enqueued_tokens"): {"learned": 300, "configured": 900}}
    assert apply_learned(configured, changed, slots)[0].value == 1000
    # Learned where nothing is configured: in force while nothing is.
    bare = {("x", "enqueued_tokens"): {"learned": 50, "configured": None}}
    found = apply_learned([], bare, scopes(Settings(), OPENAI, "x"))
    assert found == [Limit("openai", "x", "enqueued_tokens", 50)]


def test_the_check_counts_in_flight_per_model_and_per_provider() -> None:
    tokens = Limit("openai", "m", "enqueued_tokens", 100)
    batches = Limit("openai", "", "concurrent_batches", 3)
    flight = {"m": (1, 10, 60), "other": (1, 10, 500)}
    assert check([tokens, batches], flight, Need("m", 40, 5)).ok
    waiting = check([tokens, batches], flight, Need("m", 41, 5))
    assert not waiting.ok and waiting.too_big is None
    assert "openai/m enqueued tokens 60 in flight of a 100 limit" in str(waiting.reason)
    assert not check([batches], {**flight, "third": (1, 1, 1)}, Need("m", 1, 1)).ok
    too_big = check([tokens], {}, Need("m", 101, 1))
    assert too_big.too_big == tokens


def _line(i: int, text: str) -> dict:
    return {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text}]}


def test_the_planner_splits_jobs_at_half_the_token_limit() -> None:
    planner = Planner("b", 0.0, token_limit=lambda spec, model: 100)
    body = _line(0, "x" * 40)  # 10 tokens
    tokens = input_tokens("openai", "gpt-4o-mini", "/v1/chat/completions", body)
    assert tokens == 10
    for _ in range(12):
        planner.assign(OPENAI, "gpt-4o-mini", "/v1/chat/completions", 100, tokens=tokens)
    assert [j.input_tokens for j in planner.jobs] == [50, 50, 20]
    with pytest.raises(LimitError, match="about 101 input tokens") as caught:
        planner.assign(OPENAI, "gpt-4o-mini", "/v1/chat/completions", 9, "f.jsonl", 7, tokens=101)
    assert caught.value.line == 7


def test_openai_models_are_counted_with_their_tokenizer_where_a_limit_asks_for_it() -> None:
    # Code: far more tokens than four characters each.
    body = _line(0, "for(i=0;i<n;i++){a[i]=b[i]*c[i];}" * 20)
    chat = "/v1/chat/completions"
    rough = input_tokens("openai", "gpt-4o-mini", chat, body)
    exact = input_tokens("openai", "gpt-4o-mini", chat, body, exact=True)
    assert exact == estimated_tokens("openai", "gpt-4o-mini", chat, body)
    assert exact > rough * 1.3
    # OpenAI's models on Azure count alike; providers without a tokenizer of theirs keep
    # the approximation.
    assert input_tokens("azure", "gpt-4o-mini", chat, body, exact=True) == exact
    assert input_tokens("anthropic", "claude-sonnet-4-5", chat, body, exact=True) == rough
    limited = Planner("b", 0.0, token_limit=lambda spec, model: 10_000)
    assert limited.counts_tokens(OPENAI, "gpt-4o-mini")
    assert not Planner("b", 0.0).counts_tokens(OPENAI, "gpt-4o-mini")
