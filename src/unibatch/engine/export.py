"""A batch's results as JSONL lines, written straight from the stored rows.

The same lines as `orjson.dumps(result.as_openai(batch_id))` and `result.as_unified()`
(tests/unit/test_export.py compares them byte for byte), without building a `Result`
per row: a response body is stored as orjson wrote it, so it goes into the line as
those bytes (`orjson.Fragment`) instead of being parsed and written again. That was
most of the time of an export (about 11,000 rows/s before; bench/export.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, Literal

import orjson

from unibatch import codec
from unibatch.store import Store

Format = Literal["openai", "unified"]
Lines = Callable[[Sequence[Sequence[Any]]], bytes]

OPENAI_COLUMNS = (
    "custom_id",
    "status",
    "status_code",
    "row_id",
    "request_id",
    "error_code",
    "error_message",
    "body",
)
UNIFIED_COLUMNS = (
    "custom_id",
    "status",
    "provider",
    "model",
    "body",
    "error_code",
    "error_message",
    "retryable",
    "input_tokens",
    "output_tokens",
    "cached_tokens",
    "reasoning_tokens",
    "cache_write_tokens",
    "cost_input",
    "cost_output",
    "raw",
)
_NEWLINE = orjson.OPT_APPEND_NEWLINE
_NULL = b"null"


def openai_lines(
    batch_id: str, rows: Sequence[Sequence[Any]], keep: Callable[[str], bool] | None = None
) -> bytes:
    """OpenAI batch output lines of rows of `OPENAI_COLUMNS` (`Result.as_openai`); with
    `keep`, only of the rows whose status it accepts."""
    dumps, fragment = orjson.dumps, orjson.Fragment
    out = []
    for custom_id, status, code, row_id, request_id, error_code, message, body in rows:
        if keep is not None and not keep(status):
            continue
        doc = codec.json_bytes(body)
        response = error = None
        if doc is not None and doc != _NULL and code is not None:
            response = {"status_code": code, "request_id": request_id or "", "body": fragment(doc)}
        elif error_code is not None:
            error = {"code": error_code, "message": message or ""}
        line = {
            "id": row_id or f"{batch_id}-{custom_id}",
            "custom_id": custom_id,
            "response": response,
            "error": error,
        }
        out.append(dumps(line, option=_NEWLINE))
    return b"".join(out)


def unified_lines(rows: Sequence[Sequence[Any]]) -> bytes:
    """Our result lines (`Result.as_unified`) of rows of `UNIFIED_COLUMNS`."""
    dumps, fragment = orjson.dumps, orjson.Fragment
    out = []
    for row in rows:
        (custom_id, status, provider, model, body, error_code, message, retryable) = row[:8]
        tokens_in, tokens_out, cached, reasoning, cache_write, cost_in, cost_out, raw = row[8:]
        doc = codec.json_bytes(body)
        line = {
            "custom_id": custom_id,
            "status": status,
            "provider": provider,
            "model": model,
            "response": None if doc is None else fragment(doc),
            "error": (
                None
                if error_code is None
                else {"code": error_code, "message": message or "", "retryable": bool(retryable)}
            ),
            "usage": {
                "input_tokens": tokens_in,
                "output_tokens": tokens_out,
                "cached_tokens": cached,
                "reasoning_tokens": reasoning,
                "cache_write_tokens": cache_write,
            },
            "cost": {
                "input": round(cost_in, 12),
                "output": round(cost_out, 12),
                "total": round(cost_in + cost_out, 12),
                "currency": "USD",
            },
            # The provider's native row, kept as it sent it (its own spelling): parsed, so
            # the line has orjson's. Only rows that are not plain successes have one.
            "raw": codec.unpack(raw),
        }
        out.append(dumps(line, option=_NEWLINE))
    return b"".join(out)


async def result_lines(
    store: Store,
    batch_id: str,
    fmt: Format,
    *,
    keep: Callable[[str], bool] | None = None,
) -> AsyncIterator[bytes]:
    """Every result landed so far, in input order, as JSONL in `fmt`: one block of lines
    per chunk of rows read. `keep` (OpenAI format) picks rows by their status."""
    if fmt == "openai":
        async for rows in store.iter_result_rows(batch_id, OPENAI_COLUMNS):
            yield openai_lines(batch_id, rows, keep)
    else:
        async for rows in store.iter_result_rows(batch_id, UNIFIED_COLUMNS):
            yield unified_lines(rows)
