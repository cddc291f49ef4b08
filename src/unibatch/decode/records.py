"""Normalised result rows -> store records: one tuple per row, in one of the two forms
`unibatch.codec` defines (the full row, or the short form of a plain success)."""

from __future__ import annotations

from collections.abc import Iterable

import orjson

from unibatch import codec
from unibatch.codec import ResultRecord
from unibatch.pricing import Rates
from unibatch.providers.base import ResultRow
from unibatch.types import RequestStatus

SUCCEEDED = RequestStatus.SUCCEEDED

Record = ResultRecord
# Rows of a chunk that came back with only a `seq`: (index in the chunk, seq).
Unresolved = list[tuple[int, int]]


def extend(
    chunk: list[Record], unresolved: Unresolved, got: list[Record], pending: Unresolved
) -> None:
    """Append one `records()` result to a chunk being gathered, keeping the unresolved
    indexes pointing at the right rows."""
    unresolved += [(index + len(chunk), seq) for index, seq in pending]
    chunk += got


def _text(value: str | None) -> str | None:
    """Provider text as PostgreSQL can store it: its text type refuses NUL, and a result
    that could never be stored would stop the job's ingest for good."""
    return value.replace("\x00", "\ufffd") if value and "\x00" in value else value


def records(
    batch_id: str, job_id: str, rates: Rates, rows: Iterable[ResultRow], now: float
) -> tuple[list[Record], Unresolved]:
    """Store records (priced, body packed) of `rows`, and the rows still to be matched to
    their request by `seq`."""
    out: list[Record] = []
    unresolved: Unresolved = []
    rate_in, rate_cached, rate_out = rates.input, rates.cached_input, rates.output
    # A model without a known price costs null, not 0; long-context tiers price a row by
    # its prompt's size.
    known, tiered = rates.known, bool(rates.tiers)
    for r in rows:
        usage, error = r.usage, r.error
        tokens_in, cached = usage.input_tokens, min(usage.cached_tokens, usage.input_tokens)
        if r.custom_id is None and r.seq is not None:
            unresolved.append((len(out), r.seq))
        # Rates.cost inlined: this runs once per result row (cache writes are rare).
        cost_in: float | None
        cost_out: float | None
        if tiered or usage.cache_write_tokens:
            priced_at = rates.for_prompt(tokens_in)
            cost_in = priced_at.input_cost(usage)
            cost_out = usage.output_tokens * priced_at.output
        else:
            cost_in = (tokens_in - cached) * rate_in + cached * rate_cached
            cost_out = usage.output_tokens * rate_out
        if not known:
            cost_in = cost_out = None
        body = codec.pack_bytes(orjson.dumps(r.body)) if r.body is not None else None
        ids = (r.status_code, _text(r.row_id), _text(r.request_id))
        usage_cols = (
            tokens_in,
            usage.output_tokens,
            usage.cached_tokens,
            usage.reasoning_tokens,
            usage.cache_write_tokens,
        )
        priced = (*usage_cols, cost_in, cost_out, body)
        if error is None and r.raw is None and r.status is SUCCEEDED:
            out.append((batch_id, r.custom_id, job_id, *ids, *priced, now))
            continue
        failure = (
            (_text(error.code), _text(error.message), error.retryable)
            if error
            else (None, None, False)
        )
        raw = codec.pack_bytes(r.raw) if r.raw is not None else None
        out.append(
            (batch_id, r.custom_id, job_id, r.status.value, *ids, *failure, *priced, raw, now)
        )
    return out, unresolved
