"""Together AI Batch API adapter: upload the JSONL file, create a batch on `/v1/batches`,
poll it, download its output and error files.

A job has no metadata, so the input file is named after our tag: after a crash, the jobs
created since the submit are matched by their input file's name. A job reports no
counters, only `progress` (percent). Statuses map onto ours one to one (CANCELING, seen
live while a cancel drains, is cancelling). Requests a job never ran have no row; the
engine marks them by how the job ended.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from datetime import datetime
from typing import Any

import orjson

from unibatch.errors import PermanentProviderError
from unibatch.providers.base import JobSpec, ProviderJob, RequestLine, ResultRow
from unibatch.providers.http import HttpProvider
from unibatch.providers.openai.adapter import parse_row as openai_row
from unibatch.providers.openai.adapter import realtime_row
from unibatch.providers.openai.translate import OpenAITranslator
from unibatch.providers.together.classify import retryable
from unibatch.providers.together.rules import RULES
from unibatch.types import BatchStatus, ErrorInfo, RequestStatus

STATUS = {
    "VALIDATING": BatchStatus.VALIDATING,
    "IN_PROGRESS": BatchStatus.IN_PROGRESS,
    "CANCELING": BatchStatus.CANCELLING,
    "COMPLETED": BatchStatus.COMPLETED,
    "FAILED": BatchStatus.FAILED,
    "EXPIRED": BatchStatus.EXPIRED,
    "CANCELLED": BatchStatus.CANCELLED,
}


class TogetherProvider(HttpProvider):
    translator = OpenAITranslator("together", RULES)

    async def submit(self, spec: JobSpec, lines: AsyncIterable[RequestLine]) -> ProviderJob:
        # The direct upload (Together's `POST /v1/files/upload`): one multipart request.
        async with self.batch_file(spec, lines, method_and_url=False) as upload:
            made = await self._call(
                "POST",
                "v1/files/upload",
                data={"purpose": "batch-api", "file_name": _file_name(spec.tag)},
                files={"file": (_file_name(spec.tag), upload, "application/jsonl")},
            )
        created = await self._call(
            "POST",
            "v1/batches",
            json={
                "input_file_id": made["id"],
                "endpoint": spec.endpoint,
                "completion_window": "24h",
                "model_id": spec.model,
            },
        )
        return job_of(created.get("job") or created, spec.tag)

    async def find(
        self, tag: str, *, since: float, request_count: int | None = None
    ) -> ProviderJob | None:
        jobs = await self._call("GET", "v1/batches")
        recent = [
            job
            for job in (jobs if isinstance(jobs, list) else [])
            if isinstance(job, dict) and _seconds(job.get("created_at")) >= since - 1
        ]
        recent.sort(key=lambda job: _seconds(job.get("created_at")), reverse=True)
        for job in recent:
            file_id = job.get("input_file_id")
            if not file_id:
                continue
            try:
                info = await self._call("GET", f"v1/files/{file_id}")
            except PermanentProviderError:
                continue  # a deleted input file names no job of ours
            if info.get("filename") == _file_name(tag):
                return job_of(job, tag)
        return None

    async def get(self, job: ProviderJob) -> ProviderJob:
        return job_of(await self._call("GET", f"v1/batches/{job.id}"), job.tag)

    async def cancel(self, job: ProviderJob) -> ProviderJob:
        return await self.cancel_or_get(
            f"v1/batches/{job.id}/cancel", job, lambda found: job_of(found, job.tag)
        )

    async def realtime(self, endpoint: str, model: str, line: RequestLine) -> ResultRow:
        native = self.translator.to_native(endpoint, line.body)
        response = await self.post_realtime(endpoint.lstrip("/"), native)
        return realtime_row(line.custom_id, response, retryable)

    async def results(self, job: ProviderJob) -> AsyncIterator[list[ResultRow]]:
        for file_id in (job.output_file_id, job.error_file_id):
            if file_id:
                async for lines in self.stream_lines(f"v1/files/{file_id}/content"):
                    yield [parse_row(line) for line in lines]


def _file_name(tag: str) -> str:
    return f"{tag}.jsonl"


def _seconds(stamp: Any) -> float:
    """An RFC 3339 time (Together's jobs) as Unix seconds; 0 when absent or unreadable."""
    if isinstance(stamp, int | float):
        return float(stamp)
    try:
        return datetime.fromisoformat(str(stamp).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def job_of(job: dict[str, Any], tag: str | None = None) -> ProviderJob:
    native = str(job.get("status"))
    error = job.get("error")
    return ProviderJob(
        id=str(job["id"]),
        # An unknown new status is treated as still running: polling continues.
        status=STATUS.get(native, BatchStatus.IN_PROGRESS),
        native_status=native,
        input_file_id=job.get("input_file_id"),
        output_file_id=job.get("output_file_id"),
        error_file_id=job.get("error_file_id"),
        errors=[str(error)] if error else [],
        tag=tag,
    )


def parse_row(line: bytes) -> ResultRow:
    """An output row (OpenAI's envelope) or an error row: `{"custom_id", "error": {"code",
    "message"}}`, or a response with a non-2xx status."""
    row = orjson.loads(line)
    response = row.get("response") or {}
    status = int(response.get("status_code") or 0) or None
    if response and status is not None and 200 <= status < 300:
        return openai_row(line, retryable)
    body = response.get("body") if isinstance(response.get("body"), dict) else None
    found = row.get("error") if isinstance(row.get("error"), dict) else None
    if found is None and body is not None:
        found = body.get("error") if isinstance(body.get("error"), dict) else body
    error: dict[str, Any] = found or {}
    code = error.get("code") if isinstance(error.get("code"), str) else None
    kind = error.get("type") if isinstance(error.get("type"), str) else None
    return ResultRow(
        custom_id=str(row["custom_id"]),
        status=RequestStatus.ERRORED,
        status_code=status,
        body=body,
        error=ErrorInfo(
            code=code or kind or (f"http_{status}" if status else "unknown_error"),
            message=str(error.get("message") or (f"HTTP {status}" if status else "")),
            retryable=retryable(status, code, kind),
        ),
        row_id=row.get("id"),
    )
