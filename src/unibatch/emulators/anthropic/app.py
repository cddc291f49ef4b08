"""A faithful emulator of the Anthropic Message Batches API, as a Starlette app.

Mount :attr:`AnthropicEmulator.app` at ``/anthropic`` and point the official SDK at it::

    emulator = AnthropicEmulator(EmulatorConfig(time_scale=0.05))
    # Mount("/anthropic", app=emulator.app)
    # anthropic.Anthropic(base_url="http://H:P/anthropic", api_key="test")

The create body is streamed to disk and its requests kept there as JSONL; results are
regenerated from that file at download time, so memory does not grow with the batch.
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from ..kit import (
    Clock,
    EmulatorConfig,
    Fault,
    Handler,
    ProviderEmulator,
    json_response,
    paced,
    rechunk,
)
from . import sync
from .errors import AnthropicError
from .ingest import store_requests
from .results import Counts, content_key, count, iter_rows, shuffled
from .wire import MAX_BYTES, MAX_REQUESTS, BatchRecord, new_id, page, render, rfc3339

_BATCH = "/v1/messages/batches/{batch_id}"


def _forget(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


class AnthropicEmulator(ProviderEmulator):
    """The Message Batches API with deterministic fake Messages.

    A batch is ``in_progress`` for ``in_progress_seconds`` (scaled), then ``ended``; a cancel
    makes it ``canceling`` for ``cancelling_seconds`` and ends it with canceled rows; a
    ``completion_window_seconds`` shorter than processing ends it with expired rows.
    ``failure_rate`` turns requests into errored rows; bad ``params`` become errored rows
    too (validation is deferred, as on the real API); custom_id problems are synchronous 400s.
    ``validating_seconds`` and ``finalizing_seconds`` do not apply (Anthropic has no such
    states).

    Example::

        emulator = AnthropicEmulator(EmulatorConfig(time_scale=0.05, failure_rate=0.1))
        emulator.inject_faults(3)  # the next three API calls answer 429
    """

    name = "anthropic"

    def __init__(self, config: EmulatorConfig | None = None, clock: Clock | None = None) -> None:
        super().__init__(config, clock)
        self.batches: dict[str, BatchRecord] = {}  # insertion order == creation order

    def api_routes(self) -> list[tuple[str, str, Handler]]:
        # The legacy beta form (`?beta=true`, `anthropic-beta` header) hits the same routes.
        return [
            ("POST", "/v1/messages", self._messages),
            ("POST", "/v1/messages/batches", self._create),
            ("GET", "/v1/messages/batches", self._list),
            ("GET", _BATCH, self._get),
            ("DELETE", _BATCH, self._delete),
            ("POST", _BATCH + "/cancel", self._cancel),
            ("GET", _BATCH + "/results", self._results),
        ]

    # -- wire conventions ---------------------------------------------------------------

    def authenticate(self, request: Request) -> None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if not request.headers.get("x-api-key") and not (
            scheme.lower() == "bearer" and token.strip()
        ):
            raise AnthropicError(401, "x-api-key header is required")
        if not request.headers.get("anthropic-version"):
            raise AnthropicError(400, "anthropic-version: header is required")

    def fault_error(self, fault: Fault) -> AnthropicError:
        headers = {}
        if fault.retry_after is not None and fault.status in (429, 529, 503):
            headers["retry-after"] = f"{fault.retry_after:g}"
        messages = {
            429: "Number of requests has exceeded your rate limit (emulated).",
            529: "Overloaded",
            500: "Internal server error",
        }
        return AnthropicError(fault.status, messages.get(fault.status, "Emulated fault."), headers)

    def not_found_error(self, request: Request, status: int) -> AnthropicError:
        return AnthropicError(404 if status == 404 else status, "Not Found")

    async def snapshot(self) -> dict[str, Any]:
        now = self.clock()
        return {
            "batches": [
                {
                    "id": b.id,
                    "status": b.status(now),
                    "request_count": b.total,
                    "created_at": rfc3339(b.created),
                    "cancel_initiated_at": rfc3339(b.cancel_at),
                }
                for b in self.batches.values()
            ],
            "files": 0,
        }

    # -- handlers -----------------------------------------------------------------------

    async def _messages(self, request: Request) -> Response:
        return await sync.messages(self, request)

    async def _create(self, request: Request) -> Response:
        batch_id = new_id("msgbatch_")
        raw = self.data_dir / f"{batch_id}.body.json"
        limit = self.config.max_file_bytes or MAX_BYTES
        size = 0
        try:
            with raw.open("wb") as sink:
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > limit:
                        break
                    sink.write(chunk)
        except BaseException:
            raw.unlink(missing_ok=True)  # the client went away mid-body
            raise
        if size > limit:
            raw.unlink(missing_ok=True)
            raise AnthropicError(413, "Request exceeds the maximum allowed number of bytes.")
        path = self.data_dir / f"{batch_id}.jsonl"
        max_requests = self.config.max_requests_per_batch or MAX_REQUESTS
        outcome = await asyncio.to_thread(store_requests, raw, path, max_requests)
        if isinstance(outcome, str):
            raise AnthropicError(400, outcome)
        flaky = await self.failing_attempts(path, content_key)
        now = self.clock()
        batch = BatchRecord.plan(batch_id, path, outcome, self.config, now, flaky)
        refused = await self.queue.enter(batch_id, path, "params", batch.ending().at, now)
        if refused is not None:
            # A full processing queue answers the create with a 429 `rate_limit_error`
            # (https://docs.anthropic.com/en/api/rate-limits#message-batches-api).
            path.unlink(missing_ok=True)
            raise AnthropicError(429, f"Message batch queue limit: {self.queue.refusal(refused)}.")
        self.batches[batch_id] = batch
        # Recorded before the answer is held back: a client killed in this window has
        # created a batch it never heard about.
        if self.config.create_delay > 0:
            await asyncio.sleep(self.config.create_delay)
        return _ok(await self._observe(batch, request))

    async def _get(self, request: Request) -> Response:
        return _ok(await self._observe(self._batch(request), request))

    async def _list(self, request: Request) -> Response:
        query = request.query_params
        try:
            limit = int(query.get("limit", "20"))
        except ValueError:
            limit = 0
        if not 1 <= limit <= 1000:
            raise AnthropicError(400, "limit: Input should be between 1 and 1000")
        newest_first = list(reversed(self.batches.values()))
        chosen, has_more = page(newest_first, query.get("after_id"), query.get("before_id"), limit)
        data = [await self._observe(b, request) for b in chosen]
        return _ok(
            {
                "data": data,
                "has_more": has_more,
                "first_id": data[0]["id"] if data else None,
                "last_id": data[-1]["id"] if data else None,
            }
        )

    async def _cancel(self, request: Request) -> Response:
        batch = self._batch(request)
        now = self.clock()
        status = batch.status(now)
        if status == "ended":
            msg = f"Message Batch {batch.id} has already ended and cannot be canceled."
            raise AnthropicError(400, msg)
        if status == "in_progress":
            batch.cancel_at = now
            self.queue.release(batch.id, batch.ending().at)
        return _ok(await self._observe(batch, request))

    async def _delete(self, request: Request) -> Response:
        batch = self._batch(request)
        if batch.status(self.clock()) != "ended":
            msg = "In progress batches cannot be deleted. Consider canceling the batch instead."
            raise AnthropicError(400, msg)
        del self.batches[batch.id]
        batch.path.unlink(missing_ok=True)
        return _ok({"id": batch.id, "type": "message_batch_deleted"})

    async def _results(self, request: Request) -> Response:
        batch = self._batch(request)
        if batch.status(self.clock()) != "ended":
            raise AnthropicError(404, f"Message Batch {batch.id} has no available results.")
        ending = batch.ending()
        rows = shuffled(iter_rows(batch.path, batch.ctx, ending.cut, ending.reason), batch.id)
        body = paced(rechunk(rows), lambda: self.config.download_chunk_delay)
        headers = {"request-id": new_id("req_")}
        return StreamingResponse(body, headers=headers, media_type="application/x-jsonl")

    # -- helpers ------------------------------------------------------------------------

    def _batch(self, request: Request) -> BatchRecord:
        batch_id = request.path_params["batch_id"]
        batch = self.batches.get(batch_id)
        if batch is None:
            raise AnthropicError(404, f"Message Batch {batch_id} not found.")
        return batch

    async def _observe(self, batch: BatchRecord, request: Request) -> dict[str, Any]:
        now = self.clock()
        counts: Counts | None = None
        if batch.status(now) == "ended":
            counts = await self._counts(batch)
        return render(batch, now, counts, _base_url(request))

    def _counts(self, batch: BatchRecord) -> asyncio.Future[Counts]:
        ending = batch.ending()
        key = (ending.cut, ending.reason)
        future = batch.counts.get(key)
        if future is None:
            job = asyncio.to_thread(count, batch.path, batch.ctx, ending.cut, ending.reason)
            future = asyncio.ensure_future(job)
            future.add_done_callback(_forget)
            batch.counts[key] = future
        return future


def _ok(body: dict[str, Any]) -> Response:
    # Every real response carries a `request-id`; clients log it in bug reports.
    return json_response(body, headers={"request-id": new_id("req_")})


def _base_url(request: Request) -> str:
    """Where the client reached us, mount prefix included, for the absolute `results_url`."""
    url = request.url
    return f"{url.scheme}://{url.netloc}{request.scope.get('root_path', '')}"
