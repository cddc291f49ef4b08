"""Anthropic Message Batches adapter: inline create, poll, stream results.

Ids: Anthropic requires `custom_id` to match :data:`CUSTOM_ID`. An id that already does (and
does not start with `ubseq-`) is sent unchanged; any other is sent as `ubseq-<seq>` and its
result comes back with `custom_id=None, seq=<seq>`, which the engine maps to the user's id.

Crash recovery (:meth:`AnthropicProvider.find`) is deliberately weak but safe: a Message
Batch has no metadata to carry our tag, and nothing identifying its contents is readable
before it ends, so no batch can be proven ours. `find` never adopts one; it logs the
batches created in the window so an operator can cancel a duplicate, and the engine
resubmits. The limit: a crash (or a lost response) between Anthropic accepting the create
and the engine recording it leaves one orphan batch that is billed and never ingested.
"""

from __future__ import annotations

import logging
import re
import tempfile
from collections.abc import AsyncIterable, AsyncIterator
from datetime import datetime
from typing import IO, Any

import httpx
import orjson

from unibatch.errors import PermanentProviderError, TransientProviderError
from unibatch.providers.anthropic.translate import TRANSLATOR
from unibatch.providers.base import JobSpec, ProviderJob, RequestLine, ResultRow
from unibatch.providers.http import SPOOL_BYTES, HttpProvider
from unibatch.providers.spec import ProviderSpec
from unibatch.types import BatchStatus, ErrorInfo, RequestStatus

log = logging.getLogger("unibatch.providers.anthropic")

API_VERSION = "2023-06-01"
CUSTOM_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
SEQ_PREFIX = "ubseq-"
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


def wire_id(line: RequestLine) -> str:
    """The custom_id sent to Anthropic for `line` (see the module docstring)."""
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
                body.write(orjson.dumps({"custom_id": wire_id(line), "params": params}))
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

    # -- find, get, cancel -------------------------------------------------------------

    async def find(self, tag: str, *, since: float) -> ProviderJob | None:
        """Never adopts a batch (none can be proven ours); logs the possible orphans."""
        if tag in self._refused:
            return None
        candidates: list[str] = []
        after: str | None = None
        while True:
            params: dict[str, Any] = {"limit": 100}
            if after:
                params["after_id"] = after
            page = await self._call("GET", "v1/messages/batches", params=params)
            data = page.get("data") or []
            recent = [b for b in data if _timestamp(b.get("created_at")) >= since]
            candidates += [f"{b['id']} ({_total(b)} requests)" for b in recent]
            # Newest first: stop once the page reaches batches created before the window.
            if not page.get("has_more") or len(recent) < len(data) or not data:
                break
            after = page.get("last_id") or data[-1]["id"]
        if candidates:
            log.warning(
                "job %s: resubmitting; Anthropic batches cannot be matched to a job, so one of "
                "these created since the first attempt may be a duplicate to cancel: %s",
                tag,
                ", ".join(candidates),
            )
        return None

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
            yield [parse_row(line, created=created) for line in lines]

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
            failed=sum(int(counts.get(k) or 0) for k in ("errored", "canceled", "expired")),
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


def parse_row(line: bytes, *, created: int = 0) -> ResultRow:
    """One results line as a `ResultRow`; `ubseq-<n>` ids come back as `seq=n`."""
    row = orjson.loads(line)
    wire = str(row.get("custom_id"))
    custom_id: str | None = wire
    seq: int | None = None
    if wire.startswith(SEQ_PREFIX) and wire[len(SEQ_PREFIX) :].isdigit():
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
            error=ErrorInfo(code=code, message=message_text, retryable=True),
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
        error=ErrorInfo(
            code=error_type, message=message_text, retryable=http in (429, 500, 504, 529)
        ),
        request_id=envelope.get("request_id"),
        raw=line,
    )
