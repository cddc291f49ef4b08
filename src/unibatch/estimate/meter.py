"""A running total of requests' estimated cost at batch prices, one request at a time
(for spend caps and budgets, which see requests as a batch is read)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from unibatch.estimate.tokens import DEFAULT_OUTPUT_TOKENS, input_tokens, output_tokens
from unibatch.pricing import Pricer, Rates
from unibatch.providers.registry import spec_of


class CostMeter:
    """Adds up input tokens and the output ceiling of each request, priced at its model's
    batch price; models with no known price are listed in `unpriced` instead."""

    def __init__(self, pricer: Pricer, *, default_output: int = DEFAULT_OUTPUT_TOKENS) -> None:
        self.pricer = pricer
        self.default_output = default_output
        self.total = 0.0
        self.requests = 0
        self.unpriced: list[str] = []
        self._rates: dict[tuple[str, str], Rates] = {}

    def _rates_of(self, provider: str, model: str) -> Rates:
        rates = self._rates.get((provider, model))
        if rates is None:
            discount = spec_of(provider).batch_discount
            rates = self._rates[provider, model] = self.pricer.rates(provider, model, discount)
            if not rates.known:
                self.unpriced.append(f"{provider}/{model}")
        return rates

    def add(self, provider: str, model: str, endpoint: str, body: Mapping[str, Any]) -> float:
        """Count one request (`model` without its provider prefix); its estimate."""
        rates = self._rates_of(provider, model)
        self.requests += 1
        if not rates.known:
            return 0.0
        tokens = input_tokens(provider, model, endpoint, dict(body))
        out = output_tokens(endpoint, body, default=self.default_output)
        tier = rates.for_prompt(tokens)
        cost = tokens * tier.input + out * tier.output
        self.total += cost
        return cost
