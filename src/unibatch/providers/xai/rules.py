"""What xAI refuses, per Grok model family, as data.

Read by the translation (every request is checked before it is sent) and by the xAI
emulator, which errs the request's result with xAI's words: a batch result's error is a
bare string, the message of the API's `{"code": "Client specified an invalid argument",
"error": ...}` 400, which names the parameter in camelCase ("Model grok-4-1-fast-reasoning
does not support parameter presencePenalty.", quoted in open-webui/open-webui#21266 and,
for `reasoningEffort`, BerriAI/litellm#16265). xAI's reasoning
models reject `presence_penalty`, `frequency_penalty` and `stop` ("not supported by
reasoning models and will cause an error") and take `reasoning_effort` only where they
document it: grok-3-mini, with `low` or `high` (https://docs.x.ai/docs/guides/reasoning).
A Grok model we do not know gets the reasoning rules: xAI's newer models reason.
"""

from __future__ import annotations

from unibatch.providers.rules import Family, Rule, RuleTable, absent, each, lookup

_REASONING = "xAI docs, reasoning (docs.x.ai/docs/guides/reasoning)"


def _camel(name: str) -> str:
    first, *rest = name.split("_")
    return first + "".join(word.title() for word in rest)


def _unsupported(name: str) -> str:
    # The 400's words; older answers read "Argument not supported on this model:
    # presencePenalty" (yym68686/uni-api#105).
    return f"Model {{model}} does not support parameter {_camel(name)}."


def _not_for_reasoning(name: str) -> Rule:
    return absent(
        name,
        field=name,
        why="{model} is a reasoning model, which rejects it",
        provider_message=_unsupported(name),
        source=_REASONING,
    )


_NO_EFFORT = absent(
    "reasoning_effort",
    field="reasoning_effort",
    why="only grok-3-mini takes a reasoning effort, not {model}",
    provider_message=_unsupported("reasoning_effort"),
    source=_REASONING,
)
_EFFORT_VALUES = each(
    lambda request: iter([("reasoning_effort", lookup(request, "reasoning_effort"))]),
    lambda value: value is None or value in ("low", "high"),
    field="reasoning_effort",
    why="grok-3-mini takes a reasoning effort of low or high",
    # xAI's words for a value grok-3-mini does not take are not quoted anywhere we found;
    # this follows the shape of its other argument errors.
    provider_message="Invalid value for parameter reasoningEffort: expected one of low, high.",
    source=_REASONING,
)
_REASONS = tuple(
    _not_for_reasoning(name) for name in ("presence_penalty", "frequency_penalty", "stop")
)

RULES = RuleTable(
    provider="xai",
    defaults=(),
    families=(
        Family("grok-", (*_REASONS, _NO_EFFORT), "unknown Grok models (the reasoning rules)"),
        Family("grok-4", (*_REASONS, _NO_EFFORT), "Grok 4 reasoning models"),
        Family("grok-code", (*_REASONS, _NO_EFFORT), "grok-code"),
        Family("grok-3-mini", (*_REASONS, _EFFORT_VALUES), "grok-3-mini"),
        Family("grok-3", (), "Grok 3 (not mini): no reasoning"),
        Family("grok-2", (), "Grok 2: no reasoning"),
        Family("grok-4-fast-non-reasoning", (), "Grok 4 Fast, non-reasoning"),
        Family("grok-4-1-fast-non-reasoning", (), "Grok 4.1 Fast, non-reasoning"),
    ),
)
