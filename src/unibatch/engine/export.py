"""A batch's results as JSONL lines, written straight from the stored rows.

The same lines as `orjson.dumps(result.as_openai(batch_id))` and `result.as_unified()`
(tests/unit/test_export.py compares them byte for byte), without building a `Result`
per row: a response body is stored as orjson wrote it, so it goes into the line as
those bytes instead of being parsed and written again. That was
most of the time of an export (about 11,000 rows/s before; bench/export.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, BinaryIO, Literal

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
_NULL = b"null"


def openai_lines(
    batch_id: str, rows: Sequence[Sequence[Any]], keep: Callable[[str], bool] | None = None
) -> list[bytes]:
    """OpenAI batch output lines of rows of `OPENAI_COLUMNS` (`Result.as_openai`); with
    `keep`, only of the rows whose status it accepts.

    A line is put together from parts: orjson writes an object as `{`, its members joined
    by `,`, and `}`, so the body's bytes can go in between the small parts orjson writes,
    with no copy of them into a dict (twice as fast as `orjson.Fragment` in one dict)."""
    dumps, unpacked, join = orjson.dumps, codec.json_bytes, b"".join
    out = []
    for custom_id, status, code, row_id, request_id, error_code, message, body in rows:
        if keep is not None and not keep(status):
            continue
        head = dumps({"id": row_id or f"{batch_id}-{custom_id}", "custom_id": custom_id})[:-1]
        doc = unpacked(body)
        parts: tuple[bytes, ...]
        if doc is not None and doc != _NULL and code is not None:
            parts = (
                head,
                b',"response":{"status_code":',
                dumps(code),
                b',"request_id":',
                dumps(request_id or ""),
                b',"body":',
                doc,
                b'},"error":null}\n',
            )
        else:
            error = (
                _NULL
                if error_code is None
                else dumps({"code": error_code, "message": message or ""})
            )
            parts = (head, b',"response":null,"error":', error, b"}\n")
        out.append(join(parts))
    return out


def unified_lines(rows: Sequence[Sequence[Any]]) -> list[bytes]:
    """Our result lines (`Result.as_unified`) of rows of `UNIFIED_COLUMNS`, put together
    as `openai_lines` does."""
    dumps, unpacked, join = orjson.dumps, codec.json_bytes, b"".join
    # `"provider":...,"model":...,"response":`, written once per job's model.
    middles: dict[tuple[str, str], bytes] = {}
    out = []
    for (
        custom_id,
        status,
        provider,
        model,
        body,
        error_code,
        message,
        retryable,
        tokens_in,
        tokens_out,
        cached,
        reasoning,
        cache_write,
        cost_in,
        cost_out,
        raw,
    ) in rows:
        middle = middles.get((provider, model))
        if middle is None:
            names = dumps({"provider": provider, "model": model})
            middle = middles[provider, model] = b"," + names[1:-1] + b',"response":'
        tail = dumps(
            {
                "error": (
                    None
                    if error_code is None
                    else {
                        "code": error_code,
                        "message": message or "",
                        "retryable": bool(retryable),
                    }
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
                # The provider's native row, kept as it sent it (its own spelling):
                # parsed, so the line has orjson's. Plain successes have none.
                "raw": None if raw is None else codec.unpack(raw),
            }
        )
        head = dumps({"custom_id": custom_id, "status": status})[:-1]
        doc = unpacked(body)
        response = _NULL if doc is None else doc
        out.append(join((head, middle, response, b",", tail[1:], b"\n")))
    return out


async def result_lines(
    store: Store,
    batch_id: str,
    fmt: Format,
    *,
    keep: Callable[[str], bool] | None = None,
) -> AsyncIterator[list[bytes]]:
    """Every result landed so far, in input order, as JSONL lines (each ending in a
    newline) in `fmt`, a list per chunk of rows read. `keep` (OpenAI format) picks rows
    by their status."""
    if fmt == "openai":
        async for rows in store.iter_result_rows(batch_id, OPENAI_COLUMNS):
            yield openai_lines(batch_id, rows, keep)
    else:
        async for rows in store.iter_result_rows(batch_id, UNIFIED_COLUMNS):
            yield unified_lines(rows)


async def write_lines(blocks: AsyncIterator[list[bytes]], handle: BinaryIO) -> int:
    """Write the lines of `blocks` to `handle`; how many. Each block is one write, made by
    a thread of its own while the next block is put together (a write releases the GIL);
    one block waits at most, so memory stays that of two blocks."""
    loop = asyncio.get_running_loop()
    count = 0
    with ThreadPoolExecutor(1, thread_name_prefix="unibatch-write") as thread:
        pending: asyncio.Future[int] | None = None
        async for lines in blocks:
            data = b"".join(lines)
            count += len(lines)
            if pending is not None:
                await pending
            pending = loop.run_in_executor(thread, handle.write, data)
        if pending is not None:
            await pending
    return count
