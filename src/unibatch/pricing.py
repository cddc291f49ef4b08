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
    # Prompt-cache writes (Anthropic: 1.25 times input for five minutes, 2 times for an
    # hour); None: the plain input price.
    cache_write: float | None = None
    cache_write_1h: float | None = None


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
        cache_write=per_mtok(price.cache_write_mtok),
        cache_write_1h=per_mtok(getattr(price, "cache_write_1h_mtok", None)),
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
        write = price.cache_write if price.cache_write is not None else price.input
        write_1h = price.cache_write_1h if price.cache_write_1h is not None else write
        return Rates(
            price.input * factor,
            cached * factor,
            price.output * factor,
            write * factor,
            write_1h * factor,
        )

    def cost(self, provider: str, model: str, usage: Usage, discount: float) -> Cost:
        return self.rates(provider, model, discount).cost(usage)


@dataclass(frozen=True, slots=True)
class Rates:
    """USD per token at batch prices."""

    input: float
    cached_input: float
    output: float
    # None: the plain input rate (providers without prompt-cache writes).
    cache_write: float | None = None
    cache_write_1h: float | None = None

    def as_list(self) -> list[float | None]:
        return [self.input, self.cached_input, self.output, self.cache_write, self.cache_write_1h]

    def cost(self, usage: Usage) -> Cost:
        return Cost(input=self.input_cost(usage), output=usage.output_tokens * self.output)

    def input_cost(self, usage: Usage) -> float:
        """Input tokens at their rates: fresh, read from the cache, written to it (for five
        minutes or for an hour). Cached and written tokens are part of `input_tokens`."""
        cached = min(usage.cached_tokens, usage.input_tokens)
        cost = (usage.input_tokens - cached) * self.input + cached * self.cached_input
        written = min(usage.cache_write_tokens, usage.input_tokens - cached)
        if not written:
            return cost
        hour = min(usage.cache_write_1h_tokens, written)
        five_minutes = self.input if self.cache_write is None else self.cache_write
        one_hour = five_minutes if self.cache_write_1h is None else self.cache_write_1h
        extra = (written - hour) * (five_minutes - self.input) + hour * (one_hour - self.input)
        return cost + extra
