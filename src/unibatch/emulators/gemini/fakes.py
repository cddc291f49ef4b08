"""Deterministic results for the Gemini emulator, streamed from disk.

Requests are kept as JSONL (`{"key"?, "metadata"?, "request"}`), whichever way they came
in; results are regenerated from them on every read, so memory stays flat for file input
and two downloads of one responses file are byte-identical. A value is a pure function of
the request, the batch, `seed` and `failure_rate`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from unibatch.providers.gemini.rules import RULES

from ..kit.fakes import hex_digest, tokens, unit
from ..kit.faults import requested_error


def fails(seed: int, rate: float, batch: str, index: int) -> bool:
    # The batch name is part of the draw, so a retried request is not doomed to fail again.
    return rate > 0 and unit(seed, "fail", batch, index) < rate


def _texts(content: Any) -> list[str]:
    parts = content.get("parts") if isinstance(content, dict) else None
    return [str(p["text"]) for p in parts or [] if isinstance(p, dict) and "text" in p]


def fake_generate(request: dict[str, Any], model: str, rid: str) -> dict[str, Any]:
    """A `GenerateContentResponse` for one request: an echo digest of the last user text."""
    contents = request["contents"]
    prompt = sum(tokens(t) for c in contents for t in _texts(c)) + sum(
        tokens(t) for t in _texts(request.get("systemInstruction"))
    )
    users = [c for c in contents if isinstance(c, dict) and c.get("role", "user") == "user"]
    last = " ".join(_texts(users[-1])) if users else ""
    config = request.get("generationConfig") or request.get("generation_config") or {}
    limit = config.get("maxOutputTokens", config.get("max_output_tokens"))
    text = f"Echo: {hex_digest(last, size=6)}"
    out, reason = tokens(text), "STOP"
    if isinstance(limit, int) and 0 < limit < out:
        text, out, reason = text[: limit * 4], limit, "MAX_TOKENS"
    part: dict[str, Any] = {"text": text}
    calling = ((request.get("toolConfig") or {}).get("functionCallingConfig")) or {}
    declared = [
        d["name"]
        for tool in request.get("tools") or []
        for d in tool.get("functionDeclarations") or []
    ]
    if calling.get("mode") == "ANY" and declared:
        name = (calling.get("allowedFunctionNames") or declared)[0]
        part, out, reason = {"functionCall": {"name": name, "args": {"q": last[:20]}}}, 8, "STOP"
    n = config.get("candidateCount", 1)
    n = n if isinstance(n, int) and n > 0 else 1
    usage: dict[str, Any] = {
        "promptTokenCount": prompt,
        "candidatesTokenCount": out * n,
        "totalTokenCount": prompt + out * n,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt}],
    }
    if prompt >= 1024:  # implicit caching starts at about a thousand tokens: emulate a half-hit
        usage["cachedContentTokenCount"] = prompt // 2
    if "pro" in model:  # thinking models bill their thoughts as output
        usage["thoughtsTokenCount"] = 12
        usage["totalTokenCount"] += 12
    candidates = [
        {"content": {"parts": [part], "role": "model"}, "finishReason": reason, "index": i}
        for i in range(n)
    ]
    return {
        "candidates": candidates,
        "usageMetadata": usage,
        "modelVersion": model.removeprefix("models/"),
        "responseId": rid[:22],
    }


def fake_embed(request: dict[str, Any]) -> dict[str, Any]:
    """An `EmbedContentResponse`: a unit vector derived from the text."""
    text = " ".join(_texts(request.get("content")))
    dims = request.get("outputDimensionality")
    dims = dims if isinstance(dims, int) and 0 < dims <= 3072 else 8
    raw = [unit(text, i) * 2 - 1 for i in range(dims)]
    norm = math.sqrt(sum(v * v for v in raw)) or 1.0
    return {"embedding": {"values": [round(v / norm, 6) for v in raw]}}


_ERRORS = (
    {"code": 13, "message": "Internal error encountered."},
    {"code": 3, "message": "Emulated request failure (failure_rate)."},
)


# What a request that fails on this attempt (`retryable_failure_rate`) answers: an
# overloaded service, which the next attempt may find free.
UNAVAILABLE = {"code": 14, "message": "The model is overloaded. Please try again later."}


def request_key(entry: dict[str, Any]) -> str:
    """How a request is known again when it is sent again: its key (a file row's, or an
    inline request's metadata), else its content."""
    key = entry.get("key") or (entry.get("metadata") or {}).get("key")
    return str(key) if key else hex_digest(orjson.dumps(entry.get("request")))


# The google.rpc status Gemini gives each HTTP status
# (https://ai.google.dev/gemini-api/docs/troubleshooting), for a request that asks to fail
# (`emulate-error:<status>`).
_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def asked_error(status: int) -> dict[str, Any]:
    name = _STATUS_NAMES.get(status, "INTERNAL" if status >= 500 else "INVALID_ARGUMENT")
    return {"code": status, "message": f"Emulated HTTP {status}.", "status": name}


def rule_error(request: Any, model: str) -> dict[str, Any] | None:
    """The error Gemini gives a request that breaks one of its rules for `model` (the
    rules unibatch's translation reads too), as a google.rpc.Status."""
    if not isinstance(request, dict):
        return None
    for violation in RULES.violations(request, model):
        return {"code": 400, "message": violation.provider_message, "status": "INVALID_ARGUMENT"}
    return None


def iter_results(
    path: Path,
    *,
    batch: str,
    model: str,
    cut: int,
    embed: bool,
    file_rows: bool,
    seed: int,
    rate: float,
    flaky: frozenset[int] = frozenset(),
) -> Iterator[dict[str, Any]]:
    """Result entries of the first `cut` requests, in input order.

    File rows carry `key`; inline entries echo `metadata`."""
    with path.open("rb") as fh:
        for index, raw in enumerate(fh):
            if index >= cut:
                return
            obj = orjson.loads(raw)
            entry: dict[str, Any] = {"key": obj.get("key")} if file_rows else {}
            asked = requested_error(raw)
            refused = None if embed else rule_error(obj.get("request"), model)
            if asked is not None:
                entry["error"] = asked_error(asked)
            elif refused is not None:
                entry["error"] = refused
            elif index in flaky:
                entry["error"] = UNAVAILABLE
            elif fails(seed, rate, batch, index):
                entry["error"] = _ERRORS[int(unit(seed, "kind", batch, index) * 2)]
            else:
                rid = hex_digest(batch, index)
                try:
                    request = obj["request"]
                    result = fake_embed(request) if embed else fake_generate(request, model, rid)
                    entry["response"] = result
                except (TypeError, KeyError, AttributeError, IndexError):
                    msg = "Request contains an invalid argument."
                    entry["error"] = {"code": 3, "message": msg}
            if not file_rows and "metadata" in obj:
                entry["metadata"] = obj["metadata"]
            yield entry
