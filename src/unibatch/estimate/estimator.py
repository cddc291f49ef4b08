"""What a request file would cost, on its own models or on others, sending nothing.

The file is read one line at a time and only per-model sums are kept, so memory stays
flat however long it is. Each line is checked and translated as a submit would (the same
rules): a line the model would refuse is counted as refused, not priced.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from unibatch.engine.inputs import DEFAULT_ENDPOINT, RawLine, Source, raw_lines
from unibatch.errors import InputError, UnknownProviderError
from unibatch.estimate.tokens import encoding_of, input_tokens, output_tokens
from unibatch.pricing import Pricer, Rates
from unibatch.providers.registry import spec_of, split_model
from unibatch.providers.translate import Translator


@dataclass(slots=True)
class ModelEstimate:
    """One model's sums. Costs are None when the model's price is unknown."""

    model: str
    requests: int = 0
    input_tokens: int = 0
    # The most output tokens the requests may use (their limits, or the default).
    output_tokens: int = 0
    batch_cost: float | None = 0.0
    list_cost: float | None = 0.0
    # Lines this model would refuse (not counted above) and the first reason.
    refused: int = 0
    refusal: str | None = None
    # Requests an opt-in result cache would answer without sending (0 without one).
    cached: int = 0
    cheapest: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "requests": self.requests,
            "input_tokens": self.input_tokens,
            "output_tokens_max": self.output_tokens,
            "batch_cost": _rounded(self.batch_cost),
            "list_cost": _rounded(self.list_cost),
            "refused": self.refused,
            "refusal": self.refusal,
            "cached": self.cached,
            "cheapest": self.cheapest,
        }


@dataclass(slots=True)
class Estimate:
    """A file's estimate, one entry per model (in the order given or first seen)."""

    lines: int = 0
    models: list[ModelEstimate] = field(default_factory=list)
    currency: str = "USD"

    def as_dict(self) -> dict[str, Any]:
        return {
            "lines": self.lines,
            "currency": self.currency,
            "models": [m.as_dict() for m in self.models],
        }

    def get(self, model: str) -> ModelEstimate:
        for entry in self.models:
            if entry.model == model:
                return entry
        raise KeyError(model)


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 9)


@dataclass(slots=True)
class _Target:
    """A model being estimated, with what pricing and translating it needs."""

    entry: ModelEstimate
    provider: str
    bare_model: str
    endpoints: frozenset[str]
    translator: Translator
    # The encoding its prompts are counted with: models that share one share the count.
    encoding: str
    batch: Rates | None
    listed: Rates | None


class Estimator:
    """Sums what each model would be charged. `models` ("provider/model") override the
    model of every line, each in turn; without them each line's own `body.model` is used."""

    def __init__(self, pricer: Pricer | None = None, models: Sequence[str] = ()) -> None:
        self.pricer = pricer or Pricer()
        self.overrides = list(dict.fromkeys(models))
        self._targets: dict[str, _Target] = {}
        for model in self.overrides:
            try:
                self._target(model)
            except UnknownProviderError as exc:
                raise InputError(f"--model: {exc.detail}", field="model") from None

    def _target(self, model: str) -> _Target:
        target = self._targets.get(model)
        if target is None:
            provider, bare = split_model(model)
            spec = spec_of(provider)
            listed = self.pricer.list_rates(provider, bare)
            batch = (
                None if listed is None else self.pricer.rates(provider, bare, spec.batch_discount)
            )
            target = self._targets[model] = _Target(
                ModelEstimate(model=f"{provider}/{bare}"),
                provider,
                bare,
                spec.endpoints,
                spec.adapter_class().translator,
                encoding_of(provider, bare),
                batch,
                listed,
            )
        return target

    def add(
        self,
        target: _Target,
        endpoint: str,
        body: dict[str, Any],
        counted: dict[str, int] | None = None,
    ) -> None:
        """Count one request on one model (or its refusal); `counted` holds the line's
        prompt tokens per encoding, for the next models."""
        entry = target.entry
        if endpoint not in target.endpoints:
            self._refuse(entry, f"{target.provider} does not serve {endpoint}")
            return
        if body.get("model") != target.bare_model:
            body = {**body, "model": target.bare_model}
        try:
            native = target.translator.to_native(endpoint, body)
        except InputError as exc:
            self._refuse(entry, exc.detail)
            return
        tokens = None if counted is None else counted.get(target.encoding)
        if tokens is None:
            tokens = input_tokens(target.provider, target.bare_model, endpoint, body)
            if counted is not None:
                counted[target.encoding] = tokens
        ceiling = output_tokens(endpoint, body, native)
        entry.requests += 1
        entry.input_tokens += tokens
        entry.output_tokens += ceiling
        if target.batch is None or target.listed is None:
            entry.batch_cost = entry.list_cost = None
            return
        if entry.batch_cost is not None and entry.list_cost is not None:
            # A long prompt may fall in a dearer tier (Gemini 2.5 Pro over 200k tokens).
            batch, listed = target.batch.for_prompt(tokens), target.listed.for_prompt(tokens)
            entry.batch_cost += tokens * batch.input + ceiling * batch.output
            entry.list_cost += tokens * listed.input + ceiling * listed.output

    @staticmethod
    def _refuse(entry: ModelEstimate, why: str) -> None:
        entry.refused += 1
        if entry.refusal is None:
            entry.refusal = why

    def _line(self, path: str | None, raw: RawLine) -> tuple[str, dict[str, Any]]:
        n, data = raw
        if not isinstance(data, Mapping):
            raise InputError("each line must be a JSON object", path=path, line=n)
        body = data.get("body")
        if not isinstance(body, dict):
            raise InputError("missing body (a JSON object)", path=path, line=n, field="body")
        endpoint = data.get("url") or DEFAULT_ENDPOINT
        return str(endpoint), body

    def run(self, source: Source) -> Estimate:
        """Read `source` (a JSONL path or request dicts) and sum it up."""
        path, lines = raw_lines(source)
        estimate = Estimate()
        for target in self._targets.values():
            estimate.models.append(target.entry)
        for raw in lines:
            endpoint, body = self._line(path, raw)
            estimate.lines += 1
            counted: dict[str, int] = {}
            for target in self._line_targets(path, raw[0], body, estimate):
                self.add(target, endpoint, body, counted)
        if estimate.lines == 0:
            raise InputError("no requests", path=path)
        _mark_cheapest(estimate.models)
        return estimate

    def _line_targets(
        self, path: str | None, n: int, body: dict[str, Any], estimate: Estimate
    ) -> Iterator[_Target]:
        if self.overrides:
            yield from self._targets.values()
            return
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise InputError(
                "missing body.model (or pass --model, e.g. openai/gpt-4o-mini)",
                path=path,
                line=n,
                field="model",
            )
        known = model in self._targets
        try:
            target = self._target(model)
        except UnknownProviderError as exc:
            raise InputError(exc.detail, path=path, line=n, field="model") from None
        if not known:
            estimate.models.append(target.entry)
        yield target


def _mark_cheapest(models: list[ModelEstimate]) -> None:
    """The model with the lowest batch cost among those that accept every line."""
    priced = [m for m in models if m.batch_cost is not None and not m.refused and m.requests]
    if len(priced) > 1:
        min(priced, key=lambda m: m.batch_cost or 0.0).cheapest = True


def estimate(
    source: Source, models: Sequence[str] = (), *, pricer: Pricer | None = None
) -> Estimate:
    """What `source` would cost on each of `models` (or on its own models): requests,
    input tokens, the output-token ceiling, and the cost at batch and list prices.

    >>> models = ["openai/gpt-4o-mini", "anthropic/claude-haiku-4-5"]
    >>> estimate("requests.jsonl", models).get(models[1]).batch_cost  # doctest: +SKIP
    """
    return Estimator(pricer, models).run(source)
