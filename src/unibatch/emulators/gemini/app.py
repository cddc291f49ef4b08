"""A faithful emulator of the Gemini Developer API batch mode, as a Starlette app.

Mount :attr:`GeminiEmulator.app` at ``/gemini`` and point the official SDK at it::

    client = genai.Client(api_key="test", http_options=types.HttpOptions(base_url=".../gemini"))

It answers API versions ``v1`` (what google-genai 3.x sends) and ``v1beta`` (the REST docs):
``models/{model}:batchGenerateContent`` and ``:asyncBatchEmbedContent`` with inline or file
input, ``batches`` get/list/cancel/delete wrapped in Operations, the resumable Files API and
``files/{id}:download?alt=media``. A batch moves PENDING → RUNNING → SUCCEEDED with the clock
(the shared timeline of the OpenAI emulator: validating ≙ PENDING); it expires at twice
``completion_window_seconds`` (24 h target, 48 h expiry) with no results; a cancel ends it
at the next poll, keeping the results of requests already done.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from ..kit import (
    Clock,
    EmulatorConfig,
    Fault,
    Handler,
    ProviderEmulator,
    json_response,
    rechunk,
)
from ..kit.attempts import request_keys
from ..kit.timeline import Phase, Schedule, phase_at
from . import sync
from .errors import GeminiError
from .fakes import fails, iter_results, request_key
from .files import VERSIONS, FilesAPI
from .validate import InvalidInput, model_ok, scan_file, write_inline
from .wire import (
    MAX_INLINE_BYTES,
    BatchRecord,
    FileRecord,
    new_id,
    page,
    pick,
    render_operation,
)

MAX_REQUESTS = 1_000_000  # no documented cap; the byte limits bind first


class GeminiEmulator(ProviderEmulator):
    """The Gemini batch API (batches, files) with deterministic fake results.

    Example::

        emulator = GeminiEmulator(EmulatorConfig(time_scale=0.05, failure_rate=0.1))
        emulator.inject_faults(3)  # the next three API calls answer 429 RESOURCE_EXHAUSTED
    """

    name = "gemini"

    def __init__(self, config: EmulatorConfig | None = None, clock: Clock | None = None) -> None:
        super().__init__(config, clock)
        self.batches: dict[str, BatchRecord] = {}  # insertion order == creation order
        self.files = FilesAPI(self.data_dir, self.config, self.clock, self._responses_bytes)

    def api_routes(self) -> list[tuple[str, str, Handler]]:
        routes: list[tuple[str, str, Handler]] = []
        for v in VERSIONS:
            routes += [
                *[
                    ("POST", f"/{v}/models/{{model}}:{verb}", sync.route(self, verb))
                    for verb in ("generateContent", "embedContent", "batchEmbedContents")
                ],
                ("POST", f"/{v}/models/{{model}}:batchGenerateContent", self._create_generate),
                ("POST", f"/{v}/models/{{model}}:asyncBatchEmbedContent", self._create_embed),
                ("GET", f"/{v}/batches", self._list_batches),
                ("POST", f"/{v}/batches/{{bid}}:cancel", self._cancel_batch),
                ("GET", f"/{v}/batches/{{bid}}", self._get_batch),
                ("DELETE", f"/{v}/batches/{{bid}}", self._delete_batch),
                ("POST", f"/upload/{v}/files", self.files.upload),
                ("GET", f"/{v}/files", self.files.list_files),
                ("GET", f"/{v}/files/{{fid}}:download", self.files.download),
                ("GET", f"/download/{v}/files/{{fid}}:download", self.files.download),
                ("GET", f"/{v}/files/{{fid}}", self.files.get),
                ("DELETE", f"/{v}/files/{{fid}}", self.files.delete),
            ]
        return routes

    # -- wire conventions ---------------------------------------------------------------

    def authenticate(self, request: Request) -> None:
        if self.files.authorised_upload(request):
            return
        key = request.headers.get("x-goog-api-key") or request.query_params.get("key")
        if not key:
            msg = (
                "Method doesn't allow unregistered callers (callers without established "
                "identity). Please use API Key or other form of API consumer identity to call "
                "this API."
            )
            raise GeminiError(403, msg)
        if key.startswith("invalid"):
            info = {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "API_KEY_INVALID",
                "domain": "googleapis.com",
            }
            raise GeminiError(
                400, "API key not valid. Please pass a valid API key.", details=[info]
            )

    def fault_error(self, fault: Fault) -> GeminiError:
        # Google sends no Retry-After header: the delay travels as a RetryInfo detail.
        details = []
        if fault.retry_after is not None and fault.status in (429, 503):
            details.append(
                {
                    "@type": "type.googleapis.com/google.rpc.RetryInfo",
                    "retryDelay": f"{fault.retry_after:g}s",
                }
            )
        messages = {
            429: "Resource has been exhausted (e.g. check quota).",
            500: "Internal error encountered.",
            503: "The model is overloaded. Please try again later.",
        }
        message = messages.get(fault.status, "Emulated fault.")
        return GeminiError(fault.status, message, details=details)

    def not_found_error(self, request: Request, status: int) -> GeminiError:
        return GeminiError(status, f"Unknown method {request.method} {request.url.path}.")

    async def snapshot(self) -> dict[str, Any]:
        batches = []
        for batch in list(self.batches.values()):
            op = await self._observe(batch)
            batches.append(
                {
                    "id": batch.name,
                    "status": op["metadata"]["state"],
                    "display_name": batch.display_name,
                    "model": batch.model,
                    "request_count": batch.total,
                    "inline": batch.inline,
                }
            )
        return {"batches": batches, "files": len(self.files.files)}

    # -- batches ------------------------------------------------------------------------

    async def _create_generate(self, request: Request) -> Response:
        return await self._create(request, embed=False)

    async def _create_embed(self, request: Request) -> Response:
        return await self._create(request, embed=True)

    async def _create(self, request: Request, *, embed: bool) -> Response:
        raw = await request.body()
        if len(raw) > MAX_INLINE_BYTES:
            raise GeminiError(400, "Request payload size exceeds the limit: 20971520 bytes.")
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise GeminiError(400, "Invalid JSON payload received.") from None
        spec = body.get("batch") if isinstance(body, dict) else None
        if not isinstance(spec, dict):
            raise GeminiError(400, "Missing required field 'batch'.")
        model = f"models/{request.path_params['model']}"
        if not model_ok(model, embed):
            verb = "asyncBatchEmbedContent" if embed else "batchGenerateContent"
            msg = f"{model} is not found for API version v1beta, or is not supported for {verb}."
            raise GeminiError(404, msg)
        config = pick(spec, "inputConfig", "input_config")
        if not isinstance(config, dict):
            raise GeminiError(400, "Missing required field 'batch.input_config'.")
        name = f"batches/{new_id()}"
        path = self.data_dir / f"{name.replace('/', '-')}.jsonl"
        limit = self.config.max_requests_per_batch or MAX_REQUESTS
        try:
            file_name = pick(config, "fileName", "file_name")
            if file_name:
                source = self.files.files.get(str(file_name))
                if source is None or source.path is None:
                    raise GeminiError(400, f"File {file_name} not found or not readable.")
                total = await asyncio.to_thread(_scan_into, source.path, path, embed, limit)
                input_config: dict[str, Any] = {"fileName": file_name}
            else:
                entries = (pick(config, "requests") or {}).get("requests")
                total = await asyncio.to_thread(write_inline, entries, path, embed, limit)
                input_config = {"requests": {"requests": []}}  # the API does not echo them
        except InvalidInput as exc:
            path.unlink(missing_ok=True)
            raise GeminiError(400, str(exc)) from None
        schedule = Schedule.plan(self.config, self.clock())
        # Gemini aims at 24 h and expires a batch at 48 h; a cancel ends it at the next poll.
        window = self.config.scaled(2 * self.config.completion_window_seconds)
        schedule = dataclasses.replace(schedule, deadline=schedule.created + window, drain=0.0)
        seed, rate = self.config.seed, self.config.failure_rate
        flaky = await self._flaky(path)
        batch = BatchRecord(
            name=name,
            model=model,
            display_name=str(pick(spec, "displayName", "display_name") or ""),
            input_config=input_config,
            inline=not file_name,
            embed=embed,
            schedule=schedule,
            total=total,
            failing=[i for i in range(total) if i in flaky or fails(seed, rate, name, i)],
            input_path=path,
            seed=seed,
            failure_rate=rate,
            flaky=flaky,
        )
        until = min(schedule.finalizing_end, schedule.deadline)
        refused = await self.queue.enter(name, path, None, until, schedule.created)
        if refused is not None:
            # Batch mode's limits (concurrent jobs, enqueued tokens per model) answer a
            # create past them with 429 RESOURCE_EXHAUSTED, as every Gemini rate limit
            # (https://ai.google.dev/gemini-api/docs/rate-limits).
            path.unlink(missing_ok=True)
            raise GeminiError(429, f"Batch mode quota exceeded: {self.queue.refusal(refused)}.")
        priority = spec.get("priority")
        if priority is not None:
            batch.extra["priority"] = str(priority)
        self.batches[name] = batch
        # Recorded before the answer is held back: a client killed in this window has
        # created a batch it never heard about, which crash-safe submission must handle.
        if self.config.create_delay > 0:
            await asyncio.sleep(self.config.create_delay)
        return json_response(await self._observe(batch))

    async def _flaky(self, path: Path) -> frozenset[int]:
        """Indices of the stored requests that fail on this attempt of theirs."""
        failing = await self.failing_attempts(path, request_key)
        if not failing:
            return frozenset()
        keys = await asyncio.to_thread(lambda: list(request_keys(path, request_key)))
        return frozenset(i for i, key in enumerate(keys) if key in failing)

    def _batch(self, request: Request) -> BatchRecord:
        name = f"batches/{request.path_params['bid']}"
        batch = self.batches.get(name)
        if batch is None:
            raise GeminiError(404, f"Batch {name} not found.")
        return batch

    async def _get_batch(self, request: Request) -> Response:
        return json_response(await self._observe(self._batch(request)))

    async def _list_batches(self, request: Request) -> Response:
        newest_first = list(reversed(self.batches.values()))
        try:
            chosen, token = page(request, newest_first)
        except ValueError as exc:
            raise GeminiError(400, str(exc)) from None
        body: dict[str, Any] = {}
        if chosen:  # proto3 JSON leaves empty lists out
            body["operations"] = [await self._observe(b) for b in chosen]
        if token:
            body["nextPageToken"] = token
        return json_response(body)

    async def _cancel_batch(self, request: Request) -> Response:
        batch = self._batch(request)
        phase = self._phase(batch)
        if phase.terminal:
            raise GeminiError(400, f"Batch {batch.name} is already in a terminal state.")
        if batch.cancelling_at is None:
            batch.cancelling_at = self.clock()
            self.queue.release(batch.name, batch.cancelling_at)
        return json_response({})

    async def _delete_batch(self, request: Request) -> Response:
        batch = self._batch(request)
        del self.batches[batch.name]
        # Deleting a batch makes its responses file unreadable (capture).
        if batch.responses_file is not None:
            self.files.files.pop(batch.responses_file, None)
        return json_response({})

    # -- lifecycle ----------------------------------------------------------------------

    def _phase(self, batch: BatchRecord) -> Phase:
        return phase_at(batch.schedule, self.clock(), batch.total, True, batch.cancelling_at)

    async def _observe(self, batch: BatchRecord) -> dict[str, Any]:
        phase = self._phase(batch)
        output: dict[str, Any] | None = None
        if phase.terminal and phase.status != "expired" and phase.done > 0:
            if batch.inline:
                entries = await asyncio.to_thread(lambda: list(self._results(batch, phase.done)))
                output = {"inlinedResponses": {"inlinedResponses": entries}}
            else:
                output = {"responsesFile": await self._publish(batch, phase.done)}
        return render_operation(batch, phase, output)

    def _results(self, batch: BatchRecord, cut: int) -> Iterator[dict[str, Any]]:
        return iter_results(
            batch.input_path,
            batch=batch.name,
            model=batch.model,
            cut=cut,
            embed=batch.embed,
            file_rows=not batch.inline,
            seed=batch.seed,
            rate=batch.failure_rate,
            flaky=batch.flaky,
        )

    def _rows(self, batch: BatchRecord, cut: int) -> Iterator[bytes]:
        return (orjson.dumps(entry) + b"\n" for entry in self._results(batch, cut))

    def _responses_bytes(self, record: FileRecord) -> Iterator[bytes] | None:
        batch = self.batches.get(str(record.batch))
        if batch is None:
            return None
        return rechunk(self._rows(batch, self._phase(batch).done))

    async def _publish(self, batch: BatchRecord, cut: int) -> str:
        if batch.responses_file is None:
            name = f"files/batch-{batch.name.removeprefix('batches/')}"
            size = await asyncio.to_thread(lambda: sum(len(r) for r in self._rows(batch, cut)))
            if batch.responses_file is None:  # another poll may have published meanwhile
                self.files.files[name] = FileRecord(
                    name, "", "application/jsonl", size, self.clock(), batch=batch.name
                )
                batch.responses_file = name
        return batch.responses_file


def _scan_into(source: Path, target: Path, embed: bool, limit: int) -> int:
    with target.open("wb") as out:
        return scan_file(source, out, embed=embed, max_requests=limit)
