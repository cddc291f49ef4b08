"""Together's wire vocabulary: its error envelope, file and job objects, error-file rows.

Shapes from the `together` SDK's types (`batch_job.py`, `file_response.py`) and Together's
batch guide (https://docs.together.ai/docs/batch-inference).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import orjson

from ..kit import EmulatedError
from ..kit.timeline import Phase
from ..openai.results import Summary
from ..openai.validate import Scan
from ..openai.wire import BatchRecord, FileRecord

STATUS = {
    "validating": "VALIDATING",
    "in_progress": "IN_PROGRESS",
    "finalizing": "IN_PROGRESS",
    "cancelling": "CANCELING",
    "completed": "COMPLETED",
    "failed": "FAILED",
    "expired": "EXPIRED",
    "cancelled": "CANCELLED",
}
# The SDK's `endpoint` Literal; the emulator fakes answers for chat completions.
ENDPOINTS = ("/v1/chat/completions", "/v1/audio/transcriptions", "/v1/audio/translations")


class TogetherError(EmulatedError):
    """Together's API error `{"error": {"message", "type", "code"}}`."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        body = {"error": {"message": message, "type": type, "param": None, "code": None}}
        super().__init__(status, body, headers)


def rfc3339(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


def render_file(record: FileRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "object": "file",
        "bytes": record.bytes,
        "created_at": record.created_at,
        "filename": record.filename,
        "FileType": "jsonl",
        "purpose": "batch-api" if record.batch_id is not None else record.purpose,
        "processing_status": "COMPLETED",
    }


def render_job(
    batch: BatchRecord,
    phase: Phase,
    scan: Scan | None,
    summary: Summary | None,
    *,
    file_size: int,
    model_id: str | None,
) -> dict[str, Any]:
    """The job object for the phase observed: fields appear as Together adds them."""
    total = scan.total if scan is not None and scan.error is None else 0
    job: dict[str, Any] = {
        "id": batch.id,
        "user_id": "emulated-user",
        "input_file_id": batch.input_file_id,
        "file_size_bytes": file_size,
        "status": STATUS[phase.status],
        "job_deadline": rfc3339(batch.schedule.deadline),
        "created_at": rfc3339(batch.schedule.created),
        "endpoint": batch.endpoint,
        "progress": round(100.0 * phase.done / total, 1) if total else 0.0,
    }
    if phase.status != "validating" and scan is not None and scan.error is None:
        job["model_id"] = model_id or scan.model
    if phase.terminal:
        for key, file_id in (
            ("output_file_id", batch.output_file_id),
            ("error_file_id", batch.error_file_id),
        ):
            if file_id is not None:
                job[key] = file_id
        job["completed_at"] = rfc3339(max(phase.times.values()))
    if phase.status == "failed" and scan is not None and scan.error is not None:
        job["error"] = scan.error.message
    return job


def together_rows(rows: Iterator[bytes]) -> Iterator[bytes]:
    """Error-file rows as Together writes them: the request's failure as `error`, with
    `batch_client_error` for the request's own fault (4xx) and `batch_server_error` for
    Together's (5xx, 429); no response."""
    for raw in rows:
        row = orjson.loads(raw)
        response: dict[str, Any] = row.get("response") or {}
        status = int(response.get("status_code") or 500)
        body = response.get("body")
        found = body.get("error") if isinstance(body, dict) else None
        error: dict[str, Any] = found if isinstance(found, dict) else {}
        client = 400 <= status < 500 and status != 429
        code = "batch_client_error" if client else "batch_server_error"
        message = str(error.get("message") or f"HTTP {status}")
        failure = {"code": code, "message": message}
        yield orjson.dumps({"id": row.get("id"), "custom_id": row["custom_id"], "error": failure})
        yield b"\n"
