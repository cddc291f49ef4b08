"""What the OpenAI API refuses in a chat completions or embeddings body, as data.

Read by the translation (OpenAI bodies are sent as written, but a request OpenAI would
refuse is refused while the file is read) and by the OpenAI emulator, which answers such
a request with a 400 in the batch's error file, in OpenAI's error shape, as the real
Batch API does (its validation at create only checks the JSONL lines).

Sources:

* ranges and limits for every model: the openai-python SDK's request types
  (`types/chat/completion_create_params.py`, `types/shared_params/function_definition.py`,
  `types/embedding_create_params.py`), generated from OpenAI's API reference;
* the reasoning models (o1, o3, o4-mini, the first GPT-5 models) take
  `max_completion_tokens`, not `max_tokens` (the SDK's `max_tokens` docstring: "not
  compatible with o-series models"); o3 and o4-mini take no `stop` (the SDK's `stop`
  docstring); the sampling and effort rules come from the API's errors as quoted in
  public issue threads and OpenAI's community forum.

The words of range errors follow OpenAI's validation messages ("Invalid 'temperature':
decimal above maximum value. ..."); where no quote was found the text is marked so. A
model of no family here (gpt-4o, gpt-4.1, GPT-5.1 and later, anything new) gets only the
rules for every model: OpenAI's families differ too much to guess the newest one's.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from unibatch.providers.rules import Body, Family, Rule, RuleTable, absent, lookup

_CHAT_TYPES = "openai-python SDK types (types/chat/completion_create_params.py)"
_FUNCTION_TYPES = "openai-python SDK types (types/shared_params/function_definition.py)"
_EMBEDDING_TYPES = "openai-python SDK types (types/embedding_create_params.py)"
_EFFORT_MATRIX = (
    "OpenAI API errors as collected in OpenAI's community forum, reasoning effort per "
    "model (community.openai.com/t/1371738)"
)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _bound(name: str, limit: float, *, above: bool, integer: bool = False) -> Rule:
    """`name` may not go above (or below) `limit`: one rule each way, as OpenAI's error
    codes differ."""
    kind = "integer" if integer else "decimal"
    side, sign, word = ("above", "<=", "maximum") if above else ("below", ">=", "minimum")
    shown = int(limit) if float(limit).is_integer() else limit

    def test(request: Body) -> list[str]:
        value = request.get(name)
        if not isinstance(value, int | float) or isinstance(value, bool):
            return []
        return [str(value)] if (value > limit if above else value < limit) else []

    return Rule(
        test,
        field=name,
        why=f"{name} must be {sign} {shown} (not {{detail}})",
        provider_message=(
            f"Invalid '{name}': {kind} {side} {word} value. Expected a value {sign} {shown}, "
            "but got {detail} instead."
        ),
        source=_CHAT_TYPES,
        code=f"{kind}_{side}_{'max' if above else 'min'}_value",
        keys=frozenset((name,)),
    )


def _list_longer(name: str, limit: int, source: str) -> Rule:
    def test(request: Body) -> list[str]:
        value = request.get(name)
        return [str(len(value))] if isinstance(value, list) and len(value) > limit else []

    return Rule(
        test,
        field=name,
        why=f"{name} takes at most {limit} items (not {{detail}})",
        provider_message=(
            f"Invalid '{name}': array too long. Expected an array with maximum length {limit}, "
            "but got an array with length {detail} instead."
        ),
        source=source,
        code="array_above_max_length",
        keys=frozenset((name,)),
    )


def _bias_out_of_range(request: Body) -> list[str]:
    bias = request.get("logit_bias")
    if not isinstance(bias, dict):
        return []
    return [str(k) for k, v in bias.items() if _number(v) and not -100 <= v <= 100]


def _top_logprobs_alone(request: Body) -> list[str]:
    return (
        ["top_logprobs"]
        if _number(request.get("top_logprobs")) and not request.get("logprobs")
        else []
    )


def _function_names(request: Body) -> Iterator[tuple[str, Any]]:
    # Chat tools nest the function (Responses API tools do not, and are not checked here).
    for i, tool in enumerate(request.get("tools") or []):
        if isinstance(tool, dict) and isinstance(tool.get("function"), dict):
            yield f"tools[{i}].function.name", lookup(tool, "function.name")


_FUNCTION_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")


def _bad_function_names(request: Body) -> list[str]:
    return [
        where
        for where, name in _function_names(request)
        if not isinstance(name, str) or _FUNCTION_NAME.fullmatch(name) is None
    ]


def _unsupported(
    name: str, source: str, *, observed: bool = False, instead: str | None = None
) -> Rule:
    use = f" Use '{instead}' instead." if instead else ""
    return absent(
        name,
        field=name,
        why=f"{{model}} does not take {name}" + (f" (use {instead})" if instead else ""),
        provider_message=f"Unsupported parameter: '{name}' is not supported with this model.{use}",
        source=source,
        observed=observed,
        code="unsupported_parameter",
    )


def _only_default(name: str, default: float, source: str) -> Rule:
    def test(request: Body) -> list[str]:
        value = request.get(name)
        return [str(value)] if value is not None and value != default else []

    return Rule(
        test,
        field=name,
        why=f"{{model}} takes only the default {name}, {default:g} (not {{detail}})",
        provider_message=(
            f"Unsupported value: '{name}' does not support {{detail}} with this model. "
            f"Only the default ({default:g}) value is supported."
        ),
        source=source,
        observed=True,
        code="unsupported_value",
        keys=frozenset((name,)),
    )


def _efforts(levels: tuple[str, ...]) -> Rule:
    def test(request: Body) -> list[str]:
        value = request.get("reasoning_effort")
        return [str(value)] if value is not None and value not in levels else []

    listed = ", ".join(f"'{v}'" for v in levels[:-1]) + f", and '{levels[-1]}'"
    return Rule(
        test,
        field="reasoning_effort",
        why=f"{{model}} takes a reasoning effort of {', '.join(levels)} (not {{detail}})",
        provider_message=(
            "Unsupported value: 'reasoning_effort' does not support '{detail}' with this "
            f"model. Supported values are: {listed}."
        ),
        source=_EFFORT_MATRIX,
        observed=True,
        code="unsupported_value",
        keys=frozenset(("reasoning_effort",)),
    )


def _range(name: str, low: float, high: float, *, integer: bool = False) -> tuple[Rule, Rule]:
    return (
        _bound(name, high, above=True, integer=integer),
        _bound(name, low, above=False, integer=integer),
    )


DEFAULTS: tuple[Rule, ...] = (
    *_range("temperature", 0, 2),
    *_range("presence_penalty", -2, 2),
    *_range("frequency_penalty", -2, 2),
    *_range("top_logprobs", 0, 20, integer=True),
    Rule(
        _top_logprobs_alone,
        field="top_logprobs",
        why="top_logprobs needs logprobs set to true",
        # OpenAI's words for this are not quoted anywhere we found; the shape is its usual.
        provider_message=(
            "Invalid 'top_logprobs': logprobs must be set to true to use top_logprobs."
        ),
        source=f"{_CHAT_TYPES}: top_logprobs",
        code="invalid_value",
        keys=frozenset(("top_logprobs",)),
    ),
    Rule(
        _bias_out_of_range,
        field="logit_bias",
        why="logit_bias values must be from -100 to 100 (token {detail} is not)",
        # OpenAI's words for this are not quoted anywhere we found.
        provider_message=(
            "Invalid 'logit_bias': the bias for token {detail} must be between -100 and 100."
        ),
        source=f"{_CHAT_TYPES}: logit_bias",
        code="invalid_value",
        keys=frozenset(("logit_bias",)),
    ),
    _list_longer("stop", 4, f"{_CHAT_TYPES}: stop"),
    Rule(
        _bad_function_names,
        field="tools",
        why="a function name is 1 to 64 letters, digits, underscores or dashes (not {detail})",
        provider_message=(
            "Invalid '{detail}': string does not match pattern. Expected a string that "
            "matches the pattern '^[a-zA-Z0-9_-]{{1,64}}$'."
        ),
        source=f"{_FUNCTION_TYPES}: FunctionDefinition.name",
        code="invalid_value",
        keys=frozenset(("tools",)),
    ),
)

_NO_MAX_TOKENS = _unsupported(
    "max_tokens",
    f"{_CHAT_TYPES}: max_tokens; the 400 quoted in openai/openai-python#2046",
    instead="max_completion_tokens",
)
_NO_MAX_TOKENS_5X = _unsupported(
    "max_tokens",
    "OpenAI API 400 quoted in koosoli/ESPHomeDesigner#379 (gpt-5.4)",
    observed=True,
    instead="max_completion_tokens",
)
_TEMPERATURE = _only_default(
    "temperature", 1, "OpenAI API 400 quoted in diffbot/code-gpt-docs#445 and QwenLM/qwen-code#921"
)
_TOP_P = _unsupported(
    "top_p", "OpenAI API 400 quoted in chatboxai/chatbox#2627 (GPT-5)", observed=True
)
_NO_STOP = _unsupported("stop", f"{_CHAT_TYPES}: stop")
_O_SERIES = (_NO_MAX_TOKENS, _TEMPERATURE)
_LOW_TO_HIGH = ("low", "medium", "high")
_GPT_5 = (_NO_MAX_TOKENS, _TEMPERATURE, _TOP_P)
_NO_DIMENSIONS = absent(
    "dimensions",
    field="dimensions",
    why="only text-embedding-3 and later models take dimensions",
    # OpenAI's words for this are not quoted anywhere we found.
    provider_message="This model does not support specifying dimensions.",
    source=f"{_EMBEDDING_TYPES}: dimensions",
    code="invalid_value",
)
_INPUTS = _list_longer("input", 2048, f"{_EMBEDDING_TYPES}: input")
_EFFORT_LOW_TO_HIGH = _efforts(_LOW_TO_HIGH)

RULES = RuleTable(
    provider="openai",
    defaults=DEFAULTS,
    families=(
        Family("o1", (*_O_SERIES, _EFFORT_LOW_TO_HIGH), "o1 and o1-pro"),
        Family("o1-mini", _O_SERIES, "o1-mini"),
        Family("o1-preview", _O_SERIES, "o1-preview"),
        Family("o3", (*_O_SERIES, _NO_STOP, _EFFORT_LOW_TO_HIGH), "o3 and o3-pro"),
        Family("o3-mini", (*_O_SERIES, _EFFORT_LOW_TO_HIGH), "o3-mini"),
        Family("o4-mini", (*_O_SERIES, _NO_STOP, _EFFORT_LOW_TO_HIGH), "o4-mini"),
        Family(
            "gpt-5",
            (*_GPT_5, _efforts(("minimal", *_LOW_TO_HIGH))),
            "GPT-5, GPT-5 mini and nano (August 2025)",
        ),
        Family("gpt-5-codex", _GPT_5, "GPT-5 Codex"),
        Family("gpt-5-pro", _GPT_5, "GPT-5 Pro"),
        Family("gpt-5-chat", (), "GPT-5 Chat: not a reasoning model"),
        Family("gpt-5.", (_NO_MAX_TOKENS_5X,), "GPT-5.1 and later"),
        Family("text-embedding-", (_INPUTS,), "embedding models"),
        Family("text-embedding-ada", (_INPUTS, _NO_DIMENSIONS), "text-embedding-ada-002"),
    ),
)

__all__ = ["RULES"]
