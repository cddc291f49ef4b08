"""Deterministic results for the OpenAI batch emulator, streamed from disk.

Nothing here holds a whole file: result files are regenerated from the input at every
download.
Every value is a pure function of the input line, the batch id, ``seed`` and
``failure_rate``, so two downloads of one file are byte-identical and the byte counts
computed once by :func:`summarize` stay true.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from unibatch.providers.openai.rules import RULES
from unibatch.providers.rules import RuleTable

from ..kit.fakes import hex_digest, unit
from ..kit.faults import requested_error
from ..kit.timeline import CANCELLED, EXPIRED
from .fakes import FAKERS, Faker, Usage

_UNRUN_MESSAGES = {
    EXPIRED: "This request could not be executed before the completion window expired.",
    CANCELLED: "This request was not executed because the batch was cancelled.",
}


@dataclass(frozen=True)
class RowContext:
    """What row generation needs besides the input line; frozen when the batch is created."""

    batch_id: str
    endpoint: str
    created: int
    failure_rate: float
    seed: int
    # Requests that fail on this attempt with a retryable 500 (`retryable_failure_rate`).
    flaky: frozenset[str] = frozenset()
    # What the provider refuses per model (an OpenAI-shaped provider has its own table).
    rules: RuleTable = RULES
    # False: requests the batch never ran get no row (the engine marks them by the batch's
    # end); True: OpenAI's `batch_expired` / `batch_cancelled` rows.
    unrun_rows: bool = True
    # The model a create named, for lines without one (Mistral).
    model: str | None = None
    # The answers per endpoint (a provider whose answers differ a little has its own).
    fakers: Mapping[str, Faker] = field(default_factory=lambda: FAKERS)


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


_UNREADABLE = {
    "message": "The emulator could not interpret this request body.",
    "type": "invalid_request_error",
    "param": "body",
    "code": "invalid_request",
}


def rule_error(body: Any, rules: RuleTable = RULES) -> dict[str, Any] | None:
    """The 400 error OpenAI (or the provider of `rules`) answers for a body that breaks one
    of its rules for the model (the rules unibatch's translation reads too), or None."""
    if not isinstance(body, dict):
        return None
    for violation in rules.violations(body, str(body.get("model") or "")):
        return {
            "message": violation.provider_message,
            "type": "invalid_request_error",
            "param": violation.field,
            "code": violation.code,
        }
    return None


SERVER_ERROR = {
    "message": "The server had an error while processing your request. Sorry about that!",
    "type": "server_error",
    "param": None,
    "code": None,
}


def _http_error(ctx: RowContext, custom_id: str) -> tuple[int, dict[str, Any]]:
    if unit(ctx.seed, "status", custom_id) < 0.5:
        return 500, SERVER_ERROR
    return 400, {
        "message": "Emulated request failure (failure_rate).",
        "type": "invalid_request_error",
        "param": None,
        "code": "emulated_failure",
    }


def asked_error(status: int) -> dict[str, Any]:
    """The error body OpenAI answers with `status`, for a request that asks to fail
    (`emulate-error:<status>`); shapes from https://platform.openai.com/docs/guides/error-codes."""
    if status == 429:
        kind, code, message = "requests", "rate_limit_exceeded", "Rate limit reached (emulated)."
    elif status >= 500:
        kind, code, message = "server_error", None, "The server had an error (emulated)."
    else:
        kind, code, message = "invalid_request_error", None, f"Emulated HTTP {status}."
    return {"message": message, "type": kind, "param": None, "code": code}


# -- result rows -------------------------------------------------------------------------


def iter_outcomes(
    path: Path, ctx: RowContext, cut: int, reason: str | None
) -> Iterator[tuple[bool, bytes, Usage | None]]:
    """``(is_output_row, jsonl_row, usage)`` per request, in input order.

    The first ``cut`` requests ran (succeeded or answered an HTTP error); the rest never ran
    and carry ``reason`` (``batch_expired`` / ``batch_cancelled``).
    """
    fake = ctx.fakers[ctx.endpoint]
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
            if index >= cut and not ctx.unrun_rows:
                index += 1
                continue
            if ctx.model is not None and isinstance(obj.get("body"), dict):
                obj["body"].setdefault("model", ctx.model)
            if index >= cut:
                message = _UNRUN_MESSAGES[reason or EXPIRED]
                row["response"] = None
                row["error"] = {"code": reason or EXPIRED, "message": message}
                ok = False
            elif (asked := requested_error(raw)) is not None:
                status, error = asked, asked_error(asked)
                body = {"error": error}
                row["response"] = {"status_code": status, "request_id": f"req_{rid}", "body": body}
                row["error"] = None
                ok = False
            elif custom_id in ctx.flaky and not rule_error(obj.get("body"), ctx.rules):
                body = {"error": SERVER_ERROR}
                row["response"] = {"status_code": 500, "request_id": f"req_{rid}", "body": body}
                row["error"] = None
                ok = False
            elif (refused := rule_error(obj.get("body"), ctx.rules)) or fails(ctx, custom_id):
                # A rule broken is a 400 in the error file, as OpenAI answers it: the Batch
                # API's validation at create checks only the shape of each line.
                status, error = (400, refused) if refused else _http_error(ctx, custom_id)
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
