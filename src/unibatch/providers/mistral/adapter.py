"""Mistral Batch API adapter: upload a JSONL file with purpose `batch`, create a job on
`/v1/batch/jobs` tagged in its metadata, poll it, download its output and error files.

Statuses (the `mistralai` SDK's `BatchJobStatus`) map onto ours: QUEUED is validating,
RUNNING in progress, SUCCESS completed, FAILED failed, TIMEOUT_EXCEEDED expired,
CANCELLATION_REQUESTED cancelling, CANCELLED cancelled. A request a job never ran has no
row in either file; the engine marks it by how the job ended.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from datetime import UTC, datetime
from typing import Any

import orjson

from unibatch.providers.base import JobSpec, ProviderJob, RequestLine, ResultRow
from unibatch.providers.http import HttpProvider
from unibatch.providers.mistral.classify import retryable
from unibatch.providers.mistral.translate import TRANSLATOR
from unibatch.providers.openai.adapter import TAG_KEY
from unibatch.providers.openai.adapter import parse_row as openai_row
from unibatch.types import BatchStatus, ErrorInfo, RequestStatus

STATUS = {
    "QUEUED": BatchStatus.VALIDATING,
    "RUNNING": BatchStatus.IN_PROGRESS,
    "SUCCESS": BatchStatus.COMPLETED,
    "FAILED": BatchStatus.FAILED,
    "TIMEOUT_EXCEEDED": BatchStatus.EXPIRED,
    "CANCELLATION_REQUESTED": BatchStatus.CANCELLING,
    "CANCELLED": BatchStatus.CANCELLED,
}
PAGE_SIZE = 100


class MistralProvider(HttpProvider):
    translator = TRANSLATOR

    async def submit(self, spec: JobSpec, lines: AsyncIterable[RequestLine]) -> ProviderJob:
        file_id = await self.upload_batch_file("v1/files", spec, lines, method_and_url=False)
        job = await self._call(
            "POST",
            "v1/batch/jobs",
            json={
                "input_files": [file_id],
                "endpoint": spec.endpoint,
                "model": spec.model,
                "metadata": {TAG_KEY: spec.tag},
                "timeout_hours": round(self.spec.completion_window / 3600),
            },
        )
        return job_of(job)

    async def find(
        self, tag: str, *, since: float, request_count: int | None = None
    ) -> ProviderJob | None:
        # Newest first, only jobs created since the submit began, filtered by our tag as
        # the SDK sends a metadata filter (one query parameter per key); the tag is
        # checked here too, whatever the server made of the filter.
        after = datetime.fromtimestamp(max(0.0, since - 1), UTC).isoformat()
        page = 0
        while True:
            params = {
                "page": page,
                "page_size": PAGE_SIZE,
                "created_after": after,
                "order_by": "-created",
                TAG_KEY: tag,
            }
            found = await self._call("GET", "v1/batch/jobs", params=params)
            data = [job for job in found.get("data") or [] if isinstance(job, dict)]
            for job in data:
                if (job.get("metadata") or {}).get(TAG_KEY) == tag:
                    return job_of(job)
            page += 1
            if not data or page * PAGE_SIZE >= int(found.get("total") or 0):
                return None

    async def get(self, job: ProviderJob) -> ProviderJob:
        return job_of(await self._call("GET", f"v1/batch/jobs/{job.id}"))

    async def cancel(self, job: ProviderJob) -> ProviderJob:
        return await self.cancel_or_get(f"v1/batch/jobs/{job.id}/cancel", job, job_of)

    async def realtime(self, endpoint: str, model: str, line: RequestLine) -> ResultRow:
        native = self.translator.to_native(endpoint, line.body)
        response = await self.post_realtime(endpoint.lstrip("/"), native)
        try:
            body: Any = response.json()
        except ValueError:
            body = {"message": response.text[:500], "type": "invalid_response"}
        answer = {"status_code": response.status_code, "body": body}
        return parse_row(orjson.dumps({"custom_id": line.custom_id, "response": answer}))

    async def results(self, job: ProviderJob) -> AsyncIterator[list[ResultRow]]:
        for file_id in (job.output_file_id, job.error_file_id):
            if file_id:
                async for lines in self.stream_lines(f"v1/files/{file_id}/content"):
                    yield [parse_row(line) for line in lines]


def job_of(job: dict[str, Any]) -> ProviderJob:
    native = str(job.get("status"))
    errors = [
        str(e.get("message")) + (f" (x{e['count']})" if (e.get("count") or 1) > 1 else "")
        for e in job.get("errors") or []
        if isinstance(e, dict)
    ]
    return ProviderJob(
        id=str(job["id"]),
        # An unknown new status is treated as still running: polling continues.
        status=STATUS.get(native, BatchStatus.IN_PROGRESS),
        native_status=native,
        completed=int(job.get("succeeded_requests") or 0),
        failed=int(job.get("failed_requests") or 0),
        total=int(job.get("total_requests") or 0),
        input_file_id=(job.get("input_files") or [None])[0],
        output_file_id=job.get("output_file"),
        error_file_id=job.get("error_file"),
        errors=errors,
        tag=(job.get("metadata") or {}).get(TAG_KEY),
    )


def parse_row(line: bytes) -> ResultRow:
    """One output or error file row: OpenAI's envelope, with Mistral's error bodies
    (`{"message", "type", "code"}`, a 422's `detail`) or a row-level `error`."""
    row = orjson.loads(line)
    response = row.get("response") or {}
    code = int(response.get("status_code") or 0)
    body = response.get("body")
    if 200 <= code < 300 and isinstance(body, dict):
        return openai_row(line)
    found: dict[str, Any] = body if isinstance(body, dict) else {}
    # OpenAI's `{"error": {...}}` where a server wraps it so, else Mistral's bare fields.
    wrapped = found.get("error")
    error: dict[str, Any] = wrapped if isinstance(wrapped, dict) else found
    detail = error.get("detail")
    if isinstance(detail, list) and detail and isinstance(detail[0], dict):
        error = {"message": detail[0].get("msg"), "type": detail[0].get("type")}
    row_error: dict[str, Any] = row["error"] if isinstance(row.get("error"), dict) else {}
    name = error.get("code") or error.get("type") or row_error.get("code")
    message = error.get("message") or row_error.get("message") or f"HTTP {code}"
    return ResultRow(
        custom_id=str(row["custom_id"]),
        status=RequestStatus.ERRORED,
        status_code=code or None,
        body=body if isinstance(body, dict) else None,
        error=ErrorInfo(
            code=str(name or f"http_{code}"),
            message=str(message),
            retryable=retryable(code or None, _text(error.get("code")), _text(error.get("type"))),
        ),
        row_id=row.get("id"),
    )


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None
