"""Mistral's wire vocabulary: its error envelope, file and batch job objects, and what
its Batch API checks in an input line.

Shapes from the `mistralai` SDK's models (`batchjob.py`, `fileschema.py`,
`batchjobstatus.py`), generated from https://docs.mistral.ai/api/#tag/batch.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..kit import EmulatedError
from ..kit.timeline import Phase
from ..openai.fakes import FAKERS, Faker, Usage
from ..openai.results import Summary
from ..openai.validate import Scan
from ..openai.wire import BatchRecord, FileRecord

# The emulator's phases (OpenAI's) as Mistral's job statuses.
STATUS = {
    "validating": "QUEUED",
    "in_progress": "RUNNING",
    "finalizing": "RUNNING",
    "completed": "SUCCESS",
    "failed": "FAILED",
    "expired": "TIMEOUT_EXCEEDED",
    "cancelling": "CANCELLATION_REQUESTED",
    "cancelled": "CANCELLED",
}
# The SDK's `APIEndpoint`; the emulator fakes answers for the first two.
ENDPOINTS = (
    "/v1/chat/completions",
    "/v1/embeddings",
    "/v1/fim/completions",
    "/v1/moderations",
    "/v1/chat/moderations",
    "/v1/ocr",
    "/v1/classifications",
    "/v1/chat/classifications",
    "/v1/conversations",
    "/v1/audio/transcriptions",
)
EMULATED = frozenset(ENDPOINTS[:2])


class MistralError(EmulatedError):
    """Mistral's error envelope `{"object": "error", "message", "type", "param", "code"}`."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        body = {"object": "error", "message": message, "type": type, "param": None, "code": code}
        super().__init__(status, body, headers)


def render_file(record: FileRecord) -> dict[str, Any]:
    if record.batch_id is None:
        sample_type, source = "batch_request" if record.purpose == "batch" else "instruct", "upload"
    else:
        sample_type, source = ("batch_result" if record.output else "batch_error"), "mistral"
    return {
        "id": record.id,
        "object": "file",
        "bytes": record.bytes,
        "created_at": record.created_at,
        "filename": record.filename,
        # Result files are batch files too in Mistral's purposes.
        "purpose": "batch" if record.batch_id is not None else record.purpose,
        "sample_type": sample_type,
        "source": source,
        "num_lines": None,
        "mimetype": "application/jsonl",
        "signature": None,
        "expires_at": record.expires_at,
        "visibility": "workspace",
    }


def render_job(
    batch: BatchRecord, phase: Phase, scan: Scan | None, summary: Summary | None
) -> dict[str, Any]:
    """The BatchJob object for the phase observed."""
    valid = scan is not None and scan.error is None
    total = scan.total if scan is not None and valid else 0
    if summary is not None:
        succeeded, failed = summary.succeeded, summary.http_failed
    elif scan is not None and total and phase.status != "validating":
        # Spread the known failures evenly over the finished part while running.
        failed = round(phase.done * scan.failures / total)
        succeeded = phase.done - failed
    else:
        succeeded = failed = 0
    errors = []
    if phase.status == "failed" and scan is not None and scan.error is not None:
        errors = [{"message": scan.error.message, "count": 1}]
    stamps = {k: int(v) for k, v in phase.times.items()}
    ends = ("completed_at", "failed_at", "expired_at", "cancelled_at")
    ended = [stamps[k] for k in ends if k in stamps]
    return {
        "id": batch.id,
        "object": "batch",
        "input_files": [batch.input_file_id],
        "metadata": batch.metadata,
        "endpoint": batch.endpoint,
        "model": batch.ctx.model or (scan.model if scan is not None else None),
        "agent_id": None,
        "output_file": batch.output_file_id if phase.terminal else None,
        "error_file": batch.error_file_id if phase.terminal else None,
        "errors": errors,
        "outputs": None,
        "status": STATUS[phase.status],
        "created_at": int(batch.schedule.created),
        "total_requests": total,
        "completed_requests": succeeded + failed,
        "succeeded_requests": succeeded,
        "failed_requests": failed,
        "started_at": stamps.get("in_progress_at"),
        "completed_at": max(ended) if ended else None,
    }


def _embeddings(body: dict[str, Any], rid: str, created: int) -> tuple[dict[str, Any], Usage]:
    # Mistral names the size `output_dimension` and gives its answer an id (the SDK's
    # `EmbeddingResponse`).
    asked = {**body, "dimensions": body.get("output_dimension")}
    response, usage = FAKERS["/v1/embeddings"](asked, rid, created)
    return {"id": f"emb-{rid[:24]}", **response}, usage


MISTRAL_FAKERS: Mapping[str, Faker] = {**FAKERS, "/v1/embeddings": _embeddings}
