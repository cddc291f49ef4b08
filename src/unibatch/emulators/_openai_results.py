"""Validation and deterministic results for the OpenAI batch emulator, streamed from disk.

Nothing here holds a whole file: validation reads the input line by line (keeping only the
set of custom_ids), and result files are regenerated from the input at every download.
Every value is a pure function of the input line, the batch id, ``seed`` and
``failure_rate``, so two downloads of one file are byte-identical and the byte counts
computed once by :func:`summarize` stay true.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from ._openai_fakes import FAKERS, Usage, hex_digest, unit

EXPIRED = "batch_expired"
CANCELLED = "batch_cancelled"
_UNRUN_MESSAGES = {
    EXPIRED: "This request could not be executed before the completion window expired.",
    CANCELLED: "This request was not executed because the batch was cancelled.",
}


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
    failures: int = 0  # requests that will answer an HTTP error (failure_rate)


@dataclass(frozen=True)
class RowContext:
    """What row generation needs besides the input line; frozen when the batch is created."""

    batch_id: str
    endpoint: str
    created: int
    failure_rate: float
    seed: int


@dataclass
class Summary:
    """Sizes and totals of a finished batch's two result files, for one cut."""

    output_rows: int = 0
    error_rows: int = 0
    output_bytes: int = 0
    error_bytes: int = 0
    succeeded: int = 0
    http_failed: int = 0
    usage: Usage = field(default_factory=Usage)


# -- per-request failures ----------------------------------------------------------------


def fails(ctx: RowContext, custom_id: str) -> bool:
    """Whether this request answers an HTTP error (deterministic in seed and custom_id)."""
    return ctx.failure_rate > 0 and unit(ctx.seed, "fail", custom_id) < ctx.failure_rate


# -- validation --------------------------------------------------------------------------


def _invalid(code: str, message: str, param: str | None, line: int | None) -> Scan:
    return Scan(LineError(code, message, param, line))


def _check_line(obj: Any, lineno: int, endpoint: str, seen: set[str]) -> LineError | None:
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


def scan_input(
    path: Path | None, endpoint: str, ctx: RowContext, max_requests: int, missing: str
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
            error = _check_line(obj, lineno, endpoint, seen)
            if error is not None:
                return Scan(error)
            line_model = obj["body"]["model"]
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
            failures += fails(ctx, obj["custom_id"])
    if not seen:
        return _invalid("empty_file", "The batch input file is empty.", None, None)
    return Scan(None, len(seen), model, failures)


_UNREADABLE = {
    "message": "The emulator could not interpret this request body.",
    "type": "invalid_request_error",
    "param": "body",
    "code": "invalid_request",
}


def _http_error(ctx: RowContext, custom_id: str) -> tuple[int, dict[str, Any]]:
    if unit(ctx.seed, "status", custom_id) < 0.5:
        return 500, {
            "message": "The server had an error while processing your request. Sorry about that!",
            "type": "server_error",
            "param": None,
            "code": None,
        }
    return 400, {
        "message": "Emulated request failure (failure_rate).",
        "type": "invalid_request_error",
        "param": None,
        "code": "emulated_failure",
    }


# -- result rows -------------------------------------------------------------------------


def iter_outcomes(
    path: Path, ctx: RowContext, cut: int, reason: str | None
) -> Iterator[tuple[bool, bytes, Usage | None]]:
    """``(is_output_row, jsonl_row, usage)`` per request, in input order.

    The first ``cut`` requests ran (succeeded or answered an HTTP error); the rest never ran
    and carry ``reason`` (``batch_expired`` / ``batch_cancelled``).
    """
    fake = FAKERS[ctx.endpoint]
    index = 0
    with path.open("rb") as fh:
        for raw in fh:
            if not raw.strip():
                continue
            obj = orjson.loads(raw)
            custom_id: str = obj["custom_id"]
            rid = hex_digest(ctx.batch_id, custom_id)
            row: dict[str, Any] = {"id": f"batch_req_{rid}", "custom_id": custom_id}
            usage: Usage | None = None
            if index >= cut:
                message = _UNRUN_MESSAGES[reason or EXPIRED]
                row["response"] = None
                row["error"] = {"code": reason or EXPIRED, "message": message}
                ok = False
            elif fails(ctx, custom_id):
                status, error = _http_error(ctx, custom_id)
                body = {"error": error}
                row["response"] = {"status_code": status, "request_id": f"req_{rid}", "body": body}
                row["error"] = None
                ok = False
            else:
                try:
                    response, usage = fake(obj["body"], rid, ctx.created)
                    status = 200
                except (TypeError, ValueError, KeyError, AttributeError):
                    # A body the fakes cannot read is what a real endpoint would reject.
                    status, response = 400, {"error": _UNREADABLE}
                    usage = None
                row["response"] = {
                    "status_code": status,
                    "request_id": f"req_{rid}",
                    "body": response,
                }
                row["error"] = None
                ok = status == 200
            index += 1
            yield ok, orjson.dumps(row) + b"\n", usage


def _swap_pairs(rows: Iterable[bytes]) -> Iterator[bytes]:
    # Real result files are "not guaranteed" to follow input order; swapping neighbours keeps
    # memory bounded while still catching clients that assume the order.
    held: bytes | None = None
    for row in rows:
        if held is None:
            held = row
        else:
            yield row
            yield held
            held = None
    if held is not None:
        yield held


def iter_file_rows(
    path: Path, ctx: RowContext, cut: int, reason: str | None, output: bool
) -> Iterator[bytes]:
    """The rows of the output file (``output=True``) or the error file, as served."""
    rows = (row for ok, row, _ in iter_outcomes(path, ctx, cut, reason) if ok is output)
    return _swap_pairs(rows)


def summarize(path: Path, ctx: RowContext, cut: int, reason: str | None) -> Summary:
    """One pass computing both files' sizes, the counters and the usage for a cut."""
    summary = Summary()
    for index, (ok, row, usage) in enumerate(iter_outcomes(path, ctx, cut, reason)):
        if ok:
            summary.output_rows += 1
            summary.output_bytes += len(row)
            summary.succeeded += 1
            if usage is not None:
                summary.usage.add(usage)
        else:
            summary.error_rows += 1
            summary.error_bytes += len(row)
            summary.http_failed += index < cut
    return summary
