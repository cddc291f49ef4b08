"""A batch's results as JSONL lines, written straight from the stored rows.

The same lines as `orjson.dumps(result.as_openai(batch_id))` and `result.as_unified()`
(tests/unit/test_export.py compares them byte for byte), without building a `Result`
per row: a response body is stored as orjson wrote it, so it goes into the line as
those bytes instead of being parsed and written again. That was
most of the time of an export (about 11,000 rows/s before; bench/export.py).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, BinaryIO, Literal, Protocol

import orjson

from unibatch import codec

Format = Literal["openai", "unified"]
Row = dict[str, Any]
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
    "mode",
    "price",
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
    "attempts",
)
_NULL = b"null"
# The end of a unified line without error or native row (the newline follows): what
# orjson writes for those members of `Result.as_unified()`.
_PLAIN_TAIL = (
    b'"error":null,"usage":{"input_tokens":%d,"output_tokens":%d,"cached_tokens":%d,'
    b'"reasoning_tokens":%d,"cache_write_tokens":%d},"cost":{"input":%b,"output":%b,'
    b'"total":%b,"currency":"USD"%b},"raw":null,"attempts":1,"history":[]}'
)


class ResultRows(Protocol):
    """Where results are read from: `Store`, or `store.lite.Reader` (SQLite, read
    without SQLAlchemy, for `unibatch results`)."""

    def iter_result_rows(
        self, batch_id: str, columns: Sequence[str], *, chunk: int = ...
    ) -> AsyncIterator[list[tuple[Any, ...]]]: ...

    async def history(self, batch_id: str, custom_ids: Sequence[str]) -> dict[str, list[Row]]:
        """The earlier attempts of these requests, oldest first (`Store.history`)."""
        ...


_USAGE = (
    "input_tokens",
    "output_tokens",
    "cached_tokens",
    "reasoning_tokens",
    "cache_write_tokens",
)


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


def unified_lines(
    rows: Sequence[Sequence[Any]], history: Mapping[str, Sequence[Row]] | None = None
) -> list[bytes]:
    """Our result lines (`Result.as_unified`) of rows of `UNIFIED_COLUMNS`, put together
    as `openai_lines` does. `history` holds the earlier attempts of the requests sent
    more than once (`Store.history`); their usage and cost count in the line's."""
    dumps, unpacked, join = orjson.dumps, codec.json_bytes, b"".join
    # `"provider":...,"model":...,"mode":...,"cached":...,"response":`, written once per
    # job's model.
    middles: dict[tuple[str, str, str], bytes] = {}
    # `,"price":{...}` of the cost object, written once per job's price.
    prices: dict[str | None, bytes] = {None: b""}
    out = []
    for (
        custom_id,
        status,
        provider,
        model,
        mode,
        price,
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
        attempts,
    ) in rows:
        middle = middles.get((provider, model, mode))
        if middle is None:
            names = dumps(
                {"provider": provider, "model": model, "mode": mode, "cached": mode == "cache"}
            )
            middle = middles[provider, model, mode] = b"," + names[1:-1] + b',"response":'
        earlier = history.get(custom_id, ()) if history and attempts > 1 else ()
        if error_code is None and raw is None and attempts == 1 and cost_in is not None:
            # A plain success (most rows): no dicts to build, the integers written by `%d`
            # (the columns are NOT NULL integers), the amounts by orjson.
            tail = _PLAIN_TAIL % (
                tokens_in,
                tokens_out,
                cached,
                reasoning,
                cache_write,
                dumps(round(cost_in, 12)),
                dumps(round(cost_out, 12)),
                dumps(round(cost_in + cost_out, 12)),
                _price_member(prices, price),
            )
        else:
            usage = [tokens_in, tokens_out, cached, reasoning, cache_write]
            for past in earlier:
                usage = [t + int(past[name]) for t, name in zip(usage, _USAGE, strict=True)]
                # An attempt whose price is unknown makes the total unknown.
                if cost_in is not None and past["cost_input"] is not None:
                    cost_in += float(past["cost_input"])
                    cost_out = float(cost_out or 0.0) + float(past["cost_output"] or 0.0)
                else:
                    cost_in = None
            tail = dumps(
                {
                    "error": _error(error_code, message, retryable),
                    "usage": dict(zip(_USAGE, usage, strict=True)),
                    "cost": _cost(cost_in, cost_out, price),
                    # The provider's native row, kept as it sent it (its own spelling):
                    # parsed, so the line has orjson's. Plain successes have none.
                    "raw": None if raw is None else codec.unpack(raw),
                    "attempts": attempts,
                    "history": [_attempt(past) for past in earlier],
                }
            )[1:]
        head = dumps({"custom_id": custom_id, "status": status})[:-1]
        doc = unpacked(body)
        response = _NULL if doc is None else doc
        out.append(join((head, middle, response, b",", tail, b"\n")))
    return out


def _price_member(known: dict[str | None, bytes], price: str | None) -> bytes:
    """`,"price":{...}` for the cost object of a plain success (b"" without a price)."""
    member = known.get(price)
    if member is None:
        member = known[price] = b"" if price is None else b',"price":' + price.encode()
    return member


def _error(code: str | None, message: str | None, retryable: Any) -> dict[str, Any] | None:
    if code is None:
        return None
    return {"code": code, "message": message or "", "retryable": bool(retryable)}


def _cost(
    cost_in: float | None, cost_out: float | None, price: str | None = None
) -> dict[str, Any] | None:
    """The cost object, or None where the model's price is unknown (a local server's);
    `price` (JSON text) is the price it was costed at, when known."""
    if cost_in is None:
        return None
    cost_out = cost_out or 0.0
    cost: dict[str, Any] = {
        "input": round(cost_in, 12),
        "output": round(cost_out, 12),
        "total": round(cost_in + cost_out, 12),
        "currency": "USD",
    }
    if price is not None:
        cost["price"] = orjson.loads(price)
    return cost


def _attempt(past: Row) -> dict[str, Any]:
    """An earlier attempt as `Attempt.as_dict` writes it."""
    return {
        "attempt": past["attempt"],
        "status": past["status"],
        "provider": past["provider"] or "",
        "model": past["model"] or "",
        "error": _error(past["error_code"], past["error_message"], past["retryable"]),
        "usage": {name: int(past[name]) for name in _USAGE},
        "cost": _cost(past["cost_input"], past["cost_output"]),
    }


async def result_lines(
    store: ResultRows,
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
        last = len(UNIFIED_COLUMNS) - 1  # attempts
        async for rows in store.iter_result_rows(batch_id, UNIFIED_COLUMNS):
            retried = [row[0] for row in rows if row[last] > 1]
            history = await store.history(batch_id, retried) if retried else None
            yield unified_lines(rows, history)


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


async def write_results(source: ResultRows, batch_id: str, output: Path | None, fmt: Format) -> int:
    """Write a batch's results to `output` (stdout when None); returns how many."""
    lines = result_lines(source, batch_id, fmt)
    if output is None:
        count = await write_lines(lines, sys.stdout.buffer)
        sys.stdout.flush()
        return count
    # Written to a temporary name first so a crash never leaves a half file behind.
    partial = output.with_name(output.name + ".partial")
    with partial.open("wb") as handle:
        count = await write_lines(lines, handle)
    partial.replace(output)
    return count
