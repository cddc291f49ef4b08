"""Gemini Developer API batch mode adapter.

Requests travel inline in the create call while it stays under 20 MB, else as a JSONL file
sent through the resumable Files API. Each request is keyed `ubseq-<seq>` (key rules are
undocumented, so the user's custom_id never reaches the wire) and the engine maps results
back by `seq`. The job's tag is the batch `displayName`, which `find` matches after a crash.

Statuses: `BATCH_STATE_PENDING` (and the SDK spelling `JOB_STATE_PENDING`) reads as
`validating`, `RUNNING` as `in_progress`, and the terminal states as theirs. An expired
batch has no results; a cancelled one keeps what finished.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import AsyncIterable, AsyncIterator, Mapping
from typing import IO, Any

import httpx
import orjson

from unibatch.errors import PermanentProviderError, TransientProviderError
from unibatch.providers.base import JobSpec, ProviderJob, RequestLine, ResultRow
from unibatch.providers.gemini.classify import finish_retryable, retryable
from unibatch.providers.gemini.translate import TRANSLATOR, answered
from unibatch.providers.http import SPOOL_BYTES, HttpProvider
from unibatch.providers.spec import ProviderSpec
from unibatch.providers.translate import EMBEDDINGS
from unibatch.types import BatchStatus, ErrorInfo, RequestStatus

# Google's REST reference documents v1beta, where batch mode first shipped; google-genai
# 3.x sends v1. Both work; UNIBATCH_GEMINI_API_VERSION picks.
DEFAULT_API_VERSION = "v1beta"
API_VERSION_ENV = "UNIBATCH_GEMINI_API_VERSION"
INLINE_LIMIT = 20 * 1024 * 1024
KEY_PREFIX = "ubseq-"
_CHUNK = 1024 * 1024
_STATES = {
    "PENDING": BatchStatus.VALIDATING,
    "RUNNING": BatchStatus.IN_PROGRESS,
    "SUCCEEDED": BatchStatus.COMPLETED,
    "FAILED": BatchStatus.FAILED,
    "CANCELLED": BatchStatus.CANCELLED,
    "EXPIRED": BatchStatus.EXPIRED,
}
# google.rpc.Code -> HTTP status, for result entries that carry a gRPC code.
_GRPC_HTTP = {
    1: 499, 2: 500, 3: 400, 4: 504, 5: 404, 6: 409, 7: 403, 8: 429,
    9: 400, 10: 409, 11: 400, 12: 501, 13: 500, 14: 503, 15: 500, 16: 401,
}  # fmt: skip
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)s$")


class GeminiProvider(HttpProvider):
    translator = TRANSLATOR

    def __init__(
        self,
        spec: ProviderSpec,
        api_key: str,
        base_url: str | None = None,
        *,
        api_version: str = DEFAULT_API_VERSION,
        timeout: float = 60.0,
        inline_limit: int = INLINE_LIMIT,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(spec, api_key, base_url, timeout=timeout, transport=transport)
        self.api_version = api_version
        # Create bodies at or above this size go through the Files API instead.
        self.inline_limit = inline_limit

    @classmethod
    def auth_headers(cls, api_key: str) -> dict[str, str]:
        return {"x-goog-api-key": api_key}

    def client_options(self) -> dict[str, Any]:
        return {"event_hooks": {"response": [_retry_info_as_header]}}

    @classmethod
    def env_options(cls, env: Mapping[str, str]) -> dict[str, Any]:
        return {"api_version": env.get(API_VERSION_ENV) or DEFAULT_API_VERSION}

    async def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = await self._send(method, f"{self.api_version}/{path}", **kwargs)
        return response.json() if response.content else {}

    # -- submit -----------------------------------------------------------------------

    def refused_at_create(self, error: TransientProviderError) -> str | None:
        # Batch mode limits concurrent batch jobs and enqueued tokens per model
        # (https://ai.google.dev/gemini-api/docs/rate-limits); a create past one answers
        # 429 RESOURCE_EXHAUSTED, as every Gemini quota does. Which limit is read from the
        # message; a 429 that names neither is a plain rate limit.
        if error.status_code != 429:
            return None
        text = str(error).lower()
        if "concurrent" in text:
            return "concurrent_batches"
        if "enqueued" in text:
            return "enqueued_tokens"
        return None

    async def submit(self, spec: JobSpec, lines: AsyncIterable[RequestLine]) -> ProviderJob:
        embed = spec.endpoint == EMBEDDINGS
        with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as spool:
            count = 0
            async for line in lines:
                count += 1
                request = self.translator.to_native(spec.endpoint, line.body)
                # A line without a seq (not from the engine) keeps its custom_id as key.
                key = f"{KEY_PREFIX}{line.seq}" if line.seq >= 0 else line.custom_id
                row = {"key": key, "request": request}
                spool.write(orjson.dumps(row, option=orjson.OPT_APPEND_NEWLINE))
            size = spool.tell()
            self.check_limits(count, size)
            spool.seek(0)
            # Inline entries cost a few bytes more than file rows (the metadata wrapper).
            if size + 40 * count + 1024 < self.inline_limit:
                config: dict[str, Any] = {"requests": {"requests": _inline_entries(spool)}}
            else:
                config = {"fileName": await self._upload(spool, size, spec.tag)}
        verb = "asyncBatchEmbedContent" if embed else "batchGenerateContent"
        model = spec.model.removeprefix("models/")
        body = orjson.dumps({"batch": {"displayName": spec.tag, "inputConfig": config}})
        path = f"models/{model}:{verb}"
        headers = {"content-type": "application/json"}
        return self._job(await self._call("POST", path, content=body, headers=headers))

    # -- real time --------------------------------------------------------------------

    async def realtime(self, endpoint: str, model: str, line: RequestLine) -> ResultRow:
        """`models/{model}:generateContent` (or `:embedContent`) with the request a batch
        line would carry; the answer is read as that line's result entry would be."""
        request = self.translator.to_native(endpoint, line.body)
        verb = "embedContent" if endpoint == EMBEDDINGS else "generateContent"
        path = f"{self.api_version}/models/{model.removeprefix('models/')}:{verb}"
        response = await self.post_realtime(path, request)
        try:
            answer: Any = response.json()
        except ValueError:
            answer = {"error": {"code": response.status_code, "message": response.text[:500]}}
        if response.is_success:
            entry: dict[str, Any] = {"response": answer}
        else:
            error = (answer or {}).get("error") or {}
            entry = {"error": {"code": response.status_code, **error}}
        row = parse_entry(entry, None, model, response.content)
        row.custom_id, row.seq = line.custom_id, None
        return row

    async def _upload(self, spool: IO[bytes], size: int, tag: str) -> str:
        start = await self._send(
            "POST",
            f"upload/{self.api_version}/files",
            headers={
                "x-goog-upload-protocol": "resumable",
                "x-goog-upload-command": "start",
                "x-goog-upload-header-content-length": str(size),
                "x-goog-upload-header-content-type": "application/jsonl",
            },
            json={"file": {"displayName": f"{tag}.jsonl", "mimeType": "application/jsonl"}},
        )
        url = start.headers.get("x-goog-upload-url")
        if not url:
            raise PermanentProviderError("gemini: the upload start returned no x-goog-upload-url")

        async def chunks() -> AsyncIterator[bytes]:
            while chunk := spool.read(_CHUNK):
                yield chunk

        finished = await self._send(
            "POST",
            url,
            headers={
                "x-goog-upload-command": "upload, finalize",
                "x-goog-upload-offset": "0",
                # Known length: without it httpx would send the stream chunked.
                "content-length": str(size),
            },
            content=chunks(),
        )
        if finished.headers.get("x-goog-upload-status") != "final":
            raise TransientProviderError("gemini: the upload did not finalize")
        return str(finished.json()["file"]["name"])

    # -- status -----------------------------------------------------------------------

    async def find(
        self, tag: str, *, since: float, request_count: int | None = None
    ) -> ProviderJob | None:
        # The list order is undocumented, so every page is read: recovery is rare and a
        # missed batch would be sent twice.
        token: str | None = None
        while True:
            params: dict[str, Any] = {"pageSize": 100}
            if token:
                params["pageToken"] = token
            page = await self._call("GET", "batches", params=params)
            for operation in page.get("operations") or []:
                if (operation.get("metadata") or {}).get("displayName") == tag:
                    return self._job(operation)
            token = page.get("nextPageToken")
            if not token:
                return None

    async def get(self, job: ProviderJob) -> ProviderJob:
        found = self._job(await self._call("GET", job.id))
        if job.status is BatchStatus.CANCELLING and not found.status.terminal:
            found.status = BatchStatus.CANCELLING  # the API has no transitional state
        return found

    async def cancel(self, job: ProviderJob) -> ProviderJob:
        try:
            await self._call("POST", f"{job.id}:cancel", json={})
        except PermanentProviderError as exc:
            # Cancelling a batch that has just ended is refused; its state is what we want.
            if exc.status_code not in (400, 409):
                raise
        found = self._job(await self._call("GET", job.id))
        if not found.status.terminal:
            found.status = BatchStatus.CANCELLING
        return found

    @staticmethod
    def _job(operation: dict[str, Any]) -> ProviderJob:
        meta = operation.get("metadata") or {}
        stats = meta.get("batchStats") or {}
        native = str(meta.get("state") or "BATCH_STATE_UNSPECIFIED")
        output = _output(operation)
        error = operation.get("error")
        return ProviderJob(
            id=str(operation.get("name") or meta["name"]),
            status=map_status(native),
            native_status=native,
            completed=int(stats.get("successfulRequestCount") or 0),
            failed=int(stats.get("failedRequestCount") or 0),
            total=int(stats.get("requestCount") or 0),
            input_file_id=(meta.get("inputConfig") or {}).get("fileName"),
            output_file_id=output.get("responsesFile"),
            errors=[f"{error.get('code')}: {error.get('message')}"] if error else [],
            tag=meta.get("displayName"),
        )

    # -- results ----------------------------------------------------------------------

    async def results(self, job: ProviderJob) -> AsyncIterator[list[ResultRow]]:
        model = ""
        file_name = job.output_file_id
        if not file_name:
            operation = await self._call("GET", job.id)
            model = str((operation.get("metadata") or {}).get("model") or "")
            output = _output(operation)
            file_name = output.get("responsesFile")
            if not file_name:
                entries = (output.get("inlinedResponses") or {}).get("inlinedResponses") or []
                yield [
                    parse_entry(
                        entry, (entry.get("metadata") or {}).get("key"), model, orjson.dumps(entry)
                    )
                    for entry in entries
                ]
                return
        path = f"{self.api_version}/{file_name}:download"
        async for lines in self.stream_lines(path, {"alt": "media"}):
            yield [_file_entry(line, model) for line in lines]


def map_status(native: str) -> BatchStatus:
    """`BATCH_STATE_X` (wire) or `JOB_STATE_X` (SDK) in our vocabulary."""
    bare = native.removeprefix("BATCH_STATE_").removeprefix("JOB_STATE_")
    # An unknown new state is treated as still running: polling continues.
    return _STATES.get(bare, BatchStatus.IN_PROGRESS)


def _output(operation: dict[str, Any]) -> dict[str, Any]:
    # The SDK reads metadata.output; the REST guide reads the Operation's response.
    meta_output = (operation.get("metadata") or {}).get("output")
    return meta_output or operation.get("response") or {}


def _inline_entries(spool: IO[bytes]) -> list[dict[str, Any]]:
    entries = []
    for raw in spool:
        row = orjson.loads(raw)
        entries.append({"request": row["request"], "metadata": {"key": row["key"]}})
    return entries


def _file_entry(line: bytes, model: str) -> ResultRow:
    entry = orjson.loads(line)
    return parse_entry(entry, entry.get("key"), model, line)


def parse_entry(entry: dict[str, Any], key: Any, model: str, raw: bytes) -> ResultRow:
    """One inline response or responses-file line as a `ResultRow`."""
    custom_id, seq = _identify(key)
    response = entry.get("response")
    if isinstance(response, dict) and "error" not in entry:
        body, usage = TRANSLATOR.from_native(response, model=model)
        unfinished = _unfinished(response)
        if unfinished is not None:
            # Billed, but not an answer: the row errs (keeping its usage) so it is not
            # mistaken for a completion, and a retry can ask again.
            return ResultRow(
                custom_id=custom_id,
                seq=seq,
                status=RequestStatus.ERRORED,
                error=ErrorInfo(
                    code=unfinished.lower(),
                    message=f"Gemini stopped without an answer (finishReason {unfinished})",
                    retryable=finish_retryable(unfinished),
                ),
                usage=usage,
                request_id=response.get("responseId"),
                raw=raw,
            )
        return ResultRow(
            custom_id=custom_id,
            seq=seq,
            status=RequestStatus.SUCCEEDED,
            status_code=200,
            body=body,
            usage=usage,
            request_id=response.get("responseId"),
            raw=raw,
        )
    # Google's batch guide does not say whether a failed line names its google.rpc.Status
    # `error` or `status`; both are read.
    error = entry.get("error") or entry.get("status") or {}
    code = int(error.get("code") or 0)
    http = code if code >= 100 else _GRPC_HTTP.get(code, 500)
    status = error.get("status")
    return ResultRow(
        custom_id=custom_id,
        seq=seq,
        status=RequestStatus.ERRORED,
        status_code=http,
        error=ErrorInfo(
            code=str(status or f"http_{http}"),
            message=str(error.get("message") or f"HTTP {http}"),
            retryable=retryable(code or http, status if isinstance(status, str) else None),
        ),
        raw=raw,
    )


def _unfinished(response: dict[str, Any]) -> str | None:
    """The finish reason when no candidate ended with an answer or a refusal. Gemini's
    FinishReason enum (google-genai `types.FinishReason`) has many values that are neither
    (MALFORMED_FUNCTION_CALL, TOO_MANY_TOOL_CALLS, OTHER, ...), and grows: a reason we do
    not know is not taken for an answer."""
    reasons = [c.get("finishReason") for c in response.get("candidates") or []]
    broken = [str(r) for r in reasons if r is not None and not answered(str(r))]
    return broken[0] if reasons and len(broken) == len(reasons) else None


def _identify(key: Any) -> tuple[str | None, int | None]:
    text = str(key) if key is not None else ""
    digits = text.removeprefix(KEY_PREFIX)
    if text.startswith(KEY_PREFIX) and digits.isdigit():
        return None, int(digits)
    # A key we did not write (a batch adopted from elsewhere) is taken as the custom_id.
    return (text or None), None


async def _retry_info_as_header(response: httpx.Response) -> None:
    """Google puts the retry delay in a RetryInfo detail, not a header: surface it as
    `retry-after` so the shared error mapping honours it."""
    if response.status_code not in (429, 503) or "retry-after" in response.headers:
        return
    await response.aread()
    try:
        details = response.json().get("error", {}).get("details") or []
    except (ValueError, AttributeError):
        return
    for detail in details:
        if str(detail.get("@type", "")).endswith("google.rpc.RetryInfo"):
            found = _DURATION.match(str(detail.get("retryDelay", "")))
            if found:
                response.headers["retry-after"] = found[1]
