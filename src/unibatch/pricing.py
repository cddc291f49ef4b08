"""Cost of a request at batch prices.

List prices come from the `genai-prices` package (maintained per provider and model);
each provider's `batch_discount` (in its spec) turns them into batch prices. Users may override a
model's price or a provider's discount.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from unibatch.errors import UnknownProviderError
from unibatch.types import Cost, Usage


@dataclass(frozen=True, slots=True)
class Price:
    """List prices in USD per million tokens."""

    input: float
    output: float
    cached_input: float | None = None


@lru_cache(maxsize=512)
def list_price(provider: str, model: str) -> Price | None:
    """The model's synchronous price, or None when genai-prices does not know the model."""
    from genai_prices import Usage as GPUsage
    from genai_prices import calc_price

    from unibatch.providers.registry import spec_of

    try:
        # genai-prices names some providers differently from us (the spec says how).
        provider_id = spec_of(provider).prices_as or provider
    except UnknownProviderError:
        provider_id = provider
    try:
        calc = calc_price(
            GPUsage(input_tokens=1, output_tokens=1),
            model_ref=model,
            provider_id=provider_id,
        )
    except LookupError:
        return None
    price = calc.model_price

    def per_mtok(value: object) -> float | None:
        # Tiered prices (by prompt size) take their base tier: batches rarely leave it.
        if value is None:
            return None
        base = getattr(value, "base", value)
        return float(base)  # type: ignore[arg-type]

    return Price(
        input=per_mtok(price.input_mtok) or 0.0,
        output=per_mtok(price.output_mtok) or 0.0,
        cached_input=per_mtok(price.cache_read_mtok),
    )


class Pricer:
    """Computes batch-price cost per request; cheap enough to call per result row."""

    def __init__(
        self,
        discounts: dict[str, float] | None = None,
        overrides: dict[str, Price] | None = None,
    ) -> None:
        self._discounts = dict(discounts or {})
        self._overrides = dict(overrides or {})

    def discount(self, provider: str, default: float) -> float:
        return self._discounts.get(provider, default)

    def price(self, provider: str, model: str) -> Price | None:
        return self._overrides.get(f"{provider}/{model}") or list_price(provider, model)

    def rates(self, provider: str, model: str, discount: float) -> Rates:
        """Per-token batch prices, looked up once per job rather than once per row."""
        price = self.price(provider, model)
        if price is None:
            return Rates(0.0, 0.0, 0.0)
        factor = self.discount(provider, discount) / 1e6
        cached = price.cached_input if price.cached_input is not None else price.input
        return Rates(price.input * factor, cached * factor, price.output * factor)

    def cost(self, provider: str, model: str, usage: Usage, discount: float) -> Cost:
        return self.rates(provider, model, discount).cost(usage)


@dataclass(frozen=True, slots=True)
class Rates:
    """USD per token at batch prices."""

    input: float
    cached_input: float
    output: float

    def cost(self, usage: Usage) -> Cost:
        cached = min(usage.cached_tokens, usage.input_tokens)
        return Cost(
            input=(usage.input_tokens - cached) * self.input + cached * self.cached_input,
            output=usage.output_tokens * self.output,
        )
