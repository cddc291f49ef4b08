"""What the Gemini API refuses, per model family, as data.

Read by the translation (every translated `GenerateContentRequest` is checked before it is
sent) and by the Gemini emulator (which answers such a request with Google's error in its
result line). A model we do not know is treated as the newest family (Gemini 3): Google's
new models follow its newest rules.

Sources, as Google words them:

* thought signatures: "When using Gemini 3 models, you must pass back thought signatures
  during function calling, otherwise you will get a validation error (4xx)"
  (https://ai.google.dev/gemini-api/docs/thought-signatures);
* thinking: 2.5 Pro and the Gemini 3 Pro models only run in thinking mode ("Budget 0 is
  invalid. This model only works in thinking mode."); Gemini 3 takes `thinkingLevel`, Pro
  `low` and `high`, Flash also `minimal` and `medium`
  (https://ai.google.dev/gemini-api/docs/thinking);
* function calling together with `responseMimeType: application/json` is refused by the
  2.x and 1.5 models ("Function calling with a response mime type: 'application/json' is
  unsupported"), and supported from Gemini 3 on (structured outputs with tools,
  https://ai.google.dev/gemini-api/docs/structured-output);
* presence and frequency penalties are enabled only on the 1.5 and 2.0 models ("Penalty is
  not enabled for models/gemini-2.5-flash", quoted in BerriAI/litellm and
  google-gemini/deprecated-generative-ai-python issue threads);
* every model: `temperature` from 0 to 2 and at most 5 `stopSequences` (the API reference,
  https://ai.google.dev/api/generate-content#generationconfig), and function names that
  start with a letter or an underscore, then letters, digits, `_ . : -`, at most 64 in all
  (the API's 400 as quoted in public issue threads; google-genai's docstring says 128, the
  live API refuses more than 64).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from unibatch.providers.rules import Body, Family, Rule, RuleTable, absent, lookup

_SIGNATURES = (
    "Gemini API docs, thought signatures (ai.google.dev/gemini-api/docs/thought-signatures)"
)
_THINKING = "Gemini API docs, thinking (ai.google.dev/gemini-api/docs/thinking)"
_TOOLS_JSON = "Gemini API 400 for 2.x models; structured outputs docs (ai.google.dev)"
_PENALTIES = "Gemini API 400 'Penalty is not enabled for models/...' (2.5 and later)"
_GENERATION_CONFIG = (
    "Gemini API reference, GenerationConfig (ai.google.dev/api/generate-content#generationconfig)"
)
_FUNCTION_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_.:-]{0,63}")


def _current_turn_calls(request: Body) -> Iterator[tuple[str, dict[str, Any]]]:
    """The first functionCall part of each model turn since the user last wrote text:
    the calls whose signatures Gemini 3 checks (parallel calls carry one signature, on the
    first part)."""
    contents = request.get("contents") or []
    start = 0
    for i, content in enumerate(contents):
        if not isinstance(content, dict):
            continue
        parts = content.get("parts") or []
        texts = any(isinstance(p, dict) and "text" in p for p in parts)
        if content.get("role", "user") == "user" and texts:
            start = i + 1
    for i in range(start, len(contents)):
        content = contents[i]
        if not isinstance(content, dict) or content.get("role") != "model":
            continue
        for j, part in enumerate(content.get("parts") or []):
            if isinstance(part, dict) and "functionCall" in part:
                yield f"contents[{i}].parts[{j}]", part
                break


def _unsigned_calls(request: Body) -> list[str]:
    return [
        where for where, part in _current_turn_calls(request) if not part.get("thoughtSignature")
    ]


def _tools_with_json(request: Body) -> list[str]:
    json_mode = lookup(request, "generationConfig.responseMimeType") == "application/json"
    return (
        ["tools, generationConfig.responseMimeType"] if json_mode and request.get("tools") else []
    )


def _no_thinking(request: Body) -> list[str]:
    if lookup(request, "generationConfig.thinkingConfig.thinkingBudget") == 0:
        return ["generationConfig.thinkingConfig.thinkingBudget"]
    return []


def _thinking_level(allowed: tuple[str, ...]) -> Rule:
    def test(request: Body) -> list[str]:
        level = lookup(request, "generationConfig.thinkingConfig.thinkingLevel")
        return [str(level)] if level is not None and str(level).lower() not in allowed else []

    return Rule(
        test,
        field="reasoning_effort",
        why=f"this model's thinking level is one of {', '.join(allowed)} (not {{detail}})",
        provider_message="Invalid value for thinking_level: {detail}",
        source=_THINKING,
    )


def _temperature_out_of_range(request: Body) -> list[str]:
    value = lookup(request, "generationConfig.temperature")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return []
    return [str(value)] if not 0 <= value <= 2 else []


def _too_many_stops(request: Body) -> list[str]:
    stops = lookup(request, "generationConfig.stopSequences")
    return [str(len(stops))] if isinstance(stops, list) and len(stops) > 5 else []


def _bad_function_names(request: Body) -> list[str]:
    found = []
    for i, tool in enumerate(request.get("tools") or []):
        declarations = tool.get("functionDeclarations") if isinstance(tool, dict) else None
        for j, declaration in enumerate(declarations or []):
            name = declaration.get("name") if isinstance(declaration, dict) else None
            if not isinstance(name, str) or _FUNCTION_NAME.fullmatch(name) is None:
                found.append(f"tools[{i}].function_declarations[{j}]")
    return found


TEMPERATURE = Rule(
    _temperature_out_of_range,
    field="temperature",
    why="Gemini's temperature is from 0 to 2 (not {detail})",
    # The API's words for this are not quoted anywhere we found; this is the shape of its
    # other field errors.
    provider_message=(
        "* GenerateContentRequest.generation_config.temperature: temperature must be in the "
        "range [0.0, 2.0], got {detail}"
    ),
    source=f"{_GENERATION_CONFIG}, temperature",
)
STOP_SEQUENCES = Rule(
    _too_many_stops,
    field="stop",
    why="Gemini takes at most 5 stop sequences (not {detail})",
    # The API's words are not quoted anywhere we found.
    provider_message=(
        "* GenerateContentRequest.generation_config.stop_sequences: at most 5 stop sequences "
        "are allowed, got {detail}"
    ),
    source=f"{_GENERATION_CONFIG}, stopSequences",
)
FUNCTION_NAMES = Rule(
    _bad_function_names,
    field="tools",
    why=(
        "a Gemini function name starts with a letter or an underscore, then letters, digits, "
        "underscores, dots, colons or dashes, at most 64 in all ({detail} as sent)"
    ),
    provider_message=(
        "* GenerateContentRequest.{detail}.name: Invalid function name. Must start with a "
        "letter or an underscore. Must be alphameric (a-z, A-Z, 0-9), underscores (_), dots "
        "(.), colons (:), or dashes (-), with a maximum length of 64."
    ),
    source=(
        "Gemini API 400 quoted in router-for-me/Cli-Proxy-API-Management-Center#120 and "
        "kaitranntt/ccs#219; google-genai SDK types (FunctionDeclaration.name)"
    ),
    observed=True,
)
UNSIGNED_CALLS = Rule(
    _unsigned_calls,
    field="messages",
    why=(
        "Gemini 3 needs the thought signature of the assistant's tool calls it returned "
        "(keep `extra_content.google.thought_signature` on each tool call you send back; "
        "missing at {detail} as sent)"
    ),
    provider_message=(
        "Function call is missing a thought_signature in functionCall parts. This is required "
        "for tools to work correctly. Additional data, {detail}. Please refer to "
        "https://ai.google.dev/gemini-api/docs/thought-signatures for more details."
    ),
    source=_SIGNATURES,
)
TOOLS_WITH_JSON = Rule(
    _tools_with_json,
    field="response_format",
    why="this model cannot call functions and answer in JSON mode in one request",
    provider_message=(
        "Function calling with a response mime type: 'application/json' is unsupported"
    ),
    source=_TOOLS_JSON,
    observed=True,
)
THINKING_ONLY = Rule(
    _no_thinking,
    field="reasoning_effort",
    why="this model only works in thinking mode, so thinking cannot be turned off",
    provider_message="Budget 0 is invalid. This model only works in thinking mode.",
    source=_THINKING,
)
NO_PENALTIES = tuple(
    absent(
        f"generationConfig.{native}",
        field=ours,
        why="penalties are not enabled for this model",
        provider_message="Penalty is not enabled for models/{model}",
        source=_PENALTIES,
        observed=True,
    )
    for native, ours in (
        ("presencePenalty", "presence_penalty"),
        ("frequencyPenalty", "frequency_penalty"),
    )
)
_GEMINI_3 = (UNSIGNED_CALLS, *NO_PENALTIES)
_GEMINI_3_PRO = (*_GEMINI_3, THINKING_ONLY, _thinking_level(("low", "high")))
_GEMINI_3_FLASH = (*_GEMINI_3, _thinking_level(("minimal", "low", "medium", "high")))

RULES = RuleTable(
    provider="gemini",
    defaults=(TEMPERATURE, STOP_SEQUENCES, FUNCTION_NAMES),
    families=(
        Family("gemini-", _GEMINI_3_PRO, "unknown models (the newest rules)"),
        Family("gemini-3", _GEMINI_3_PRO, "Gemini 3 (Pro and unknown variants)"),
        Family("gemini-3-flash", _GEMINI_3_FLASH, "Gemini 3 Flash"),
        Family("gemini-3-pro", _GEMINI_3_PRO, "Gemini 3 Pro"),
        Family("gemini-2.5-pro", (TOOLS_WITH_JSON, THINKING_ONLY, *NO_PENALTIES), "2.5 Pro"),
        Family("gemini-2.5", (TOOLS_WITH_JSON, *NO_PENALTIES), "2.5 Flash and Flash-Lite"),
        Family("gemini-2.0", (TOOLS_WITH_JSON,), "2.0: penalties enabled"),
        Family("gemini-1.5", (TOOLS_WITH_JSON,), "1.5: penalties enabled"),
        Family("gemini-embedding", (), "embedding models"),
    ),
)
