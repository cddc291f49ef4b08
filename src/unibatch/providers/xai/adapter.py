"""xAI Batch API adapter: upload a JSONL file, create a named batch, derive
its status from the counters, read the paginated JSON results, cancel with `:cancel`.

The batch `name` carries our tag, so `find` recovers a batch created just before a crash.
Request translation and the shape of results live in `unibatch.providers.xai.translate`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterable, AsyncIterator, Mapping
from typing import Any

import orjson

from unibatch.errors import PermanentProviderError
from unibatch.providers.base import JobSpec, ProviderJob, RequestLine, ResultRow
from unibatch.providers.error_classes import UNRUN
from unibatch.providers.http import HttpProvider
from unibatch.providers.xai.classify import retryable as error_retryable
from unibatch.providers.xai.translate import TRANSLATOR
from unibatch.types import BatchStatus, ErrorInfo, RequestStatus

# The results and list endpoints allow at most 1000 per page (xAI's REST reference).
_PAGE = 1000
_LIST_PAGE = 100
# xAI words the rows of requests it never ran this way (capture: "Batch cancelled").
_CANCELLED_ROW = "batch cancelled"


class XAIProvider(HttpProvider):
    translator = TRANSLATOR

    async def submit(self, spec: JobSpec, lines: AsyncIterable[RequestLine]) -> ProviderJob:
        async with self.batch_file(spec, lines) as upload:
            # `purpose` is optional on xAI; the batch does not need it.
            file_obj = await self._call(
                "POST", "files", files={"file": (f"{spec.tag}.jsonl", upload, "application/jsonl")}
            )
        # A file-based batch is sealed at creation: nothing else to send.
        batch = await self._call(
            "POST", "batches", json={"name": spec.tag, "input_file_id": file_obj["id"]}
        )
        return job_of(batch)

    async def find(
        self, tag: str, *, since: float, request_count: int | None = None
    ) -> ProviderJob | None:
        # Creation times are whole days over REST, so only a page wholly from earlier days
        # (listed newest first) proves there is nothing more to see.
        since_day = dt.datetime.fromtimestamp(since, dt.UTC).date()
        token: str | None = None
        while True:
            params: dict[str, Any] = {"limit": _LIST_PAGE}
            if token:
                params["pagination_token"] = token
            page = await self._call("GET", "batches", params=params)
            listed = page.get("batches") or []
            for batch in listed:
                if batch.get("name") == tag:
                    return job_of(batch)
            days = [d for d in (day_of(b.get("create_time")) for b in listed) if d is not None]
            newest_first = days == sorted(days, reverse=True)
            token = page.get("pagination_token")
            if not token or not listed or (newest_first and days and days[0] < since_day):
                return None

    async def get(self, job: ProviderJob) -> ProviderJob:
        return job_of(await self._call("GET", f"batches/{job.id}"))

    async def cancel(self, job: ProviderJob) -> ProviderJob:
        try:
            found = job_of(await self._call("POST", f"batches/{job.id}:cancel"))
        except PermanentProviderError as exc:
            # A batch that has just ended may refuse the cancel; its state is what we want.
            if exc.status_code in (400, 409, 412):
                return await self.get(job)
            raise
        # xAI has no `cancelling` state, yet requests in flight can still land after the
        # cancel answers (the counters revert). Reporting `cancelling` once
        # makes the engine read the results one poll later, when they have settled.
        if found.status is BatchStatus.CANCELLED:
            found.status = BatchStatus.CANCELLING
        return found

    async def realtime(self, endpoint: str, model: str, line: RequestLine) -> ResultRow:
        """`POST /v1/chat/completions`, OpenAI's wire; the completion is brought back to a
        plain ChatCompletion as a batch result is, an error read as a batch row's."""
        native = self.translator.to_native(endpoint, line.body)
        response = await self.post_realtime("chat/completions", native)
        try:
            answer: Any = response.json()
        except ValueError:
            answer = {"error": response.text[:500]}
        if response.is_success and isinstance(answer, dict):
            body, usage = TRANSLATOR.from_native(answer)
            return ResultRow(
                custom_id=line.custom_id,
                status=RequestStatus.SUCCEEDED,
                status_code=response.status_code,
                body=body,
                usage=usage,
                request_id=body.get("id"),
                raw=response.content,
            )
        # xAI's REST errors: {"code": <gRPC status in words>, "error": <message>}.
        detail = answer if isinstance(answer, dict) else {"error": str(answer)}
        message = str(detail.get("error") or f"HTTP {response.status_code}")
        words = f"{detail.get('code') or ''}: {message}"
        error = {"message": message, "type": "invalid_request_error", "param": None, "code": None}
        return ResultRow(
            custom_id=line.custom_id,
            status=RequestStatus.ERRORED,
            status_code=response.status_code,
            # The OpenAI error body, so the default output line reads like OpenAI's.
            body={"error": error},
            error=ErrorInfo("xai_error", message, error_retryable(words)),
            raw=response.content,
        )

    async def results(self, job: ProviderJob) -> AsyncIterator[list[ResultRow]]:
        token: str | None = None
        while True:
            params: dict[str, Any] = {"limit": _PAGE}
            if token:
                params["pagination_token"] = token
            page = await self._call("GET", f"batches/{job.id}/results", params=params)
            yield [parse_row(row, job.status) for row in page.get("results") or []]
            previous, token = token, page.get("pagination_token")
            if not token:
                return
            if token == previous:
                # Re-reading the same page forever would store nothing new; fail loudly.
                raise PermanentProviderError(f"xai: results of {job.id} repeat page {token!r}")


def day_of(value: Any) -> dt.date | None:
    """The day of an xAI timestamp: `YYYY-MM-DD` over REST, RFC 3339 elsewhere."""
    if not isinstance(value, str) or len(value) < 10:
        return None
    try:
        return dt.date.fromisoformat(value[:10])
    except ValueError:
        return None


def _count(state: Mapping[str, Any], key: str) -> int:
    try:
        return int(state.get(key) or 0)
    except (TypeError, ValueError):
        return 0


def derive_status(batch: Mapping[str, Any]) -> BatchStatus:
    """Our status for an xAI batch, which has only counters (its REST API has no status).

    - `cancel_by_xai_message` set: xAI gave up on the batch (e.g. a bad JSONL line) → failed.
    - `cancel_time` set: cancelling while requests are pending, then cancelled.
    - no requests yet: the file is still being ingested → validating.
    - requests pending → in_progress.
    - none pending: requests cancelled without anyone cancelling ran out of time → expired;
      otherwise completed (errors are per request).
    """
    if batch.get("cancel_by_xai_message"):
        return BatchStatus.FAILED
    state = batch.get("state") or {}
    total = _count(state, "num_requests")
    pending = _count(state, "num_pending")
    if batch.get("cancel_time"):
        return BatchStatus.CANCELLING if pending > 0 else BatchStatus.CANCELLED
    if total == 0:
        return BatchStatus.VALIDATING
    if pending > 0:
        return BatchStatus.IN_PROGRESS
    if _count(state, "num_cancelled") > 0:
        return BatchStatus.EXPIRED
    return BatchStatus.COMPLETED


def job_of(batch: Mapping[str, Any]) -> ProviderJob:
    """An xAI batch object as a `ProviderJob`; `native_status` shows the counters."""
    state = batch.get("state") or {}
    message = batch.get("cancel_by_xai_message")
    native = (
        "cancelled_by_xai"
        if message
        else " ".join(
            f"{key}={_count(state, 'num_' + key)}"
            for key in ("pending", "success", "error", "cancelled")
        )
    )
    return ProviderJob(
        id=str(batch["batch_id"]),
        status=derive_status(batch),
        native_status=native[:64],
        completed=_count(state, "num_success"),
        failed=_count(state, "num_error"),
        cancelled=_count(state, "num_cancelled"),
        total=_count(state, "num_requests"),
        input_file_id=batch.get("input_file_id"),
        errors=[f"cancelled by xAI: {message}"] if message else [],
        tag=batch.get("name"),
    )


def _error_row(custom_id: str, error: Any, batch_status: BatchStatus, raw: bytes) -> ResultRow:
    # A dict would be the proto's google.rpc.Status, should REST ever send it.
    message = str(error.get("message") or error) if isinstance(error, dict) else str(error)
    status, code = RequestStatus.ERRORED, "xai_error"
    retryable = error_retryable(error)
    if _CANCELLED_ROW in message.lower():
        # Which cancel it was is known only from the batch: ours, expiry, or xAI's own.
        if batch_status is BatchStatus.EXPIRED:
            status, code = RequestStatus.EXPIRED, "batch_expired"
        elif batch_status is BatchStatus.FAILED:
            code = "batch_failed"
        else:
            status, code = RequestStatus.CANCELLED, "batch_cancelled"
        retryable = UNRUN[code]
    return ResultRow(
        custom_id=custom_id,
        status=status,
        error=ErrorInfo(code=code, message=message, retryable=retryable),
        raw=raw,
    )


def parse_row(row: Mapping[str, Any], batch_status: BatchStatus) -> ResultRow:
    """One entry of `GET …/results` as a `ResultRow` (the native entry kept in `raw`)."""
    custom_id = str(row["batch_request_id"])
    raw = orjson.dumps(row)
    result = row.get("batch_result") or {}
    response = result.get("response")
    if isinstance(response, dict) and response:
        native = response.get("chat_get_completion")
        if not isinstance(native, dict):
            # Another request kind (images, video): keep it as sent, there is no chat form.
            native = next(iter(response.values()))
            native = native if isinstance(native, dict) else {"value": native}
            return ResultRow(
                custom_id=custom_id,
                status=RequestStatus.SUCCEEDED,
                status_code=200,
                body=native,
                raw=raw,
            )
        body, usage = TRANSLATOR.from_native(native)
        return ResultRow(
            custom_id=custom_id,
            status=RequestStatus.SUCCEEDED,
            status_code=200,
            body=body,
            usage=usage,
            request_id=body.get("id"),
            raw=raw,
        )
    error = result.get("error")
    if not error:
        error = "xAI returned a result with neither a response nor an error"
    return _error_row(custom_id, error, batch_status, raw)
