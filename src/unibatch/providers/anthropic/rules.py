"""What the Messages API refuses, per Claude model family, as data.

Read by the translation (every translated request is checked before it is sent) and by
the Anthropic emulator (which answers the same request with Anthropic's own error). The
rules apply to the native `params` of one Message Batches request.

Sampling parameters changed twice, so they depend on the family:

* Claude 3.x, Sonnet 4 and Opus 4 take `temperature`, `top_p` and `top_k` freely;
* Opus 4.1, Opus 4.5 and 4.6, Sonnet 4.5 and 4.6, Haiku 4.5 refuse `temperature` together
  with `top_p` ("alter temperature or top_p, but not both": Anthropic's API reference,
  https://docs.anthropic.com/en/api/messages, and the 400 quoted in BerriAI/litellm#15097);
* Opus 4.7 and later, Sonnet 5 and the families after them refuse every sampling
  parameter ("`temperature` is deprecated for this model.": Anthropic's model
  deprecations page, https://platform.claude.com/docs/en/about-claude/model-deprecations,
  "API parameter deprecations"; observed 400s in oumi-ai/oumi#2538 and
  BerriAI/litellm#37868). A model we do not know is treated as one of these: Anthropic's
  new models follow the newest rules.

Reasoning is set two ways, also per family (the effort page,
https://platform.claude.com/docs/en/build-with-claude/effort, and extended thinking,
https://platform.claude.com/docs/en/build-with-claude/extended-thinking):

* `output_config.effort` is taken by Opus 4.5 (low, medium, high), Opus 4.6 and Sonnet 4.6
  (also max) and Opus 4.7 and later (also xhigh); any other model answers "This model does
  not support the effort parameter." (quoted in anthropics/claude-code#30010);
* extended thinking with a token budget (`thinking: {type: "enabled", budget_tokens}`,
  at least 1024 and below `max_tokens`: the SDK's `ThinkingConfigEnabledParam`) from
  Claude 3.7 Sonnet on; Opus 4.7 and later take only adaptive thinking (the 400 quoted in
  SigmaNight/basiliskLLM#1185);
* while Claude thinks, `temperature` may only be 1, `top_k` is not taken, `top_p` only
  from 0.95, and tool use cannot be forced (extended thinking docs, "Feature
  compatibility"; the 400s quoted in MayDay-wpf/snow-app#42 and mastra-ai/mastra#7507).

Every model also refuses (`DEFAULTS`): a `temperature` outside 0 to 1 (the API reference;
OpenAI's range goes to 2), a tool name outside `^[a-zA-Z0-9_-]{1,128}$`, a tool schema
whose root is not an object, empty text, and a tool call not answered in the next message
(or an answer to no call); and each family caps `max_tokens` at its maximum output (the
models overview, https://platform.claude.com/docs/en/about-claude/models/overview).

`MODES` says which of these each family takes; translation reads it to map OpenAI's
`reasoning_effort`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from unibatch.providers.rules import (
    Body,
    Family,
    Rule,
    RuleTable,
    absent,
    each,
    list_items,
    lookup,
    matches,
    requires,
    together,
)

_API_REFERENCE = "Anthropic API reference, Messages (docs.anthropic.com/en/api/messages)"
_TYPES = "anthropic-python SDK types (types/*_param.py)"
_DEPRECATIONS = (
    "Anthropic model deprecations, API parameter deprecations "
    "(platform.claude.com/docs/en/about-claude/model-deprecations)"
)
_EFFORT = "Anthropic docs, effort (platform.claude.com/docs/en/build-with-claude/effort)"
_THINKING = (
    "Anthropic docs, extended thinking "
    "(platform.claude.com/docs/en/build-with-claude/extended-thinking)"
)
_MODELS = (
    "Anthropic models overview, max output per model "
    "(platform.claude.com/docs/en/about-claude/models/overview)"
)
IMAGE_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")
TOOL_USE_ID = r"[a-zA-Z0-9_-]+"
TOOL_NAME = r"[a-zA-Z0-9_-]{1,128}"


def _blocks(request: Body) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every content block of every message, with its path as Anthropic words it."""
    for i, message in enumerate(request.get("messages") or []):
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list):
            for j, block in enumerate(content):
                if isinstance(block, dict):
                    yield f"messages.{i}.content.{j}", block


def _tool_use_ids(request: Body) -> Iterator[tuple[str, Any]]:
    for where, block in _blocks(request):
        if block.get("type") == "tool_use":
            yield f"{where}.tool_use.id", block.get("id")


def _repeated_tool_use_ids(request: Body) -> list[str]:
    seen: set[Any] = set()
    repeated = []
    for where, value in _tool_use_ids(request):
        if value in seen:
            repeated.append(where.removesuffix(".tool_use.id"))
        seen.add(value)
    return repeated


def _base64_sources(kind: str) -> Callable[[Body], Iterator[tuple[str, Any]]]:
    def walk(request: Body) -> Iterator[tuple[str, Any]]:
        for where, block in _blocks(request):
            source = block.get("source")
            if block.get("type") != kind or not isinstance(source, dict):
                continue
            if source.get("type") == "base64":
                yield f"{where}.{kind}.source.base64.media_type", source.get("media_type")

    return walk


def _temperature_bound(limit: int, *, above: bool) -> Rule:
    """`temperature` beyond Anthropic's range, one rule per side as the API words them."""

    def test(request: Body) -> list[str]:
        value = request.get("temperature")
        if isinstance(value, bool) or not isinstance(value, int | float):
            return []
        return [str(value)] if (value > limit if above else value < limit) else []

    side, most = ("less", "at most") if above else ("greater", "at least")
    return Rule(
        test,
        field="temperature",
        # OpenAI's range is 0-2; rescaling would change what the user asked for.
        why=(
            f"Claude's temperature is from 0 to 1, so {most} {limit} (not {{detail}}; "
            "OpenAI's range goes to 2, and rescaling would change its meaning)"
        ),
        provider_message=f"temperature: Input should be {side} than or equal to {limit}",
        source=f"{_API_REFERENCE}, temperature (ranges from 0.0 to 1.0)",
    )


def _tool_names(request: Body) -> Iterator[tuple[str, Any]]:
    for i, tool in enumerate(request.get("tools") or []):
        # Server tools (web search, code execution) carry a `type` and fixed names.
        if isinstance(tool, dict) and tool.get("type", "custom") == "custom":
            yield f"tools.{i}.custom.name", tool.get("name")


def _schema_roots(request: Body) -> Iterator[tuple[str, Any]]:
    for i, tool in enumerate(request.get("tools") or []):
        if isinstance(tool, dict) and tool.get("type", "custom") == "custom":
            yield f"tools.{i}.custom.input_schema.type", lookup(tool, "input_schema.type")


def _empty_texts(request: Body) -> list[str]:
    found = []
    for i, message in enumerate(request.get("messages") or []):
        if isinstance(message, dict) and message.get("content") == "":
            found.append(f"messages.{i}.content")
    found += [
        f"{where}.text"
        for where, block in _blocks(request)
        if block.get("type") == "text" and block.get("text") == ""
    ]
    return found


def _ids_of(message: Any, kind: str, key: str) -> list[Any]:
    content = message.get("content") if isinstance(message, dict) else None
    if not isinstance(content, list):
        return []
    return [b.get(key) for b in content if isinstance(b, dict) and b.get("type") == kind]


def _unanswered_calls(request: Body) -> list[str]:
    messages = request.get("messages") or []
    found = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") != "assistant":
            continue
        calls = _ids_of(message, "tool_use", "id")
        following = messages[i + 1] if i + 1 < len(messages) else None
        answered = set(_ids_of(following, "tool_result", "tool_use_id"))
        # A final assistant turn awaits no answer yet: only calls followed by a message
        # are checked.
        if following is not None and any(c not in answered for c in calls):
            found.append(f"messages.{i}")
    return found


def _orphan_results(request: Body) -> list[str]:
    messages = request.get("messages") or []
    found = []
    for i, message in enumerate(messages):
        content = message.get("content") if isinstance(message, dict) else None
        if not isinstance(content, list):
            continue
        previous = messages[i - 1] if i > 0 else None
        calls = set(_ids_of(previous, "tool_use", "id"))
        for j, block in enumerate(content):
            is_result = isinstance(block, dict) and block.get("type") == "tool_result"
            if is_result and block.get("tool_use_id") not in calls:
                found.append(f"messages.{i}.content.{j}")
    return found


def max_output(limit: int) -> Rule:
    """`max_tokens` above the family's maximum output (the models overview)."""

    def test(request: Body) -> list[str]:
        value = request.get("max_tokens")
        return [str(value)] if isinstance(value, int) and value > limit else []

    return Rule(
        test,
        field="max_tokens",
        why=(
            f"{{model}} writes at most {limit:,} output tokens (max_tokens or "
            "max_completion_tokens, or the default plus the thinking reasoning_effort adds, "
            "is {detail})"
        ),
        provider_message=(
            f"max_tokens: {{detail}} > {limit}, which is the maximum allowed number of output "
            "tokens for {model}"
        ),
        source=(
            f"{_MODELS}; the 400's words as quoted in anthropics/claude-code#24451 and "
            "BerriAI/litellm#15715"
        ),
    )


def _deprecated(name: str) -> Rule:
    return absent(
        name,
        field=name,
        why=f"{name} is deprecated for this model, which takes no sampling parameters",
        provider_message=f"`{name}` is deprecated for this model.",
        source=_DEPRECATIONS,
    )


_ONE_SAMPLING_PARAMETER = together(
    ("temperature", "top_p"),
    field="top_p",
    why="this model takes temperature or top_p, not both",
    provider_message=(
        "`temperature` and `top_p` cannot both be specified for this model. Please use only one."
    ),
    source=f"{_API_REFERENCE}, top_p; BerriAI/litellm#15097",
)

DEFAULTS: tuple[Rule, ...] = (
    _temperature_bound(1, above=True),
    _temperature_bound(0, above=False),
    each(
        _tool_names,
        matches(TOOL_NAME),
        field="tools",
        why="a tool name is 1 to 128 letters, digits, underscores or dashes ({detail} as sent)",
        provider_message="{detail}: String should match pattern '^[a-zA-Z0-9_-]{{1,128}}$'",
        source="Anthropic API 400 quoted in modelcontextprotocol/modelcontextprotocol#1345",
        observed=True,
    ),
    each(
        _schema_roots,
        lambda value: value == "object",
        field="tools",
        why=(
            "a tool's parameters (and a response_format schema, sent as a tool) must be a "
            "JSON schema of type object ({detail} as sent)"
        ),
        provider_message="{detail}: Input should be 'object'",
        source=f"{_TYPES}: InputSchemaTyped.type",
    ),
    Rule(
        _empty_texts,
        field="messages",
        why="Claude refuses empty text ({detail} as sent)",
        provider_message="messages: text content blocks must be non-empty",
        source="Anthropic API 400 quoted in anthropics/claude-code#53473 and miurla/morphic#83",
        observed=True,
    ),
    Rule(
        _unanswered_calls,
        field="messages",
        why=(
            "every tool call needs a tool message with its id right after the assistant "
            "message that made it (unanswered at {detail} as sent)"
        ),
        # The API lists the unanswered ids after "immediately after:".
        provider_message=(
            "{detail}: `tool_use` ids were found without `tool_result` blocks immediately "
            "after. Each `tool_use` block must have a corresponding `tool_result` block in "
            "the next message."
        ),
        source="Anthropic API 400 quoted in anthropics/claude-code#5060",
        observed=True,
    ),
    Rule(
        _orphan_results,
        field="messages",
        why=(
            "a tool message must answer a tool call of the assistant message just before it "
            "(unmatched at {detail} as sent)"
        ),
        # The API lists the unexpected ids after "blocks:".
        provider_message=(
            "{detail}: unexpected `tool_use_id` found in `tool_result` blocks. Each "
            "`tool_result` block must have a corresponding `tool_use` block in the previous "
            "message."
        ),
        source="Anthropic API 400 quoted in anthropics/claude-code#13460",
        observed=True,
    ),
    each(
        list_items("stop_sequences"),
        lambda value: isinstance(value, str) and bool(value.strip()),
        field="stop",
        why="each stop sequence must contain a non-whitespace character",
        provider_message="stop_sequences: each stop sequence must contain non-whitespace",
        source="Anthropic API 400 quoted in BerriAI/litellm#3286",
        observed=True,
    ),
    requires(
        "tool_choice",
        "tools",
        field="tool_choice",
        why="a tool choice needs tools",
        provider_message="tool_choice may only be specified while providing tools",
        source=f"{_API_REFERENCE}; the API's 400 text as quoted in public issue threads",
        observed=True,
    ),
    each(
        _tool_use_ids,
        matches(TOOL_USE_ID),
        field="messages",
        why="a tool call id must match ^[a-zA-Z0-9_-]+$ (at {detail} as sent)",
        provider_message="{detail}: String should match pattern '^[a-zA-Z0-9_-]+$'",
        source=f"{_TYPES}: ToolUseBlockParam.id",
    ),
    Rule(
        _repeated_tool_use_ids,
        field="messages",
        why="tool call ids must be unique in a request ({detail} as sent repeats one)",
        provider_message="{detail}: `tool_use` ids must be unique",
        source=f"{_API_REFERENCE}; the API's 400 text as quoted in public issue threads",
        observed=True,
    ),
    each(
        _base64_sources("image"),
        lambda value: value in IMAGE_TYPES,
        field="messages",
        why="images must be JPEG, PNG, GIF or WebP (at {detail} as sent)",
        provider_message=(
            "{detail}: Input should be 'image/jpeg', 'image/png', 'image/gif' or 'image/webp'"
        ),
        source=f"{_TYPES}: Base64ImageSourceParam.media_type",
    ),
    each(
        _base64_sources("document"),
        lambda value: value == "application/pdf",
        field="messages",
        why="inline documents must be PDF or plain text (at {detail} as sent)",
        provider_message="{detail}: Input should be 'application/pdf'",
        source=f"{_TYPES}: Base64PDFSourceParam.media_type",
    ),
)

# -- reasoning: effort and thinking ------------------------------------------------------


def _thinks(request: Body) -> bool:
    return lookup(request, "thinking.type") in ("enabled", "adaptive")


def _when_thinking(name: str, ok: Callable[[Any], bool]) -> Callable[[Body], list[str]]:
    def test(request: Body) -> list[str]:
        value = lookup(request, name)
        return [name] if _thinks(request) and value is not None and not ok(value) else []

    return test


def _effort_level(levels: tuple[str, ...]) -> Rule:
    def test(request: Body) -> list[str]:
        effort = lookup(request, "output_config.effort")
        return [str(effort)] if effort is not None and effort not in levels else []

    return Rule(
        test,
        field="reasoning_effort",
        why=f"this model's effort is one of {', '.join(levels)} (not {{detail}})",
        # The API's words for a level a model lacks are not published; this is the
        # validation error's usual shape.
        provider_message=(
            f"output_config.effort: Input should be {' or '.join(repr(v) for v in levels)}"
        ),
        source=_EFFORT,
    )


def _budget_problems(request: Body) -> list[str]:
    if lookup(request, "thinking.type") != "enabled":
        return []
    budget, max_tokens = lookup(request, "thinking.budget_tokens"), request.get("max_tokens")
    if not isinstance(budget, int) or budget < 1024:
        return [f"budget_tokens {budget} is below 1024"]
    if isinstance(max_tokens, int) and budget >= max_tokens:
        return [f"budget_tokens {budget} is not below max_tokens {max_tokens}"]
    return []


NO_EFFORT = absent(
    "output_config.effort",
    field="reasoning_effort",
    why="the model takes no effort setting",
    provider_message="This model does not support the effort parameter.",
    source=f"{_EFFORT}; the 400 quoted in anthropics/claude-code#30010",
)
THINKING_BUDGET = Rule(
    _budget_problems,
    field="max_tokens",
    why=(
        "extended thinking needs a budget of at least 1024 tokens, below max_tokens "
        "({detail}; raise max_tokens or lower reasoning_effort)"
    ),
    provider_message=(
        "`max_tokens` must be greater than `thinking.budget_tokens`. Please consult our "
        "documentation at https://docs.claude.com/en/docs/build-with-claude/"
        "extended-thinking#max-tokens-and-context-window-size"
    ),
    source=f"{_TYPES}: ThinkingConfigEnabledParam.budget_tokens",
)
NO_THINKING_BUDGET = Rule(
    lambda request: ["thinking"] if lookup(request, "thinking.type") == "enabled" else [],
    field="reasoning_effort",
    why="the model thinks adaptively only, without a token budget",
    provider_message=(
        '"thinking.type.enabled" is not supported for this model. Use '
        '"thinking.type.adaptive" and "output_config.effort" to control thinking behavior.'
    ),
    source="Anthropic API 400 quoted in SigmaNight/basiliskLLM#1185",
    observed=True,
)
THINKING_TEMPERATURE = Rule(
    _when_thinking("temperature", lambda value: value == 1),
    field="temperature",
    why="while the model thinks (reasoning_effort), temperature may only be 1",
    provider_message=(
        "`temperature` may only be set to 1 when thinking is enabled or in adaptive mode. "
        "Please consult our documentation at "
        "https://platform.claude.com/docs/en/build-with-claude/extended-thinking"
    ),
    source=f"{_THINKING}, feature compatibility; the 400 quoted in MayDay-wpf/snow-app#42",
)
THINKING_TOP_P = Rule(
    _when_thinking("top_p", lambda value: isinstance(value, int | float) and value >= 0.95),
    field="top_p",
    why="while the model thinks (reasoning_effort), top_p may only be 0.95 to 1",
    # The API's words are not published; the docs say top_p may be set between 0.95 and 1.
    provider_message="top_p must be between 0.95 and 1 when thinking is enabled",
    source=f"{_THINKING}, feature compatibility",
)
THINKING_TOP_K = Rule(
    _when_thinking("top_k", lambda value: False),
    field="top_k",
    why="while the model thinks, top_k is not taken",
    # The API's words are not published.
    provider_message="top_k is not supported when thinking is enabled",
    source=f"{_THINKING}, feature compatibility",
)
THINKING_FORCED_TOOL = Rule(
    lambda request: (
        ["tool_choice"]
        if _thinks(request) and lookup(request, "tool_choice.type") in ("any", "tool")
        else []
    ),
    field="tool_choice",
    why=(
        "while the model thinks (reasoning_effort), tool use cannot be forced "
        "(tool_choice required or a named function, or response_format, which is sent as "
        "a forced tool)"
    ),
    provider_message="Thinking may not be enabled when tool_choice forces tool use.",
    source=f"{_THINKING}, feature compatibility; the 400 quoted in mastra-ai/mastra#7507",
)
_WHILE_THINKING = (
    THINKING_BUDGET,
    THINKING_TEMPERATURE,
    THINKING_TOP_P,
    THINKING_TOP_K,
    THINKING_FORCED_TOOL,
)


@dataclass(frozen=True, slots=True)
class Mode:
    """How a family reasons: the effort levels it takes (none: no `output_config.effort`)
    and its thinking (`adaptive`, `budget` for a token budget, or None)."""

    efforts: tuple[str, ...] = ()
    thinking: str | None = None


_NO_SAMPLING = (_deprecated("temperature"), _deprecated("top_p"), _deprecated("top_k"))
_LOW_TO_HIGH = ("low", "medium", "high")
_TO_MAX = (*_LOW_TO_HIGH, "max")
_ALL_EFFORTS = ("low", "medium", "high", "xhigh", "max")
# Claude 3.5 and 3: no effort, no thinking.
_PLAIN = (NO_EFFORT,)
# Claude 3.7 Sonnet to Sonnet 4.5 and Haiku 4.5: a thinking budget, no effort.
_BUDGETED = (NO_EFFORT, *_WHILE_THINKING)
_ONE = _ONE_SAMPLING_PARAMETER
_TO_MAX_EFFORT = _effort_level(_TO_MAX)
_LOW_TO_HIGH_EFFORT = _effort_level(_LOW_TO_HIGH)
_NEWEST = (*_NO_SAMPLING, _effort_level(_ALL_EFFORTS), NO_THINKING_BUDGET, *_WHILE_THINKING)

# Maximum output per family (one rule per limit, so the README lists each limit once).
_MAX_4K, _MAX_8K = max_output(4096), max_output(8192)
_MAX_32K, _MAX_64K, _MAX_128K = max_output(32_000), max_output(64_000), max_output(128_000)
RULES = RuleTable(
    provider="anthropic",
    defaults=DEFAULTS,
    families=(
        # Unknown Claude models: the newest rules (see the module docstring).
        Family(
            "claude-",
            (*_NEWEST, _MAX_128K),
            "Opus 4.7 and later, Sonnet 5, and unknown models",
        ),
        Family("claude-3", (*_PLAIN, _MAX_4K), "Claude 3"),
        Family("claude-3-5", (*_PLAIN, _MAX_8K), "Claude 3.5"),
        Family("claude-3-7-sonnet", (*_BUDGETED, _MAX_64K), "Claude 3.7 Sonnet"),
        Family("claude-sonnet-4-0", (*_BUDGETED, _MAX_64K), "Sonnet 4"),
        Family("claude-sonnet-4-2025", (*_BUDGETED, _MAX_64K), "Sonnet 4 (dated id)"),
        Family("claude-opus-4-0", (*_BUDGETED, _MAX_32K), "Opus 4"),
        Family("claude-opus-4-2025", (*_BUDGETED, _MAX_32K), "Opus 4 (dated id)"),
        Family("claude-opus-4-1", (_ONE, *_BUDGETED, _MAX_32K), "Opus 4.1"),
        Family(
            "claude-opus-4-5",
            (_ONE, _LOW_TO_HIGH_EFFORT, *_WHILE_THINKING, _MAX_64K),
            "Opus 4.5",
        ),
        Family(
            "claude-opus-4-6",
            (_ONE, _TO_MAX_EFFORT, *_WHILE_THINKING, _MAX_128K),
            "Opus 4.6",
        ),
        Family("claude-sonnet-4-5", (_ONE, *_BUDGETED, _MAX_64K), "Sonnet 4.5"),
        Family(
            "claude-sonnet-4-6",
            (_ONE, _TO_MAX_EFFORT, *_WHILE_THINKING, _MAX_128K),
            "Sonnet 4.6",
        ),
        Family("claude-haiku-4-5", (_ONE, *_BUDGETED, _MAX_64K), "Haiku 4.5"),
    ),
)

# How each family reasons (keyed by the family's prefix; a family not listed cannot).
_BUDGET = Mode(thinking="budget")
MODES: dict[str, Mode] = {
    "claude-": Mode(_ALL_EFFORTS, "adaptive"),
    "claude-3-7-sonnet": _BUDGET,
    "claude-sonnet-4-0": _BUDGET,
    "claude-sonnet-4-2025": _BUDGET,
    "claude-opus-4-0": _BUDGET,
    "claude-opus-4-2025": _BUDGET,
    "claude-opus-4-1": _BUDGET,
    "claude-opus-4-5": Mode(_LOW_TO_HIGH, "budget"),
    "claude-opus-4-6": Mode(_TO_MAX, "adaptive"),
    "claude-sonnet-4-5": _BUDGET,
    "claude-sonnet-4-6": Mode(_TO_MAX, "adaptive"),
    "claude-haiku-4-5": _BUDGET,
}


def mode(model: str) -> Mode:
    """How `model` reasons (a model of no known family: the newest family's way)."""
    family = RULES.family(model)
    return MODES.get(family.prefix, Mode()) if family else Mode()
