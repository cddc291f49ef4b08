"""Cost of a request at batch prices.

List prices come from the `genai-prices` package (maintained per provider and model),
with their cached-input, cache-write and long-context tiers; each provider's
`batch_discount` (in its spec) turns them into batch prices. A TOML file
(`UNIBATCH_PRICES`, `unibatch.price_file`) overrides a model's price and discount. A
model with no known price has no cost (None), never a cost of 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

import orjson

from unibatch.errors import UnknownProviderError
from unibatch.types import Cost, Usage

GENAI_PRICES = "genai-prices"


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
    # Long-context tiers, ascending: (prompt tokens above which, the price of ALL the
    # request's tokens then), the providers' "cliff" pricing (Gemini 2.5 Pro over 200k).
    tiers: tuple[tuple[int, Price], ...] = ()
    # Share of the list price charged for batch work, over the provider's (negotiated
    # rates); None: the provider's.
    batch_discount: float | None = None
    # Where the price comes from: genai-prices, or the overrides file's path.
    source: str = GENAI_PRICES

    def as_dict(self) -> dict[str, Any]:
        """The price as results show it (USD per million tokens, list prices)."""
        shown: dict[str, Any] = {"input": self.input, "output": self.output}
        for name in ("cached_input", "cache_write", "cache_write_1h", "batch_discount"):
            if getattr(self, name) is not None:
                shown[name] = getattr(self, name)
        if self.tiers:
            shown["tiers"] = [{"above": start, **p.as_dict()} for start, p in self.tiers]
        shown["source"] = self.source
        return shown


def _tier_at(value: Any, start: int | None) -> float | None:
    """A genai-prices value (a Decimal or TieredPrices) at the tier starting at `start`
    (None: the base)."""
    if value is None:
        return None
    tiers = getattr(value, "tiers", None)
    if tiers is None:
        return float(value)
    price = value.base
    for tier in tiers:
        if start is not None and tier.start <= start:
            price = tier.price
    return float(price)


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
    fields = {
        "input": price.input_mtok,
        "output": price.output_mtok,
        "cached_input": price.cache_read_mtok,
        "cache_write": price.cache_write_mtok,
        "cache_write_1h": getattr(price, "cache_write_1h_mtok", None),
    }

    def at(start: int | None) -> Price:
        v = {name: _tier_at(value, start) for name, value in fields.items()}
        return Price(
            input=v["input"] or 0.0,
            output=v["output"] or 0.0,
            cached_input=v["cached_input"],
            cache_write=v["cache_write"],
            cache_write_1h=v["cache_write_1h"],
        )

    starts = sorted(
        {t.start for value in fields.values() for t in getattr(value, "tiers", None) or ()}
    )
    return replace(at(None), tiers=tuple((start, at(start)) for start in starts))


class Pricer:
    """Computes batch-price cost per request; cheap enough to call per result row."""

    def __init__(
        self,
        discounts: dict[str, float] | None = None,
        overrides: Mapping[str, Price] | None = None,
    ) -> None:
        self._discounts = dict(discounts or {})
        self._overrides = dict(overrides or {})

    @classmethod
    def from_settings(cls, settings: Any) -> Pricer:
        """The pricer `settings` describe: its batch discounts and its prices file."""
        from unibatch.price_file import load_prices

        overrides = load_prices(settings.prices) if settings.prices else {}
        return cls(discounts=settings.batch_discounts, overrides=overrides)

    def discount(self, provider: str, default: float) -> float:
        return self._discounts.get(provider, default)

    def price(self, provider: str, model: str) -> Price | None:
        return self._overrides.get(f"{provider}/{model}") or list_price(provider, model)

    def rates(
        self, provider: str, model: str, discount: float, *, discounted: bool = True
    ) -> Rates:
        """Per-token batch prices, looked up once per job rather than once per row
        (`discounted=False`: `discount` as given, the user's batch discounts ignored).
        A model with no known price gets `Rates.unknown` (its `known` is False)."""
        price = self.price(provider, model)
        if price is None:
            return UNKNOWN
        return Rates.of(price, self._share(price, provider, discount, discounted) / 1e6)

    def _share(self, price: Price, provider: str, discount: float, discounted: bool) -> float:
        """The share of the list price charged: the price's own batch discount, else the
        user's for the provider, else `discount` (as given with `discounted=False`)."""
        if not discounted:
            return discount
        if price.batch_discount is not None:
            return price.batch_discount
        return self.discount(provider, discount)

    def price_used(
        self, provider: str, model: str, discount: float, *, discounted: bool = True
    ) -> str | None:
        """The price `rates` costs with, as the JSON text results show: list prices per
        million tokens, the share of them charged (`batch_discount`), where they come
        from; None for an unknown price."""
        price = self.price(provider, model)
        if price is None:
            return None
        share = self._share(price, provider, discount, discounted)
        return orjson.dumps({**price.as_dict(), "batch_discount": share}).decode()

    def list_rates(self, provider: str, model: str) -> Rates | None:
        """Per-token list prices (real-time requests get no batch discount); None when
        the model's price is unknown (a local server's), so its cost is stored as null."""
        if self.price(provider, model) is None:
            return None
        return self.rates(provider, model, 1.0, discounted=False)

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
    # Long-context tiers: (prompt tokens above which, the rates then), ascending.
    tiers: tuple[tuple[int, Rates], ...] = ()
    # False when the model's price is unknown: its costs are stored as null.
    known: bool = True

    @classmethod
    def of(cls, price: Price, factor: float) -> Rates:
        """`price` (per million tokens) times `factor`."""
        cached = price.cached_input if price.cached_input is not None else price.input
        write = price.cache_write if price.cache_write is not None else price.input
        write_1h = price.cache_write_1h if price.cache_write_1h is not None else write
        return cls(
            price.input * factor,
            cached * factor,
            price.output * factor,
            write * factor,
            write_1h * factor,
            tuple((start, cls.of(tier, factor)) for start, tier in price.tiers),
        )

    def for_prompt(self, input_tokens: int) -> Rates:
        """The rates of a request with this many prompt tokens (its long-context tier)."""
        chosen = self
        for start, tier in self.tiers:
            if input_tokens > start:
                chosen = tier
        return chosen

    def as_list(self) -> list[Any]:
        """A JSON-able form (`from_list` reads it back), for the decoding process."""
        return [
            self.input,
            self.cached_input,
            self.output,
            self.cache_write,
            self.cache_write_1h,
            [[start, tier.as_list()] for start, tier in self.tiers],
            self.known,
        ]

    @classmethod
    def from_list(cls, values: list[Any]) -> Rates:
        rate_in, cached, rate_out, write, write_1h, tiers, known = values
        return cls(
            rate_in,
            cached,
            rate_out,
            write,
            write_1h,
            tuple((start, cls.from_list(tier)) for start, tier in tiers),
            known,
        )

    def cost(self, usage: Usage) -> Cost:
        rates = self.for_prompt(usage.input_tokens)
        return Cost(input=rates.input_cost(usage), output=usage.output_tokens * rates.output)

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


UNKNOWN = Rates(0.0, 0.0, 0.0, known=False)
