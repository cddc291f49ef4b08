"""Our batches and results in OpenAI's shapes, and the cost estimate budgets reserve."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any, Literal

import orjson

from unibatch.engine import Engine
from unibatch.engine.limits import line_too_deep
from unibatch.errors import UnknownProviderError, UnpricedModelError
from unibatch.gateway.models import (
    BatchCost,
    BatchErrorItem,
    BatchErrors,
    BatchObject,
    BatchUsage,
    FileObject,
    InputTokensDetails,
    OutputTokensDetails,
    RequestCounts,
)
from unibatch.pricing import Pricer
from unibatch.providers.registry import split_model
from unibatch.providers.translate import CHAT
from unibatch.types import Batch, BatchStatus, RequestStatus

Kind = Literal["output", "error"]
_FILE_PREFIX: dict[Kind, str] = {"output": "file-out-", "error": "file-err-"}
# OpenAI's SDK knows no `pending`; a batch not yet sent is, to it, still validating.
_STATUS = {BatchStatus.PENDING: "validating"}
_FINISHED_AT = {
    BatchStatus.COMPLETED: "completed_at",
    BatchStatus.FAILED: "failed_at",
    BatchStatus.EXPIRED: "expired_at",
    BatchStatus.CANCELLED: "cancelled_at",
}


def openai_status(status: BatchStatus) -> str:
    return _STATUS.get(status, status.value)


def generated_file_id(kind: Kind, batch_id: str) -> str:
    return _FILE_PREFIX[kind] + batch_id


def parse_generated(file_id: str) -> tuple[Kind, str] | None:
    """(kind, batch id) of an output or error file id; None for an uploaded file."""
    for kind, prefix in _FILE_PREFIX.items():
        if file_id.startswith(prefix) and len(file_id) > len(prefix):
            return kind, file_id[len(prefix) :]
    return None


def _ts(value: float | None) -> int | None:
    return None if value is None else int(value)


def batch_object(batch: Batch, owner: Mapping[str, Any]) -> BatchObject:
    counts = batch.request_counts
    # As in OpenAI's batch object: cancelled requests are neither completed nor failed
    # (and the CLI's `--json` counts the same way). They still go to the error file.
    failed = counts.errored + counts.expired
    unsucceeded = counts.done - counts.succeeded
    terminal = batch.status.terminal
    finished = _FINISHED_AT.get(batch.status)
    status = openai_status(batch.status)
    in_progress_at, finalizing_at, cancelling_at = _times(batch, status)

    def at(field: str) -> int | None:
        return _ts(batch.finished_at) if field == finished else None

    usage = batch.usage
    return BatchObject(
        id=batch.id,
        endpoint=batch.endpoint,
        input_file_id=owner.get("input_file_id"),
        completion_window=owner.get("completion_window") or "24h",
        status=status,
        output_file_id=(
            generated_file_id("output", batch.id) if terminal and counts.succeeded else None
        ),
        error_file_id=generated_file_id("error", batch.id) if terminal and unsucceeded else None,
        errors=_errors(batch),
        created_at=int(batch.created_at),
        in_progress_at=in_progress_at,
        finalizing_at=finalizing_at,
        cancelling_at=cancelling_at,
        expires_at=int(batch.created_at) + 86400,
        request_counts=RequestCounts(total=counts.total, completed=counts.succeeded, failed=failed),
        usage=BatchUsage(
            input_tokens=usage.input_tokens,
            input_tokens_details=InputTokensDetails(cached_tokens=usage.cached_tokens),
            output_tokens=usage.output_tokens,
            output_tokens_details=OutputTokensDetails(reasoning_tokens=usage.reasoning_tokens),
            total_tokens=usage.input_tokens + usage.output_tokens,
        ),
        metadata=batch.metadata or None,
        providers=list(batch.providers),
        cost=BatchCost(**batch.cost.as_dict()),
        completed_at=at("completed_at"),
        failed_at=at("failed_at"),
        expired_at=at("expired_at"),
        cancelled_at=at("cancelled_at"),
        deadline=_ts(batch.deadline),
        deadline_switched_at=_ts(batch.deadline_switched_at),
    )


def _times(batch: Batch, status: str) -> tuple[int | None, int | None, int | None]:
    """`in_progress_at`, `finalizing_at` and `cancelling_at`, each only once the batch has
    reached that stage as its status shows it: a batch shown `validating` (not sent yet,
    or its provider batch still being validated) has no `in_progress_at`."""
    started = None if status == "validating" else _ts(batch.submitted_at)
    ran = started is not None and status in ("finalizing", "completed", "failed", "expired")
    finalizing = _ts(batch.finalizing_at or batch.finished_at) if ran else None
    return started, finalizing, _ts(batch.cancel_requested_at)


def _errors(batch: Batch) -> BatchErrors | None:
    """OpenAI's `errors`: why the input was refused (with its line), else what providers
    said about the batch's jobs."""
    if batch.validation_errors:
        return BatchErrors(
            data=[
                BatchErrorItem(code=e.code, message=e.message, param=e.param, line=e.line)
                for e in batch.validation_errors
            ]
        )
    if batch.errors:
        return BatchErrors(
            data=[BatchErrorItem(code="provider_error", message=e) for e in batch.errors]
        )
    return None


GENERATED_PREFIXES: Mapping[str, str] = {str(k): v for k, v in _FILE_PREFIX.items()}


def file_object(row: Mapping[str, Any]) -> FileObject:
    return FileObject(
        id=row["id"],
        bytes=int(row["bytes"]),
        created_at=int(row["created_at"]),
        filename=row["filename"],
        purpose=row["purpose"],
        expires_at=_ts(row.get("expires_at")),
    )


def _succeeded(status: str) -> bool:
    return status == RequestStatus.SUCCEEDED


def _not_succeeded(status: str) -> bool:
    return status != RequestStatus.SUCCEEDED


async def output_lines(engine: Engine, batch_id: str, kind: Kind) -> AsyncIterator[bytes]:
    """The output (succeeded) or error (every other) file, as OpenAI output lines, in
    blocks of lines."""
    keep = _succeeded if kind == "output" else _not_succeeded
    async for lines in engine.result_lines(batch_id, "openai", keep=keep):
        if lines:
            yield b"".join(lines)


async def output_size(engine: Engine, batch_id: str, kind: Kind) -> int:
    size = 0
    async for line in output_lines(engine, batch_id, kind):
        size += len(line)
    return size


def estimate_cost(
    lines: Iterable[Mapping[str, Any]],
    *,
    pricer: Pricer,
    default_model: str | None,
    default_max_tokens: int,
    endpoint: str | None = None,
) -> float:
    """Estimate of a batch's cost at batch prices, as `unibatch estimate` and `--max-cost`
    make it: the prompt's tokens in, max_tokens out for each choice asked for. Lines the
    engine will reject are skipped here; it names them. Raises `UnpricedModelError` for a
    model without a known price."""
    # Imported here: the tokenizer is loaded by the first create that needs an estimate.
    from unibatch.estimate.meter import CostMeter

    meter = CostMeter(pricer, default_output=default_max_tokens)
    for line in lines:
        body = line.get("body") if isinstance(line, Mapping) else None
        if not isinstance(body, Mapping):
            continue
        model = body.get("model") or default_model
        if not isinstance(model, str):
            continue
        try:
            provider, bare = split_model(model)
        except UnknownProviderError:
            continue
        meter.add(provider, bare, line.get("url") or endpoint or CHAT, body)
        if meter.unpriced:
            raise UnpricedModelError(model)
    return meter.total


def jsonl_dicts(path: str) -> Iterable[Mapping[str, Any]]:
    """The JSON objects of a JSONL file, skipping what does not parse or nests too deeply
    (for estimates)."""
    with open(path, "rb") as handle:
        for raw in handle:
            try:
                data = orjson.loads(raw)
            except orjson.JSONDecodeError:
                continue
            if isinstance(data, dict) and not line_too_deep(raw, data):
                yield data
