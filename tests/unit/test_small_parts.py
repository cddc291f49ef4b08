"""Codec, schedules, pricing, settings and the public API surface."""

from __future__ import annotations

import pytest

import unibatch
from unibatch import codec
from unibatch.config import Settings
from unibatch.engine.schedule import poll_delay, retry_delay
from unibatch.pricing import Price, Pricer, list_price
from unibatch.providers.anthropic.translate import TRANSLATOR as ANTHROPIC
from unibatch.types import Usage


@pytest.mark.parametrize("doc", [{"a": 1}, {"text": "x" * 5000}, [1, 2, 3], None, "s"])
def test_codec_round_trip(doc: object) -> None:
    assert codec.unpack(codec.pack(doc)) == doc


def test_codec_compresses_large_documents() -> None:
    doc = {"text": "the same words again " * 200}
    assert len(codec.pack(doc)) < len(str(doc)) / 4


def test_poll_schedule_repeats_last_entry() -> None:
    schedule = (30.0, 60.0, 120.0, 300.0, 600.0)
    assert [poll_delay(schedule, n) for n in range(7)] == [30, 60, 120, 300, 600, 600, 600]


def test_retry_prefers_retry_after() -> None:
    assert retry_delay((30.0, 60.0), 1, retry_after=7.0) == 7.0
    assert retry_delay((30.0, 60.0), 1) == 30.0
    assert retry_delay((30.0, 60.0), 5) == 60.0


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UNIBATCH_POLL_SCHEDULE", "1, 2,5")
    monkeypatch.setenv("UNIBATCH_MAX_AGE", "3600")
    settings = Settings()
    assert settings.poll_schedule == (1.0, 2.0, 5.0)
    assert settings.max_age == 3600.0


def test_default_poll_schedule() -> None:
    # The first polls come within seconds: a small batch ends quickly and a poll is cheap.
    assert Settings().poll_schedule == (2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)


def test_batch_price_is_half_of_list_price() -> None:
    price = list_price("openai", "gpt-4o-mini")
    assert price is not None
    usage = Usage(input_tokens=1_000_000, output_tokens=1_000_000)
    cost = Pricer().cost("openai", "gpt-4o-mini", usage, 0.5)
    assert cost.input == pytest.approx(price.input * 0.5)
    assert cost.output == pytest.approx(price.output * 0.5)


def test_cached_tokens_use_cached_rate() -> None:
    pricer = Pricer(overrides={"openai/m": Price(input=2.0, output=8.0, cached_input=0.5)})
    cost = pricer.cost("openai", "m", Usage(1_000_000, 0, cached_tokens=400_000), 0.5)
    assert cost.input == pytest.approx((600_000 * 2.0 + 400_000 * 0.5) * 0.5 / 1e6)


def test_anthropic_cache_writes_cost_the_cache_write_rates() -> None:
    # Haiku 4.5 lists $1 input, $0.10 cache reads, $1.25 five-minute and $2 one-hour
    # cache writes per million tokens (genai-prices); batches cost half.
    message = {
        "id": "msg_1",
        "model": "claude-haiku-4-5",
        "content": [{"type": "text", "text": "ok"}],
        "stop_reason": "end_turn",
        "usage": {
            "input_tokens": 100_000,
            "cache_read_input_tokens": 200_000,
            "cache_creation_input_tokens": 400_000,
            "cache_creation": {
                "ephemeral_5m_input_tokens": 300_000,
                "ephemeral_1h_input_tokens": 100_000,
            },
            "output_tokens": 0,
        },
    }
    body, usage = ANTHROPIC.from_native(message)
    assert (usage.input_tokens, usage.cached_tokens, usage.cache_write_tokens) == (
        700_000,
        200_000,
        400_000,
    )
    assert usage.as_dict()["cache_write_tokens"] == 400_000
    assert body["usage"]["prompt_tokens"] == 700_000  # OpenAI's usage has no slot for writes
    cost = Pricer().cost("anthropic", "claude-haiku-4-5", usage, 0.5)
    dollars = 0.1 * 1.0 + 0.2 * 0.1 + 0.3 * 1.25 + 0.1 * 2.0
    assert cost.input == pytest.approx(dollars * 0.5)


def test_discount_override_and_unknown_model() -> None:
    pricer = Pricer(discounts={"openai": 1.0}, overrides={"openai/m": Price(1.0, 1.0)})
    assert pricer.cost("openai", "m", Usage(1_000_000, 0), 0.5).total == pytest.approx(1.0)
    assert pricer.cost("openai", "no-such-model", Usage(10, 10), 0.5).total == 0.0


def test_public_api_is_sorted_and_importable() -> None:
    assert list(unibatch.__all__) == sorted(unibatch.__all__)
    for name in unibatch.__all__:
        assert hasattr(unibatch, name)


def test_batch_discounts_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UNIBATCH_BATCH_DISCOUNTS", "xai=0.5, anthropic=0.4")
    settings = Settings()
    assert settings.batch_discounts == {"xai": 0.5, "anthropic": 0.4}
    pricer = Pricer(discounts=settings.batch_discounts, overrides={"xai/m": Price(1.0, 0.0)})
    assert pricer.cost("xai", "m", Usage(1_000_000, 0), 0.8).total == pytest.approx(0.5)
    monkeypatch.setenv("UNIBATCH_BATCH_DISCOUNTS", "xai")
    with pytest.raises(ValueError, match="PROVIDER=SHARE"):
        Settings()
