"""OpenAI Chat Completions <-> xAI batch requests and results.

xAI's batch file takes OpenAI batch lines and answers with `chat.completion` objects, so
the work here is small: refuse, before anything is sent, the fields xAI cannot honour in
a batch; rename the deprecated `functions` fields it does not know; and bring its result
back to a plain ChatCompletion (finish reasons, reasoning tokens counted in
`completion_tokens`, xAI-only usage fields left in the raw row).

Escape hatch: a body with `"unibatch_native": true` skips every check and rewrite here and
is sent to xAI as written, minus that flag. Use it for fields unibatch does not know yet::

    {"custom_id": "a", "body": {"model": "xai/grok-4", "unibatch_native": true,
                                "search_parameters": {"mode": "auto"}, "messages": [...]}}
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from unibatch.errors import InputError, LimitError
from unibatch.providers.translate import NATIVE_FLAG, Body, Translator, refuse
from unibatch.providers.xai.rules import RULES
from unibatch.types import Usage

# xAI's batch guide (https://docs.x.ai/docs/guides/batch-api, 2026-08): one line of a
# batch file may hold at most 25 MB.
MAX_LINE_BYTES = 25 * 1024 * 1024

# OpenAI fields with no xAI counterpart: sending them would fail the line (or silently
# change its meaning), so they are refused while the file is read.
_UNSUPPORTED = {
    "logit_bias": "xAI does not support token biasing",
    "audio": "xAI chat models produce text only",
    "prediction": "xAI has no predicted outputs",
    "store": "xAI does not store chat completions",
    "metadata": "xAI does not store chat completions, so it takes no metadata",
    "web_search_options": "xAI searches through its own tools, not this field",
}
_TEXT_PARTS = frozenset({"text", "image_url"})
_SERVICE_TIERS = frozenset({"auto", "default"})

# xAI's finish reasons (REST and the proto's REASON_* names) in OpenAI's vocabulary.
_FINISH = {
    "stop": "stop",
    "end_turn": "stop",
    "REASON_STOP": "stop",
    "length": "length",
    "max_len": "length",
    "max_context": "length",
    "REASON_MAX_LEN": "length",
    "REASON_MAX_CONTEXT": "length",
    # Out of time is, like out of tokens, a reply cut short.
    "time_limit": "length",
    "REASON_TIME_LIMIT": "length",
    "tool_calls": "tool_calls",
    "REASON_TOOL_CALLS": "tool_calls",
    "content_filter": "content_filter",
}
# Usage keys only xAI sends; they stay in the raw row, not in the ChatCompletion.
_XAI_USAGE_KEYS = ("cost_in_usd_ticks", "num_sources_used")


def _refuse(field: str, why: str) -> InputError:
    return refuse("xai", field, why)


def _check_messages(messages: Any) -> None:
    if not isinstance(messages, list):
        return
    for i, message in enumerate(messages):
        content = message.get("content") if isinstance(message, dict) else None
        if not isinstance(content, list):
            continue
        for part in content:
            kind = part.get("type") if isinstance(part, dict) else None
            if kind is not None and kind not in _TEXT_PARTS:
                raise _refuse(
                    f"messages[{i}].content ({kind!r} part)",
                    "xAI chat takes text and image_url parts",
                )


def validate_chat(body: dict[str, Any]) -> None:
    """Raise `InputError` naming the first field xAI cannot honour in a batch."""
    if body.get(NATIVE_FLAG) is True:
        return
    for field, why in _UNSUPPORTED.items():
        value = body.get(field)
        if value is not None and value is not False and value != {}:
            raise _refuse(field, why)
    n = body.get("n")
    if isinstance(n, int) and n > 1:
        # Whether xAI's batch honours `n` is unverified (every captured row has one choice);
        # refusing beats paying for choices that may be dropped.
        raise _refuse("n", "batch results carry one choice")
    modalities = body.get("modalities")
    if isinstance(modalities, list) and any(m != "text" for m in modalities):
        raise _refuse("modalities", "xAI chat models produce text only")
    tier = body.get("service_tier")
    if tier is not None and tier not in _SERVICE_TIERS:
        raise _refuse("service_tier", f"xAI has no {tier!r} tier")
    for violation in RULES.violations(to_native(body), str(body.get("model") or "")):
        raise _refuse(violation.field, violation.why)
    _check_messages(body.get("messages"))
    size = len(orjson.dumps(body))
    if size > MAX_LINE_BYTES:
        raise LimitError(
            f"xai: the request is {size / 1e6:.1f} MB, more than the 25 MB xAI accepts per line"
        )


def to_native(body: dict[str, Any]) -> dict[str, Any]:
    """The body as xAI should receive it (`body` is not modified)."""
    if body.get(NATIVE_FLAG) is True:
        return {k: v for k, v in body.items() if k != NATIVE_FLAG}
    out = dict(body)
    out.pop(NATIVE_FLAG, None)
    # The legacy function-calling fields are OpenAI-only; xAI knows their `tools` form.
    functions = out.pop("functions", None)
    if isinstance(functions, list) and "tools" not in out:
        out["tools"] = [{"type": "function", "function": f} for f in functions]
    call = out.pop("function_call", None)
    if call is not None and "tool_choice" not in out:
        out["tool_choice"] = (
            {"type": "function", "function": {"name": call["name"]}}
            if isinstance(call, dict) and "name" in call
            else call
        )
    return out


def _tokens(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def normalize_usage(usage: dict[str, Any]) -> tuple[dict[str, Any], Usage]:
    """xAI chat usage as OpenAI reports it, and our `Usage`.

    On the batch wire xAI leaves reasoning tokens out of `completion_tokens` (capture);
    OpenAI counts them in. `total_tokens` tells which convention a row uses."""
    out = {k: v for k, v in usage.items() if k not in _XAI_USAGE_KEYS}
    prompt = _tokens(usage.get("prompt_tokens"))
    completion = _tokens(usage.get("completion_tokens"))
    details = usage.get("completion_tokens_details") or {}
    reasoning = _tokens(details.get("reasoning_tokens"))
    cached = _tokens((usage.get("prompt_tokens_details") or {}).get("cached_tokens"))
    total = usage.get("total_tokens")
    excluded = total is None or _tokens(total) >= prompt + completion + reasoning
    if reasoning and excluded:
        completion += reasoning
    out["prompt_tokens"] = prompt
    out["completion_tokens"] = completion
    out["total_tokens"] = max(_tokens(total), prompt + completion)
    return out, Usage(
        input_tokens=prompt,
        output_tokens=completion,
        cached_tokens=cached,
        reasoning_tokens=reasoning,
    )


def to_chat_completion(native: dict[str, Any]) -> tuple[dict[str, Any], Usage]:
    """An xAI `chat_get_completion` object as an OpenAI ChatCompletion, and its usage."""
    body = dict(native)
    body.setdefault("object", "chat.completion")
    choices = []
    for index, choice in enumerate(body.get("choices") or []):
        if not isinstance(choice, dict):
            continue
        choice = {**choice}
        choice.setdefault("index", index)
        reason = choice.get("finish_reason")
        if isinstance(reason, str):
            choice["finish_reason"] = _FINISH.get(reason, reason)
        choices.append(choice)
    body["choices"] = choices
    usage = body.get("usage")
    if isinstance(usage, dict):
        body["usage"], ours = normalize_usage(usage)
    else:
        ours = Usage()
    return body, ours


class XAITranslator(Translator):
    """OpenAI batch lines as xAI takes them, and xAI's results as chat completions."""

    def validate(self, endpoint: str, body: Body) -> None:
        validate_chat(body)

    def to_native(self, endpoint: str, body: Body) -> Body:
        return to_native(body)

    def from_native(
        self, native: Mapping[str, Any], *, model: str = "", created: int = 0
    ) -> tuple[Body, Usage]:
        return to_chat_completion(dict(native))


TRANSLATOR = XAITranslator()
