"""OpenAI Batch API adapter: upload JSONL, create, poll, download the output and error files.

The adapter serves any provider that speaks OpenAI's Batch API: it is built for a
`ProviderSpec` that names its key variables, base URL and limits."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from typing import Any

import orjson

from unibatch.errors import PermanentProviderError
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


class OpenAIProvider(HttpProvider):
    translator = TRANSLATOR

    async def submit(self, spec: JobSpec, lines: AsyncIterable[RequestLine]) -> ProviderJob:
        async with self.batch_file(spec, lines) as upload:
            file_obj = await self._call(
                "POST",
                "files",
                data={"purpose": "batch"},
                files={"file": (f"{spec.tag}.jsonl", upload, "application/jsonl")},
            )
        batch = await self._call(
            "POST",
            "batches",
            json={
                "input_file_id": file_obj["id"],
                "endpoint": spec.endpoint,
                "completion_window": "24h",
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
        try:
            return self._job(await self._call("POST", f"batches/{job.id}/cancel"))
        except PermanentProviderError as exc:
            # Cancelling a batch that has just ended is refused; its state is what we want.
            if exc.status_code in (400, 409):
                return await self.get(job)
            raise

    async def results(self, job: ProviderJob) -> AsyncIterator[list[ResultRow]]:
        for file_id in (job.output_file_id, job.error_file_id):
            if not file_id:
                continue
            async for lines in self.stream_lines(f"files/{file_id}/content"):
                yield [parse_row(line) for line in lines]

    @staticmethod
    def _job(batch: dict[str, Any]) -> ProviderJob:
        counts = batch.get("request_counts") or {}
        errors = [
            f"{e.get('code')}: {e.get('message')}"
            + (f" (line {e['line']})" if e.get("line") is not None else "")
            for e in ((batch.get("errors") or {}).get("data") or [])
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
        return BatchStatus(native)
    except ValueError:
        # An unknown new status is treated as still running: polling continues.
        return BatchStatus.IN_PROGRESS


def parse_row(line: bytes) -> ResultRow:
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
                retryable=retryable(code, _text(code_name), _text(error_type)),
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
            retryable=retryable(None, code_name),
        ),
        row_id=row.get("id"),
    )


def _text(value: object) -> str | None:
    # `code` and `type` are strings on the wire; anything else names no known class.
    return value if isinstance(value, str) else None
