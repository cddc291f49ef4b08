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
from unibatch.providers.registry import spec_of, split_model
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
# Characters per token, roughly, for the estimate of a prompt's size.
_CHARS_PER_TOKEN = 4


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

    def at(field: str) -> int | None:
        return _ts(batch.finished_at) if field == finished else None

    usage = batch.usage
    return BatchObject(
        id=batch.id,
        endpoint=batch.endpoint,
        input_file_id=owner.get("input_file_id"),
        completion_window=owner.get("completion_window") or "24h",
        status=openai_status(batch.status),
        output_file_id=(
            generated_file_id("output", batch.id) if terminal and counts.succeeded else None
        ),
        error_file_id=generated_file_id("error", batch.id) if terminal and unsucceeded else None,
        errors=_errors(batch),
        created_at=int(batch.created_at),
        in_progress_at=_ts(batch.submitted_at),
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
    )


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


def file_object(row: Mapping[str, Any]) -> FileObject:
    return FileObject(
        id=row["id"],
        bytes=int(row["bytes"]),
        created_at=int(row["created_at"]),
        filename=row["filename"],
        purpose=row["purpose"],
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
) -> float:
    """Upper-ish estimate of a batch's cost: prompt bytes / 4 tokens in, max_tokens out
    for each choice asked for. Lines the engine will reject are skipped here; it names
    them. Raises `UnpricedModelError` for a model without a known price."""
    total = 0.0
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
        if pricer.price(provider, bare) is None:
            raise UnpricedModelError(model)
        rates = pricer.rates(provider, bare, spec_of(provider).batch_discount)
        out = max_output_tokens(body, default_max_tokens) * choices(body)
        prompt = len(orjson.dumps(dict(body))) // _CHARS_PER_TOKEN
        total += prompt * rates.input + out * rates.output
    return total


def _count(value: Any) -> int | None:
    # bool is an int subclass, and `true` is no count.
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _generation_config(body: Mapping[str, Any]) -> Mapping[str, Any]:
    """A native Gemini body's generation config (protobuf JSON takes either spelling)."""
    config = body.get("generationConfig", body.get("generation_config"))
    return config if isinstance(config, Mapping) else {}


def max_output_tokens(body: Mapping[str, Any], default: int) -> int:
    """The output tokens one answer may take: OpenAI's, Anthropic's or a native Gemini
    body's limit, else `default`."""
    config = _generation_config(body)
    for value in (
        body.get("max_completion_tokens"),
        body.get("max_tokens"),
        body.get("max_output_tokens"),
        config.get("maxOutputTokens"),
        config.get("max_output_tokens"),
    ):
        count = _count(value)
        if count is not None:
            return max(count, 0)
    return default


def choices(body: Mapping[str, Any]) -> int:
    """How many answers a request asks for, each billed for its own output tokens:
    OpenAI's `n`, or `candidateCount` of a native Gemini body (translated bodies carry
    `n`, which becomes Gemini's candidate count)."""
    config = _generation_config(body)
    for value in (
        body.get("n"),
        config.get("candidateCount"),
        config.get("candidate_count"),
    ):
        count = _count(value)
        if count is not None:
            return max(count, 1)
    return 1


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
