"""What the OpenAI Batch API rejects: a create request (synchronously, as a 400) and an input
file (after the fact, as a batch that ends ``failed`` with one ``errors.data`` entry).

The real API stops at the first bad line, and so does :func:`scan_input`; it reads the file
line by line, keeping only the set of custom_ids.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from ..kit.faults import requested_error
from .errors import OpenAIError, missing_param
from .fakes import EMULATED_ENDPOINTS
from .results import RowContext, fails, rule_error

# The endpoints the SDK's `Literal` allows; the emulator fakes responses for a subset.
SDK_ENDPOINTS = EMULATED_ENDPOINTS | {
    "/v1/moderations",
    "/v1/images/generations",
    "/v1/images/edits",
    "/v1/videos",
}


def check_create(body: dict[str, Any]) -> None:
    """Raise the 400 a create request earns synchronously (file contents wait for later)."""
    for param in ("input_file_id", "endpoint", "completion_window"):
        if not body.get(param):
            raise missing_param(param)
        if not isinstance(body[param], str):
            msg = f"Invalid type for '{param}': expected a string."
            raise OpenAIError(400, msg, param=param, code="invalid_type")
    endpoint = body["endpoint"]
    if endpoint not in SDK_ENDPOINTS:
        msg = f"Invalid value: '{endpoint}'. Supported values are: {sorted(SDK_ENDPOINTS)}."
        raise OpenAIError(400, msg, param="endpoint", code="invalid_value")
    if endpoint not in EMULATED_ENDPOINTS:
        msg = f"The emulator does not fake responses for endpoint '{endpoint}'."
        raise OpenAIError(400, msg, param="endpoint", code="invalid_value")
    if body["completion_window"] != "24h":
        msg = f"Invalid value: '{body['completion_window']}'. Supported values are: '24h'."
        raise OpenAIError(400, msg, param="completion_window", code="invalid_value")
    metadata = body.get("metadata")
    if metadata is not None:
        ok = isinstance(metadata, dict) and len(metadata) <= 16
        ok = ok and all(
            isinstance(k, str) and isinstance(v, str) and len(k) <= 64 and len(v) <= 512
            for k, v in metadata.items()
        )
        if not ok:
            msg = (
                "Invalid 'metadata': at most 16 string pairs, keys up to 64 characters and "
                "values up to 512 characters."
            )
            raise OpenAIError(400, msg, param="metadata", code="invalid_value")


@dataclass(frozen=True)
class LineError:
    """The one ``errors.data`` entry of a batch that failed validation."""

    code: str
    message: str
    param: str | None
    line: int | None

    def as_json(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "param": self.param, "line": self.line}


@dataclass(frozen=True)
class Scan:
    """Outcome of validating an input file."""

    error: LineError | None
    total: int = 0
    model: str | None = None
    failures: int = 0  # requests that will answer an HTTP error (a rule, failure_rate)


def _invalid(code: str, message: str, param: str | None, line: int | None) -> Scan:
    return Scan(LineError(code, message, param, line))


LineCheck = Callable[[Any, int, str, set[str]], "LineError | None"]


def check_openai_line(obj: Any, lineno: int, endpoint: str, seen: set[str]) -> LineError | None:
    """The first thing wrong with one input line (a parsed JSON value), as OpenAI says it."""
    if not isinstance(obj, dict):
        return LineError("invalid_json_line", "This line is not a JSON object.", None, lineno)
    custom_id = obj.get("custom_id")
    if not isinstance(custom_id, str):
        msg = "Missing required parameter: 'custom_id'."
        return LineError("missing_required_parameter", msg, "custom_id", lineno)
    if custom_id in seen:
        msg = f"The custom_id '{custom_id}' is duplicated. Each custom_id must be unique."
        return LineError("duplicate_custom_id", msg, "custom_id", lineno)
    if obj.get("method") != "POST":
        msg = "Only the POST method is supported for batch requests."
        return LineError("invalid_request", msg, "method", lineno)
    if obj.get("url") != endpoint:
        msg = f"The URL provided for this request does not match the batch endpoint {endpoint}."
        return LineError("invalid_url", msg, "url", lineno)
    body = obj.get("body")
    if not isinstance(body, dict):
        return LineError("invalid_request", "Missing required parameter: 'body'.", "body", lineno)
    if not isinstance(body.get("model"), str) or not body["model"]:
        msg = "Missing required parameter: 'model'."
        return LineError("invalid_request", msg, "body.model", lineno)
    if body.get("stream") is True:
        msg = "Streaming is not supported in the Batch API."
        return LineError("streaming_unsupported", msg, "body.stream", lineno)
    return None


def check_bare_line(obj: Any, lineno: int, endpoint: str, seen: set[str]) -> LineError | None:
    """A line of the APIs whose job names the endpoint (Mistral, Together):
    `{"custom_id", "body"}`, no method or url. (Mistral calls `custom_id` optional;
    results are matched by it, so the emulator asks for one.)"""
    if not isinstance(obj, dict):
        return LineError("invalid_json_line", "This line is not a JSON object.", None, lineno)
    custom_id = obj.get("custom_id")
    if not isinstance(custom_id, str) or not custom_id:
        return LineError("missing", "custom_id: Field required", "custom_id", lineno)
    if custom_id in seen:
        msg = f"custom_id '{custom_id}' is duplicated"
        return LineError("duplicate_custom_id", msg, "custom_id", lineno)
    body = obj.get("body")
    if not isinstance(body, dict):
        return LineError("missing", "body: Field required", "body", lineno)
    if body.get("stream") is True:
        return LineError(
            "invalid_request", "Streaming is not supported in batches.", "body", lineno
        )
    return None


def scan_input(
    path: Path | None,
    endpoint: str,
    ctx: RowContext,
    max_requests: int,
    missing: str,
    check_line: LineCheck = check_openai_line,
) -> Scan:
    """Validate an input file the way the real API does: stop at the first bad line.

    ``path`` is ``None`` when the input file does not exist (or is not a batch file);
    ``missing`` is the message for that case.
    """
    if path is None:
        return _invalid("invalid_request", missing, "file_id", None)
    seen: set[str] = set()
    model: str | None = None
    failures = 0
    with path.open("rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            if not raw.strip():
                continue
            try:
                obj = orjson.loads(raw)
            except orjson.JSONDecodeError:
                msg = "This line is not parseable as valid JSON."
                return _invalid("invalid_json_line", msg, None, lineno)
            error = check_line(obj, lineno, endpoint, seen)
            if error is not None:
                return Scan(error)
            line_model = obj["body"].get("model") or ctx.model
            if model is None:
                model = line_model
            elif line_model != model:
                msg = (
                    f"The provided model '{line_model}' does not match the model '{model}' "
                    "used by the other requests in the file."
                )
                return _invalid("mismatched_model", msg, "body.model", lineno)
            seen.add(obj["custom_id"])
            if len(seen) > max_requests:
                msg = f"The batch input file contains more than {max_requests} requests."
                return _invalid("too_many_tasks", msg, None, None)
            failures += (
                requested_error(raw) is not None
                or bool(rule_error(obj["body"], ctx.rules))
                or fails(ctx, obj["custom_id"])
            )
    if not seen:
        return _invalid("empty_file", "The batch input file is empty.", None, None)
    return Scan(None, len(seen), model, failures)
