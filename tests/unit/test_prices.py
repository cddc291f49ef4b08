"""Exact prices: long-context tiers from the price data, a prices file over it."""

from __future__ import annotations

from pathlib import Path

import pytest

from unibatch.config import Settings
from unibatch.errors import ConfigurationError
from unibatch.pricing import Pricer, list_price
from unibatch.types import Usage


def test_long_context_tier_prices_every_token_of_a_long_prompt() -> None:
    price = list_price("gemini", "gemini-2.5-pro")
    assert price is not None and price.tiers, "genai-prices has Gemini 2.5 Pro's 200k tier"
    start, tier = price.tiers[0]
    assert start == 200_000 and tier.input > price.input and tier.output > price.output
    rates = Pricer().rates("gemini", "gemini-2.5-pro", 0.5)
    short = rates.cost(Usage(input_tokens=start, output_tokens=1000))
    long = rates.cost(Usage(input_tokens=start + 1, output_tokens=1000))
    assert short.input == pytest.approx(start * price.input / 1e6 * 0.5)
    assert long.input == pytest.approx((start + 1) * tier.input / 1e6 * 0.5)
    assert long.output == pytest.approx(1000 * tier.output / 1e6 * 0.5)


def test_cached_and_cache_write_prices_come_from_the_price_data() -> None:
    price = list_price("anthropic", "claude-sonnet-4-5")
    assert price is not None
    assert price.cached_input is not None and price.cached_input < price.input
    assert price.cache_write is not None and price.cache_write > price.input


PRICES = """
["openai/gpt-4o-mini"]
input = 0.10
output = 0.40
cached_input = 0.05
batch_discount = 0.4

["local/llama"]
input = 0.0
output = 0.0

["gemini/gemini-2.5-pro"]
input = 1.0
output = 8.0
tiers = [{ above = 100000, input = 2.0, output = 12.0 }]
"""


def test_prices_file_overrides_and_adds_models(tmp_path: Path) -> None:
    path = tmp_path / "prices.toml"
    path.write_text(PRICES)
    pricer = Pricer.from_settings(Settings(prices=path))
    price = pricer.price("openai", "gpt-4o-mini")
    assert price is not None and price.source == str(path)
    # The file's own batch discount wins over the provider's 0.5.
    rates = pricer.rates("openai", "gpt-4o-mini", 0.5)
    assert rates.input == pytest.approx(0.10 * 0.4 / 1e6)
    assert rates.cached_input == pytest.approx(0.05 * 0.4 / 1e6)
    # A model the price data lacks is priced (free here), not unknown.
    assert pricer.list_rates("local", "llama") is not None
    long = pricer.rates("gemini", "gemini-2.5-pro", 0.5).for_prompt(100_001)
    assert long.output == pytest.approx(12.0 * 0.5 / 1e6)


def test_settings_read_the_file_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "prices.toml"
    path.write_text(PRICES)
    monkeypatch.setenv("UNIBATCH_PRICES", str(path))
    assert Pricer.from_settings(Settings()).price("local", "llama") is not None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('["openai/m"]\ninput = 1\n', "missing 'output'"),
        ('["openai/m"]\ninput = 1\noutput = -2\n', "output: expected a number"),
        ('["openai/m"]\ninput = 1\noutput = 2\nimput = 3\n', "unknown field 'imput'"),
        ('["m"]\ninput = 1\noutput = 2\n', "provider/model"),
        ('["openai/m"]\ninput = 1\noutput = 2\ntiers = [{input = 1, output = 2}]\n', "above"),
        ("input = [", "not valid TOML"),
    ],
)
def test_a_bad_prices_file_is_named(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "prices.toml"
    path.write_text(text)
    with pytest.raises(ConfigurationError, match=message) as caught:
        Pricer.from_settings(Settings(prices=path))
    assert str(path) in str(caught.value)


def test_rates_survive_the_trip_to_the_decoding_process() -> None:
    rates = Pricer().rates("gemini", "gemini-2.5-pro", 0.5)
    assert type(rates).from_list(rates.as_list()) == rates
    unknown = Pricer().rates("openai", "no-such-model-anywhere", 0.5)
    assert not type(unknown).from_list(unknown.as_list()).known
