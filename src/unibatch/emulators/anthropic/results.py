"""Deterministic result rows for the Anthropic batch emulator, streamed from the stored input.

Requests are kept on disk as JSONL (`{"custom_id", "params"}` per line); results are
regenerated from that file at every download, so memory stays flat and two downloads agree.
Every value is a pure function of the request, the batch id, ``seed`` and ``failure_rate``.
Validation of ``params`` is deferred, as on the real API: a bad one becomes an errored row
(:func:`~.validate.params_error`).
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from ..kit.fakes import hex_digest, text_of, tokens, unit
from ..kit.faults import requested_error
from .validate import params_error

CANCELED = "canceled"
EXPIRED = "expired"


@dataclass(frozen=True)
class RowContext:
    """What row generation needs besides the request; frozen when the batch is created."""

    batch_id: str
    failure_rate: float
    seed: int
    # Requests that fail on this attempt, overloaded (`retryable_failure_rate`).
    flaky: frozenset[str] = frozenset()


@dataclass
class Counts:
    """The batch's `request_counts` once it has ended."""

    succeeded: int = 0
    errored: int = 0
    canceled: int = 0
    expired: int = 0

    def as_json(self) -> dict[str, int]:
        return {
            "processing": 0,
            "succeeded": self.succeeded,
            "errored": self.errored,
            "canceled": self.canceled,
            "expired": self.expired,
        }


def _cache_ttl(value: Any) -> str | None:
    """The lifetime of the first cache breakpoint in `value` (`5m` or `1h`), if any."""
    if isinstance(value, dict):
        control = value.get("cache_control")
        if isinstance(control, dict):
            return "1h" if control.get("ttl") == "1h" else "5m"
        value = list(value.values())
    if isinstance(value, list):
        for item in value:
            if (ttl := _cache_ttl(item)) is not None:
                return ttl
    return None


def _fake_value(schema: Any, name: str) -> Any:
    """A value matching a JSON schema closely enough for a client to parse."""
    kind = schema.get("type") if isinstance(schema, dict) else None
    if isinstance(schema, dict) and schema.get("enum"):
        return schema["enum"][0]
    if kind == "object":
        props = schema.get("properties") or {}
        return {key: _fake_value(sub, key) for key, sub in props.items()}
    if kind == "array":
        return [_fake_value(schema.get("items") or {}, name)]
    if kind in ("integer", "number"):
        return 0
    if kind == "boolean":
        return False
    return f"emulated {name}"


def _forced_tool(params: dict[str, Any]) -> dict[str, Any] | None:
    choice = params.get("tool_choice") or {}
    tools = [t for t in params.get("tools") or [] if isinstance(t, dict)]
    if choice.get("type") == "tool":
        return next((t for t in tools if t.get("name") == choice.get("name")), None)
    if choice.get("type") == "any" and tools:
        return tools[0]
    return None


def fake_message(params: dict[str, Any], rid: str) -> dict[str, Any]:
    """A Message: echoes a digest of the last user turn, or calls the forced tool."""
    system = tokens(text_of(params.get("system"))) if params.get("system") else 0
    messages = params["messages"]
    prompt = system + sum(4 + tokens(text_of(m.get("content"))) for m in messages)
    users = [m for m in messages if m.get("role") == "user"]
    last = text_of(users[-1].get("content")) if users else ""
    limit = params["max_tokens"]
    tool = _forced_tool(params)
    content: list[dict[str, Any]]
    if tool is not None:
        args = _fake_value(tool.get("input_schema") or {}, "value")
        block = {"type": "tool_use", "id": f"toolu_{rid[:24]}", "name": tool.get("name")}
        content = [{**block, "input": args}]
        out, stop = tokens(orjson.dumps(args).decode()), "tool_use"
    else:
        text = f"Echo: {hex_digest(last, size=6)}"
        out, stop = tokens(text), "end_turn"
        if out > limit:
            text, out, stop = text[: limit * 4], limit, "max_tokens"
        content = [{"type": "text", "text": text}]
    # A prompt marked for caching reads half of itself from the cache (a warm cache) and
    # writes a quarter (the part past the cached prefix), for the breakpoint's lifetime.
    ttl = _cache_ttl(params)
    cached, written = (prompt // 2, prompt // 4) if ttl else (0, 0)
    return {
        "id": f"msg_{rid[:24]}",
        "type": "message",
        "role": "assistant",
        "model": params["model"],
        "content": content,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": {
            "input_tokens": prompt - cached - written,
            "cache_creation_input_tokens": written,
            "cache_creation": {
                "ephemeral_5m_input_tokens": written if ttl == "5m" else 0,
                "ephemeral_1h_input_tokens": written if ttl == "1h" else 0,
            },
            "cache_read_input_tokens": cached,
            "output_tokens": out,
            "service_tier": "batch",
        },
    }


def _errored(error_type: str, message: str, request_id: str | None) -> dict[str, Any]:
    inner = {"type": error_type, "message": message}
    return {"type": "errored", "error": {"type": "error", "error": inner, "request_id": request_id}}


# The error type Anthropic gives each HTTP status (https://docs.claude.com/en/api/errors):
# of a request that asks to fail (`emulate-error:<status>`), and of the API's own errors.
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def _asked(status: int, rid: str) -> dict[str, Any]:
    fallback = "api_error" if status >= 500 else "invalid_request_error"
    error_type = ERROR_TYPES.get(status, fallback)
    return _errored(error_type, f"Emulated HTTP {status}.", f"workerreq_{rid}")


def content_key(request: dict[str, Any]) -> str:
    """How a request is known again when it is sent again: unibatch's custom_ids name the
    job that sent them, so a retry comes back under a new one with the same params."""
    return hex_digest(orjson.dumps(request.get("params")))


def result_of(ctx: RowContext, custom_id: str, params: Any, raw: bytes) -> dict[str, Any]:
    """The `result` of one request: succeeded with a Message, or errored."""
    rid = hex_digest(ctx.batch_id, custom_id)
    asked = requested_error(raw)
    if asked is not None:
        return _asked(asked, rid)
    problem = params_error(params)
    if problem is not None:
        return _errored("invalid_request_error", problem, None)
    if ctx.flaky and content_key({"params": params}) in ctx.flaky:
        return _errored("overloaded_error", "Overloaded (emulated).", f"workerreq_{rid}")
    if ctx.failure_rate > 0 and unit(ctx.seed, "fail", custom_id) < ctx.failure_rate:
        if unit(ctx.seed, "kind", custom_id) < 0.5:
            return _errored("api_error", "Internal server error (emulated).", f"workerreq_{rid}")
        return _errored("overloaded_error", "Overloaded (emulated).", f"workerreq_{rid}")
    return {"type": "succeeded", "message": fake_message(params, rid)}


def iter_rows(path: Path, ctx: RowContext, cut: int, reason: str | None) -> Iterator[bytes]:
    """One JSONL row per request, in input order: the first ``cut`` ran, the rest carry
    ``reason`` (``canceled`` / ``expired``)."""
    with path.open("rb") as fh:
        for index, raw in enumerate(fh):
            request = orjson.loads(raw)
            custom_id = request["custom_id"]
            if index >= cut:
                result: dict[str, Any] = {"type": reason or EXPIRED}
            else:
                result = result_of(ctx, custom_id, request.get("params"), raw)
            yield orjson.dumps({"custom_id": custom_id, "result": result}) + b"\n"


def shuffled(rows: Iterable[bytes], seed: object, window: int = 8) -> Iterator[bytes]:
    """Rows in a scrambled order (the real API's order is arbitrary), holding at most
    ``window`` rows so a large batch still streams."""
    rng = random.Random(hex_digest(seed))
    held: list[bytes] = []
    for row in rows:
        held.append(row)
        if len(held) >= window:
            yield held.pop(rng.randrange(len(held)))
    while held:
        yield held.pop(rng.randrange(len(held)))


def count(path: Path, ctx: RowContext, cut: int, reason: str | None) -> Counts:
    """The ended batch's counters, from one pass over the rows."""
    counts = Counts()
    for row in iter_rows(path, ctx, cut, reason):
        kind = orjson.loads(row)["result"]["type"]
        setattr(counts, kind, getattr(counts, kind) + 1)
    return counts
