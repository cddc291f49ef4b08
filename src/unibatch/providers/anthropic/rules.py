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
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from unibatch.providers.rules import (
    Body,
    Family,
    Rule,
    RuleTable,
    absent,
    each,
    list_items,
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
IMAGE_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")
TOOL_USE_ID = r"[a-zA-Z0-9_-]+"


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

_NO_SAMPLING = (_deprecated("temperature"), _deprecated("top_p"), _deprecated("top_k"))
_FREE_SAMPLING: tuple[Rule, ...] = ()

RULES = RuleTable(
    provider="anthropic",
    defaults=DEFAULTS,
    families=(
        # Unknown Claude models: the newest rules (see the module docstring).
        Family("claude-", _NO_SAMPLING, "Opus 4.7 and later, Sonnet 5, and unknown models"),
        Family("claude-3", _FREE_SAMPLING, "Claude 3.x"),
        Family("claude-sonnet-4-0", _FREE_SAMPLING, "Sonnet 4"),
        Family("claude-sonnet-4-2025", _FREE_SAMPLING, "Sonnet 4 (dated id)"),
        Family("claude-opus-4-0", _FREE_SAMPLING, "Opus 4"),
        Family("claude-opus-4-2025", _FREE_SAMPLING, "Opus 4 (dated id)"),
        Family("claude-opus-4-1", (_ONE_SAMPLING_PARAMETER,), "Opus 4.1"),
        Family("claude-opus-4-5", (_ONE_SAMPLING_PARAMETER,), "Opus 4.5"),
        Family("claude-opus-4-6", (_ONE_SAMPLING_PARAMETER,), "Opus 4.6"),
        Family("claude-sonnet-4-5", (_ONE_SAMPLING_PARAMETER,), "Sonnet 4.5"),
        Family("claude-sonnet-4-6", (_ONE_SAMPLING_PARAMETER,), "Sonnet 4.6"),
        Family("claude-haiku-4-5", (_ONE_SAMPLING_PARAMETER,), "Haiku 4.5"),
    ),
)
