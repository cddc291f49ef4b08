"""OpenAI Batch API adapter: upload JSONL, create, poll, download the output and error files.

The adapter serves any provider that speaks OpenAI's Batch API: it is built for a
`ProviderSpec` that names its key variables, base URL and limits."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Callable
from typing import Any

import httpx
import orjson

from unibatch.providers.base import JobSpec, ProviderJob, RequestLine, ResultRow
from unibatch.providers.http import HttpProvider
from unibatch.providers.openai.classify import retryable
from unibatch.providers.openai.translate import TRANSLATOR, usage_of
from unibatch.types import BatchStatus, ErrorInfo, RequestStatus

TAG_KEY = "unibatch_tag"
_ROW_STATUS = {
    "batch_expired": RequestStatus.EXPIRED,
    "batch_cancelled": RequestStatus.CANCELLED,
}
# Whether a failed request may succeed when sent again: (status, code, type) -> bool.
Classifier = Callable[[int | None, str | None, str | None], bool]


class OpenAIProvider(HttpProvider):
    translator = TRANSLATOR

    def classify(self, status_code: int | None, code: str | None, error_type: str | None) -> bool:
        """Whether a failed request may succeed when sent again (a service on OpenAI's wire
        format with error codes of its own answers from its own table)."""
        return retryable(status_code, code, error_type)

    def batch_endpoint(self, endpoint: str) -> str:
        """The create request's `endpoint` for lines sent to `endpoint`."""
        return endpoint

    def completion_window(self) -> str:
        """The `completion_window` a create request asks for (Groq takes longer ones)."""
        return "24h"

    async def submit(self, spec: JobSpec, lines: AsyncIterable[RequestLine]) -> ProviderJob:
        file_id = await self.upload_batch_file("files", spec, lines)
        batch = await self._call(
            "POST",
            "batches",
            json={
                "input_file_id": file_id,
                "endpoint": self.batch_endpoint(spec.endpoint),
                "completion_window": self.completion_window(),
                "metadata": {TAG_KEY: spec.tag},
            },
        )
        return self._job(batch)

    async def find(
        self, tag: str, *, since: float, request_count: int | None = None
    ) -> ProviderJob | None:
        after: str | None = None
        while True:
            params: dict[str, Any] = {"limit": 100}
            if after:
                params["after"] = after
            page = await self._call("GET", "batches", params=params)
            for batch in page.get("data", []):
                if (batch.get("metadata") or {}).get(TAG_KEY) == tag:
                    return self._job(batch)
            data = page.get("data") or []
            # The list is newest first: stop once the page reaches batches made before us.
            if not page.get("has_more") or not data or data[-1].get("created_at", 0) < since:
                return None
            after = data[-1]["id"]

    async def get(self, job: ProviderJob) -> ProviderJob:
        return self._job(await self._call("GET", f"batches/{job.id}"))

    async def cancel(self, job: ProviderJob) -> ProviderJob:
        return await self.cancel_or_get(f"batches/{job.id}/cancel", job, self._job)

    async def realtime(self, endpoint: str, model: str, line: RequestLine) -> ResultRow:
        # The endpoint as a path under the base URL: /v1/chat/completions -> chat/completions.
        native = self.translator.to_native(endpoint, line.body)
        response = await self.post_realtime(endpoint.removeprefix("/v1/"), native)
        return realtime_row(line.custom_id, response, self.classify)

    async def results(self, job: ProviderJob) -> AsyncIterator[list[ResultRow]]:
        for file_id in (job.output_file_id, job.error_file_id):
            if not file_id:
                continue
            async for lines in self.stream_lines(f"files/{file_id}/content"):
                classify = self.classify
                yield [parse_row(line, classify) for line in lines]

    def queue_refusal(self, job: ProviderJob) -> str | None:
        # A batch over the organisation's enqueued-token limit for its model fails
        # validation with `token_limit_exceeded` (limits per model and tier:
        # https://platform.openai.com/docs/guides/rate-limits; Azure OpenAI documents the
        # same code, https://learn.microsoft.com/azure/ai-services/openai/how-to/batch).
        if any(error.startswith("token_limit_exceeded") for error in job.errors):
            return "enqueued_tokens"
        return None

    @staticmethod
    def _job(batch: dict[str, Any]) -> ProviderJob:
        counts = batch.get("request_counts") or {}
        found = batch.get("errors") or {}
        # OpenAI wraps the entries in a list object; Groq's docs show a bare array too.
        entries = found.get("data") or [] if isinstance(found, dict) else found
        errors = [
            f"{e.get('code')}: {e.get('message')}"
            + (f" (line {e['line']})" if e.get("line") is not None else "")
            for e in entries
            if isinstance(e, dict)
        ]
        native = str(batch.get("status"))
        return ProviderJob(
            id=batch["id"],
            status=map_status(native),
            native_status=native,
            completed=int(counts.get("completed") or 0),
            failed=int(counts.get("failed") or 0),
            total=int(counts.get("total") or 0),
            input_file_id=batch.get("input_file_id"),
            output_file_id=batch.get("output_file_id"),
            error_file_id=batch.get("error_file_id"),
            errors=errors,
            tag=(batch.get("metadata") or {}).get(TAG_KEY),
        )


def map_status(native: str) -> BatchStatus:
    try:
        # Lower-cased: Azure's documents and list filters also write `Completed`, ...
        return BatchStatus(native.lower())
    except ValueError:
        # An unknown new status is treated as still running: polling continues.
        return BatchStatus.IN_PROGRESS


def realtime_row(
    custom_id: str, response: httpx.Response, classify: Classifier = retryable
) -> ResultRow:
    """A synchronous answer read as the batch output line it would have been: one mapping
    of bodies and errors for both paths."""
    try:
        body: Any = response.json()
    except ValueError:
        body = {"error": {"message": response.text[:500], "type": "invalid_response"}}
    line = {
        "custom_id": custom_id,
        "response": {
            "status_code": response.status_code,
            "request_id": response.headers.get("x-request-id"),
            "body": body,
        },
    }
    return parse_row(orjson.dumps(line), classify)


def parse_row(line: bytes, classify: Classifier = retryable) -> ResultRow:
    row = orjson.loads(line)
    custom_id = str(row["custom_id"])
    response = row.get("response")
    if response:
        code = int(response.get("status_code") or 0)
        body = response.get("body")
        if 200 <= code < 300 and isinstance(body, dict):
            # Positional (custom_id, status, status_code, body, error, usage, row_id,
            # request_id): the common row, built a million times per million requests.
            return ResultRow(
                custom_id,
                RequestStatus.SUCCEEDED,
                code,
                body,
                None,
                usage_of(body),
                row.get("id"),
                response.get("request_id"),
            )
        err = (body or {}).get("error") if isinstance(body, dict) else None
        err = err or {}
        code_name = err.get("code")
        error_type = err.get("type")
        return ResultRow(
            custom_id=custom_id,
            status=RequestStatus.ERRORED,
            status_code=code,
            body=body if isinstance(body, dict) else None,
            error=ErrorInfo(
                code=str(code_name or error_type or f"http_{code}"),
                message=str(err.get("message") or f"HTTP {code}"),
                retryable=classify(code, _text(code_name), _text(error_type)),
            ),
            row_id=row.get("id"),
            request_id=response.get("request_id"),
        )
    error = row.get("error") or {}
    code_name = str(error.get("code") or "unknown_error")
    return ResultRow(
        custom_id=custom_id,
        status=_ROW_STATUS.get(code_name, RequestStatus.ERRORED),
        error=ErrorInfo(
            code=code_name,
            message=str(error.get("message") or ""),
            retryable=classify(None, code_name, None),
        ),
        row_id=row.get("id"),
    )


def _text(value: object) -> str | None:
    # `code` and `type` are strings on the wire; anything else names no known class.
    return value if isinstance(value, str) else None
