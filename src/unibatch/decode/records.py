"""Normalised result rows -> store records: one tuple per row, in the results table's
column order (`unibatch.store.ops.RESULT_COLUMNS`; a unit test checks the two agree)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from unibatch.pricing import Rates
from unibatch.providers.base import ResultRow
from unibatch.store import codec

Record = tuple[Any, ...]
# Rows of a chunk that came back with only a `seq`: (index in the chunk, seq).
Unresolved = list[tuple[int, int]]


def records(
    batch_id: str, job_id: str, rates: Rates, rows: Iterable[ResultRow], now: float
) -> tuple[list[Record], Unresolved]:
    """Store records (priced, body packed) of `rows`, and the rows still to be matched to
    their request by `seq`."""
    out: list[Record] = []
    unresolved: Unresolved = []
    rate_in, rate_cached, rate_out = rates.input, rates.cached_input, rates.output
    for r in rows:
        usage, error = r.usage, r.error
        tokens_in, cached = usage.input_tokens, min(usage.cached_tokens, usage.input_tokens)
        if r.custom_id is None and r.seq is not None:
            unresolved.append((len(out), r.seq))
        out.append(
            (
                batch_id,
                r.custom_id,
                job_id,
                r.status.value,
                r.status_code,
                r.row_id,
                r.request_id,
                error.code if error else None,
                error.message if error else None,
                error.retryable if error else False,
                tokens_in,
                usage.output_tokens,
                usage.cached_tokens,
                usage.reasoning_tokens,
                # Rates.cost inlined: this runs once per result row.
                (tokens_in - cached) * rate_in + cached * rate_cached,
                usage.output_tokens * rate_out,
                codec.pack_bytes(orjson.dumps(r.body)) if r.body is not None else None,
                codec.pack_bytes(r.raw) if r.raw is not None else None,
                now,
            )
        )
    return out, unresolved
