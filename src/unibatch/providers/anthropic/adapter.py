"""Anthropic Message Batches adapter: inline create, poll, stream results.

Ids: Anthropic requires `custom_id` to match :data:`CUSTOM_ID`, and ours are ours to
choose: every request is sent as `<job id>-<seq>` and its result comes back with
`custom_id=None, seq=<seq>`, which the engine maps to the user's id. (Lines that do not
come from the engine keep their id when it fits, else `ubseq-<seq>`.)

Crash recovery: a Message Batch carries no metadata, but its requests carry our ids.
After a crash between Anthropic accepting a create and the engine recording it,
:meth:`AnthropicProvider.find` adopts a batch created since the job was made with the
job's request count; when its results arrive they must carry the job's id, and a batch
whose rows name another job raises `ForeignBatchError`, so the engine submits the job
again. Nothing is sent twice when the orphan was ours; when it was another job's, the
job is sent once more, as it would have been without recovery.
"""

from __future__ import annotations

import logging
import re
import tempfile
import time
from collections.abc import AsyncIterable, AsyncIterator
from datetime import datetime
from typing import IO, Any

import httpx
import orjson

from unibatch.errors import ForeignBatchError, PermanentProviderError, TransientProviderError
from unibatch.providers.anthropic.classify import retryable
from unibatch.providers.anthropic.translate import TRANSLATOR
from unibatch.providers.base import JobSpec, ProviderJob, RequestLine, ResultRow
from unibatch.providers.http import SPOOL_BYTES, HttpProvider
from unibatch.providers.spec import ProviderSpec
from unibatch.types import BatchStatus, ErrorInfo, RequestStatus

log = logging.getLogger("unibatch.providers.anthropic")

API_VERSION = "2023-06-01"
CUSTOM_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
SEQ_PREFIX = "ubseq-"
# `<job id>-<seq>`: job ids are `ubj_` and hex digits (unibatch.engine.ids).
JOB_ROW = re.compile(r"^(ubj_[0-9a-f]{1,48})-(\d+)$")
_TAG_SHAPE = "ubj_" + "0" * 28
_UPLOAD_CHUNK = 1024 * 1024
# Answers to a create that prove no batch was made (a timeout or a 5xx proves nothing).
_REFUSED = frozenset({400, 401, 403, 404, 413, 422, 429})

# Per-request error types as HTTP statuses, so OpenAI-shaped output lines stay meaningful.
_ERROR_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}
_UNRUN = {
    "canceled": (
        RequestStatus.CANCELLED,
        "batch_cancelled",
        "not executed: the batch was cancelled",
    ),
    "expired": (RequestStatus.EXPIRED, "batch_expired", "not executed before the batch expired"),
}


def wire_id(line: RequestLine, tag: str = _TAG_SHAPE) -> str:
    """The custom_id sent to Anthropic for `line` of the job tagged `tag` (see the module
    docstring; the default stands in for a job id when only the size matters)."""
    if line.seq >= 0 and JOB_ROW.match(f"{tag}-{line.seq}"):
        return f"{tag}-{line.seq}"
    if CUSTOM_ID.match(line.custom_id) and not line.custom_id.startswith(SEQ_PREFIX):
        return line.custom_id
    return f"{SEQ_PREFIX}{line.seq}"


class AnthropicProvider(HttpProvider):
    translator = TRANSLATOR

    def __init__(
        self,
        spec: ProviderSpec,
        api_key: str,
        base_url: str | None = None,
        *,
        timeout: float = 60.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(spec, api_key, base_url, timeout=timeout, transport=transport)
        # Tags whose last create was answered with a refusal (429, 4xx): no batch was made,
        # so `find` need not look for one. Lost after a restart, which is when it matters.
        self._refused: set[str] = set()

    @classmethod
    def auth_headers(cls, api_key: str) -> dict[str, str]:
        return {"x-api-key": api_key, "anthropic-version": API_VERSION}

    @classmethod
    def line_bytes(cls, line: RequestLine, encoded: bytes | None = None) -> int:
        """Bytes the request adds to the create body, as translated (not as written)."""
        entry = {"custom_id": wire_id(line), "params": cls.translator.to_native("", line.body)}
        return len(orjson.dumps(entry)) + 1

    # -- submit ------------------------------------------------------------------------

    async def submit(self, spec: JobSpec, lines: AsyncIterable[RequestLine]) -> ProviderJob:
        # The body is written piece by piece so a 256 MB batch never exists as Python objects.
        with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as body:
            body.write(b'{"requests":[')
            count = 0
            async for line in lines:
                if count:
                    body.write(b",")
                params = self.translator.to_native(spec.endpoint, line.body)
                entry = {"custom_id": wire_id(line, spec.tag), "params": params}
                body.write(orjson.dumps(entry))
                count += 1
            body.write(b"]}")
            size = body.tell()
            self.check_limits(count, size)
            body.seek(0)
            try:
                batch = await self._call(
                    "POST",
                    "v1/messages/batches",
                    content=_chunks(body),
                    headers={"content-type": "application/json", "content-length": str(size)},
                )
            except (TransientProviderError, PermanentProviderError) as exc:
                if exc.status_code in _REFUSED:
                    self._refused.add(spec.tag)
                raise
        self._refused.discard(spec.tag)
        return self._job(batch)

    def refused_at_create(self, error: TransientProviderError) -> str | None:
        # Anthropic caps the batch requests waiting in its processing queue, shared by
        # every model, and answers a create past it with a 429 `rate_limit_error`
        # (https://docs.anthropic.com/en/api/rate-limits#message-batches-api). A 429 that
        # speaks of the queue is that refusal; any other one is a plain rate limit.
        if error.status_code == 429 and "queue" in str(error).lower():
            return "queued_requests"
        return None

    # -- real time -----------------------------------------------------------------------

    async def realtime(self, endpoint: str, model: str, line: RequestLine) -> ResultRow:
        """`POST /v1/messages` with the params a batch line would carry; the answer is read
        as the batch result it would have been (a Message, or Anthropic's error)."""
        params = self.translator.to_native(endpoint, line.body)
        response = await self.post_realtime("v1/messages", params)
        try:
            answer: Any = response.json()
        except ValueError:
            answer = {"error": {"type": "api_error", "message": response.text[:500]}}
        if response.is_success:
            result: dict[str, Any] = {"type": "succeeded", "message": answer}
        else:
            envelope = {
                "type": "error",
                "error": (answer or {}).get("error") or {},
                "request_id": response.headers.get("request-id"),
            }
            result = {"type": "errored", "error": envelope}
        # The id is the caller's, set below; parse_row reads only the result.
        entry = orjson.dumps({"custom_id": "realtime", "result": result})
        row = parse_row(entry, created=int(time.time()))
        row.custom_id, row.seq, row.raw = line.custom_id, None, response.content
        if response.is_success:
            row.request_id = response.headers.get("request-id")
        return row

    # -- find, get, cancel -------------------------------------------------------------

    async def find(
        self, tag: str, *, since: float, request_count: int | None = None
    ) -> ProviderJob | None:
        """The oldest batch created since `since` with the job's request count: Anthropic
        keeps no tag, so the candidate is proven by its results (module docstring)."""
        if tag in self._refused or request_count is None:
            return None
        candidates: list[dict[str, Any]] = []
        after: str | None = None
        while True:
            params: dict[str, Any] = {"limit": 100}
            if after:
                params["after_id"] = after
            page = await self._call("GET", "v1/messages/batches", params=params)
            data = page.get("data") or []
            recent = [b for b in data if _timestamp(b.get("created_at")) >= since]
            candidates += [b for b in recent if _total(b) == request_count]
            # Newest first: stop once the page reaches batches created before the window.
            if not page.get("has_more") or len(recent) < len(data) or not data:
                break
            after = page.get("last_id") or data[-1]["id"]
        if not candidates:
            return None
        chosen = min(candidates, key=lambda b: _timestamp(b.get("created_at")))
        if len(candidates) > 1:
            log.warning(
                "job %s: adopting %s; other batches of %d requests were created meanwhile "
                "(%s); the results will show whether it is this job's",
                tag,
                chosen["id"],
                request_count,
                ", ".join(b["id"] for b in candidates if b is not chosen),
            )
        found = self._job(chosen)
        found.tag = tag
        return found

    async def get(self, job: ProviderJob) -> ProviderJob:
        return self._job(await self._call("GET", f"v1/messages/batches/{job.id}"))

    async def cancel(self, job: ProviderJob) -> ProviderJob:
        try:
            return self._job(await self._call("POST", f"v1/messages/batches/{job.id}/cancel"))
        except PermanentProviderError as exc:
            # A batch that ended meanwhile cannot be cancelled; its state is what we want.
            if exc.status_code in (400, 409):
                return await self.get(job)
            raise

    # -- results -----------------------------------------------------------------------

    async def results(self, job: ProviderJob) -> AsyncIterator[list[ResultRow]]:
        try:
            batch = await self._call("GET", f"v1/messages/batches/{job.id}")
        except PermanentProviderError as exc:
            if exc.status_code != 404:
                raise
            batch = {}  # deleted: nothing left to read
        url = batch.get("results_url")
        if not url:
            # Archived, deleted or never ended: the engine gives every request its job's
            # outcome (expired, cancelled or failed) instead of a row.
            log.warning("anthropic batch %s has no readable results; none ingested", job.id)
            return
        created = int(_timestamp(batch.get("ended_at") or batch.get("created_at")))
        async for lines in self.stream_lines(url):
            yield [parse_row(line, created=created, tag=job.tag) for line in lines]

    @staticmethod
    def _job(batch: dict[str, Any]) -> ProviderJob:
        counts = batch.get("request_counts") or {}
        native = str(batch.get("processing_status"))
        status = map_status(batch)
        errors = []
        if status is BatchStatus.FAILED:
            errors.append(f"results archived at {batch.get('archived_at')} and no longer readable")
        return ProviderJob(
            id=batch["id"],
            status=status,
            native_status=native,
            completed=int(counts.get("succeeded") or 0),
            failed=sum(int(counts.get(k) or 0) for k in ("errored", "expired")),
            cancelled=int(counts.get("canceled") or 0),
            total=_total(batch),
            errors=errors,
        )


async def _chunks(source: IO[bytes]) -> AsyncIterator[bytes]:
    while chunk := source.read(_UPLOAD_CHUNK):
        yield chunk


def _total(batch: dict[str, Any]) -> int:
    return sum(int(v or 0) for v in (batch.get("request_counts") or {}).values())


def _timestamp(value: Any) -> float:
    if not isinstance(value, str):
        return 0.0
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def map_status(batch: dict[str, Any]) -> BatchStatus:
    """Our status for a MessageBatch. `ended` says nothing about success, so the outcome
    comes from `cancel_initiated_at` and the counters; a batch whose requests all errored
    is `completed` (as on OpenAI: the errors are per request)."""
    native = batch.get("processing_status")
    if native == "canceling":
        return BatchStatus.CANCELLING
    if native != "ended":
        # in_progress, or an unknown new status: polling continues.
        return BatchStatus.IN_PROGRESS
    counts = batch.get("request_counts") or {}
    if batch.get("cancel_initiated_at"):
        return BatchStatus.CANCELLED
    if int(counts.get("expired") or 0) > 0:
        return BatchStatus.EXPIRED
    if batch.get("archived_at") and not batch.get("results_url"):
        return BatchStatus.FAILED
    return BatchStatus.COMPLETED


def parse_row(line: bytes, *, created: int = 0, tag: str | None = None) -> ResultRow:
    """One results line as a `ResultRow`; `<job>-<n>` and `ubseq-<n>` ids come back as
    `seq=n`. A row naming another job than `tag` raises `ForeignBatchError`."""
    row = orjson.loads(line)
    wire = str(row.get("custom_id"))
    custom_id: str | None = wire
    seq: int | None = None
    ours = JOB_ROW.match(wire)
    if ours:
        if tag is not None and ours[1] != tag:
            raise ForeignBatchError(
                f"anthropic: the results of this batch belong to job {ours[1]}, not {tag}"
            )
        custom_id, seq = None, int(ours[2])
    elif wire.startswith(SEQ_PREFIX) and wire[len(SEQ_PREFIX) :].isdigit():
        custom_id, seq = None, int(wire[len(SEQ_PREFIX) :])
    result = row.get("result") or {}
    kind = result.get("type")
    if kind == "succeeded":
        body, usage = TRANSLATOR.from_native(result.get("message") or {}, created=created)
        return ResultRow(
            custom_id=custom_id,
            seq=seq,
            status=RequestStatus.SUCCEEDED,
            status_code=200,
            body=body,
            usage=usage,
            raw=line,
        )
    if kind in _UNRUN:
        status, code, message_text = _UNRUN[kind]
        return ResultRow(
            custom_id=custom_id,
            seq=seq,
            status=status,
            error=ErrorInfo(code=code, message=message_text, retryable=retryable(code)),
            raw=line,
        )
    envelope = result.get("error") or {}
    error = envelope.get("error") or {}
    error_type = str(error.get("type") or kind or "unknown_error")
    http = _ERROR_STATUS.get(error_type, 500)
    message_text = str(error.get("message") or f"request {kind or 'failed'}")
    return ResultRow(
        custom_id=custom_id,
        seq=seq,
        status=RequestStatus.ERRORED,
        status_code=http,
        # The OpenAI error body, so the default output line reads like OpenAI's.
        body={"error": {"message": message_text, "type": error_type, "param": None, "code": None}},
        error=ErrorInfo(code=error_type, message=message_text, retryable=retryable(error_type)),
        request_id=envelope.get("request_id"),
        raw=line,
    )
