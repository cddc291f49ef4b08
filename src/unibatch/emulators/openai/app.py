"""A faithful emulator of the OpenAI Files + Batch API, as a Starlette app.

Mount :attr:`OpenAIEmulator.app` at ``/openai/v1`` and point the official SDK at it::

    emulator = OpenAIEmulator(EmulatorConfig(time_scale=0.05))
    # Mount("/openai/v1", app=emulator.app); OpenAI(base_url="http://H:P/openai/v1", ...)

Uploads live on disk; result files are regenerated from the input at download time, so
memory stays flat however many requests go through.
"""

from __future__ import annotations

import asyncio
import math
import secrets
import shutil
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, BinaryIO, ClassVar

import orjson
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from unibatch.providers.openai.rules import RULES
from unibatch.providers.rules import RuleTable

from ..kit import (
    Clock,
    EmulatedError,
    EmulatorConfig,
    Fault,
    Handler,
    ProviderEmulator,
    json_response,
    paced,
    read_chunks,
    rechunk,
)
from ..kit.queue import ENQUEUED_TOKENS
from ..kit.timeline import Phase, Schedule, phase_at
from .errors import OpenAIError, missing_param
from .fakes import FAKERS, Faker
from .results import RowContext, Summary, iter_file_rows, summarize
from .sync import SyncRoutes
from .validate import LineCheck, LineError, Scan, check_create, check_openai_line, scan_input
from .wire import (
    FILE_TTL,
    MAX_FILE_BYTES,
    MAX_REQUESTS,
    UPLOAD_PURPOSES,
    BatchRecord,
    FileRecord,
    cursor_page,
    list_envelope,
    new_file_id,
    parse_limit,
    plus,
    render_batch,
)


def _forget(future: asyncio.Future[Any]) -> None:
    # Retrieve the exception of a speculative job nobody awaited (e.g. after close()).
    if not future.cancelled():
        future.exception()


class OpenAIEmulator(ProviderEmulator):
    """The OpenAI Batch API (files and batches) with deterministic fake results.

    Batch status moves with the clock (validating → in_progress → finalizing → completed)
    following the knobs of :class:`EmulatorConfig`; validation failures, expiry, cancel,
    per-request failures and HTTP faults behave as OpenAI documents them. Every call is
    counted in ``requests_seen`` under ``"METHOD /route/{template}"``.

    Example::

        emulator = OpenAIEmulator(EmulatorConfig(time_scale=0.05, failure_rate=0.1))
        emulator.inject_faults(3)  # the next three API calls answer 429
        app = Starlette(routes=[Mount("/openai/v1", app=emulator.app)])
    """

    name = "openai"
    # Requests per input file before validation fails it with `too_many_tasks`.
    max_requests = MAX_REQUESTS
    # What an OpenAI-shaped provider (Groq) changes: the path its routes start with under
    # the mount, its rules per model, its synchronous endpoints and upload purposes.
    api_root: ClassVar[str] = ""
    rules: ClassVar[RuleTable] = RULES
    sync_endpoints: ClassVar[tuple[str, ...]] = SyncRoutes.ENDPOINTS
    upload_purposes: ClassVar[frozenset[str]] = UPLOAD_PURPOSES
    # Whether result files carry a row for each request a batch never ran (OpenAI's
    # `batch_expired` / `batch_cancelled` rows), and how one input line is checked.
    unrun_rows: ClassVar[bool] = True
    # The purpose an input file must have been uploaded with.
    batch_purpose: ClassVar[str] = "batch"
    fakers: ClassVar[Mapping[str, Faker]] = FAKERS

    def __init__(self, config: EmulatorConfig | None = None, clock: Clock | None = None) -> None:
        super().__init__(config, clock)
        self.files: dict[str, FileRecord] = {}
        self.batches: dict[str, BatchRecord] = {}  # insertion order == creation order
        self._written: dict[str, asyncio.Future[Path]] = {}
        self.sync = SyncRoutes(self, self.sync_endpoints, self.rules, self.api_root, self.fakers)

    def api_routes(self) -> list[tuple[str, str, Handler]]:
        root = self.api_root
        return [
            *self.sync.routes(),
            ("POST", f"{root}/files", self._upload),
            ("GET", f"{root}/files", self._list_files),
            ("GET", f"{root}/files/{{file_id}}", self._get_file),
            ("GET", f"{root}/files/{{file_id}}/content", self._file_content),
            ("DELETE", f"{root}/files/{{file_id}}", self._delete_file),
            ("POST", f"{root}/batches", self._create_batch),
            ("GET", f"{root}/batches", self._list_batches),
            ("GET", f"{root}/batches/{{batch_id}}", self._get_batch),
            ("POST", f"{root}/batches/{{batch_id}}/cancel", self._cancel_batch),
        ]

    # -- wire conventions ---------------------------------------------------------------

    def authenticate(self, request: Request) -> None:
        scheme, _, key = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and key.strip():
            return
        msg = (
            "You didn't provide an API key. You need to provide your API key in an "
            "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
        )
        raise OpenAIError(401, msg, code="invalid_api_key")

    def fault_error(self, fault: Fault) -> EmulatedError:
        headers = {}
        if fault.retry_after is not None and fault.status in (429, 503):
            headers["retry-after"] = f"{fault.retry_after:g}"
        if fault.status == 429:
            msg = "Rate limit reached for requests (emulated). Please try again later."
            return OpenAIError(
                429, msg, type="requests", code="rate_limit_exceeded", headers=headers
            )
        if fault.status >= 500:
            msg = "The server had an error while processing your request. Sorry about that!"
            return OpenAIError(fault.status, msg, type="server_error", headers=headers)
        return OpenAIError(fault.status, "Emulated fault.", headers=headers)

    def not_found_error(self, request: Request, status: int) -> EmulatedError:
        return OpenAIError(status, f"Invalid URL ({request.method} {request.url.path})")

    async def snapshot(self) -> dict[str, Any]:
        batches = []
        for batch in list(self.batches.values()):
            view = await self._observe(batch)
            batches.append(
                {
                    "id": batch.id,
                    "status": self.status_name(view["status"]),
                    "metadata": batch.metadata,
                    "request_count": view["request_counts"]["total"],
                    "created_at": view["created_at"],
                    "endpoint": batch.endpoint,
                    "input_file_id": batch.input_file_id,
                }
            )
        return {"batches": batches, "files": len(self.files)}

    # -- files --------------------------------------------------------------------------

    def render_file(self, record: FileRecord) -> dict[str, Any]:
        """A file as the provider's Files API shows it."""
        return record.as_json()

    async def _upload(self, request: Request) -> Response:
        # Starlette (python-multipart) spools file parts to a temporary file past 1 MB,
        # so an upload of any size is copied to disk without being held in memory.
        try:
            form = await request.form(max_part_size=64 * 1024)
        except MultiPartException as exc:
            raise OpenAIError(400, f"Invalid multipart body: {exc.message}") from None
        try:
            upload = form.get("file")
            purpose = form.get("purpose")
            if not isinstance(upload, UploadFile) or not isinstance(purpose, str):
                raise missing_param("file" if not isinstance(upload, UploadFile) else "purpose")
            if purpose not in self.upload_purposes:
                msg = f"'{purpose}' is not one of {sorted(self.upload_purposes)} - 'purpose'"
                raise OpenAIError(400, msg, param="purpose", code="invalid_value")
            now = int(self.clock())
            ttl = form.get("expires_after[seconds]")
            default_ttl: int | None = FILE_TTL if purpose == "batch" else None
            expires_at = (
                now + int(ttl) if isinstance(ttl, str) and ttl.isdigit() else plus(now, default_ttl)
            )
            file_id = new_file_id()
            path = self.data_dir / f"{file_id}.jsonl"
            size = await asyncio.to_thread(_copy_to, upload.file, path)
            filename = upload.filename or "upload.jsonl"
        finally:
            await form.close()
        record = FileRecord(file_id, purpose, filename, size, now, expires_at, path=path)
        self.files[file_id] = record
        return json_response(self.render_file(record))

    async def _list_files(self, request: Request) -> Response:
        limit = parse_limit(request, default=10_000, maximum=10_000)
        order = request.query_params.get("order", "desc")
        purpose = request.query_params.get("purpose")
        items = [f for f in self.files.values() if purpose is None or f.purpose == purpose]
        if order != "asc":
            items.reverse()
        chosen, has_more = cursor_page(items, request.query_params.get("after"), limit)
        return json_response(list_envelope([self.render_file(f) for f in chosen], has_more))

    def _file(self, request: Request) -> FileRecord:
        file_id = request.path_params["file_id"]
        record = self.files.get(file_id)
        if record is None:
            msg = f"No such File object: {file_id}"
            raise OpenAIError(404, msg, param="id")
        return record

    async def _get_file(self, request: Request) -> Response:
        return json_response(self.render_file(self._file(request)))

    async def _file_content(self, request: Request) -> Response:
        record = self._file(request)
        path = record.path if record.path is not None else await self._materialize(record)
        chunks = read_chunks(path, self.config.download_chunk_bytes)
        body = paced(chunks, lambda: self.config.download_chunk_delay)
        return StreamingResponse(body, media_type="application/octet-stream")

    async def _delete_file(self, request: Request) -> Response:
        record = self._file(request)
        del self.files[record.id]
        # A batch keeps reading its input to generate results, so keep referenced bytes.
        if record.path is not None and all(
            b.input_path != record.path for b in self.batches.values()
        ):
            record.path.unlink(missing_ok=True)
        return json_response({"id": record.id, "object": "file", "deleted": True})

    # -- batches ------------------------------------------------------------------------

    async def create_request(self, request: Request) -> dict[str, Any]:
        """The create request's JSON body, checked as the API checks it on arrival."""
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            raise OpenAIError(400, "We could not parse the JSON body of your request.") from None
        if not isinstance(body, dict):
            raise OpenAIError(400, "The request body must be a JSON object.")
        self.check_create(body)
        return body

    def check_create(self, body: dict[str, Any]) -> None:
        """Raise the 400 a create request earns synchronously."""
        check_create(body)

    def window_seconds(self, body: dict[str, Any]) -> float:
        """The completion window a (checked) create asks for, in unscaled seconds: OpenAI
        has only 24 h, Groq takes up to 7 d."""
        return 24 * 3600.0

    async def _create_batch(self, request: Request) -> Response:
        body = await self.create_request(request)
        expiry = body.get("output_expires_after")
        ttl = expiry.get("seconds") if isinstance(expiry, dict) else None
        batch = await self._start_batch(
            body["endpoint"],
            body["input_file_id"],
            body.get("metadata"),
            window=self.window_seconds(body),
            label=body["completion_window"],
            output_ttl=int(ttl) if isinstance(ttl, int) else FILE_TTL,
        )
        return json_response(await self._observe(batch))

    async def _start_batch(
        self,
        endpoint: str,
        input_file_id: str,
        metadata: dict[str, str] | None,
        *,
        window: float,
        label: str,
        output_ttl: int = FILE_TTL,
        model: str | None = None,
    ) -> BatchRecord:
        """Record a new batch and start validating its file: what every create shares.
        `window` is its completion window in unscaled seconds, `label` as the caller wrote
        it; `model` the one a provider takes at create (Mistral) for lines without one."""
        source = self.files.get(input_file_id)
        input_path = (
            source.path if source is not None and source.purpose == self.batch_purpose else None
        )
        max_bytes = self.config.max_file_bytes or MAX_FILE_BYTES
        if source is not None and source.bytes > max_bytes:
            raise self.too_large()
        now = self.clock()
        batch_id = self.new_batch_id()
        hold = self.config.take("hold_batches")
        schedule = Schedule.plan(self.config, now, hold=hold, window=window)
        ctx = RowContext(
            batch_id,
            endpoint,
            int(schedule.validating_end),
            self.config.failure_rate,
            self.config.seed,
            await self.failing_attempts(input_path),
            self.rules,
            unrun_rows=self.unrun_rows,
            model=model,
            fakers=self.fakers,
        )
        fail = self.config.take("fail_batches")
        refusal = await self._enqueue(batch_id, input_path, schedule, now, fail)
        batch = BatchRecord(
            batch_id,
            endpoint,
            input_file_id,
            metadata,
            output_ttl,
            schedule,
            ctx,
            input_path,
            fail=fail,
            refusal=refusal,
            completion_window=label,
        )
        self.batches[batch_id] = batch
        batch.scan = asyncio.ensure_future(self._prepare(batch))
        batch.scan.add_done_callback(_forget)
        # State is recorded before the answer is held back: a client killed in this window
        # has created a batch it never heard about, which crash-safe submission must handle.
        if self.config.create_delay > 0:
            await asyncio.sleep(self.config.create_delay)
        return batch

    def status_name(self, phase: str) -> str:
        """A phase (OpenAI's status) as the provider names it, for the emulator's state."""
        return phase

    def served_rows(self, output: bool, rows: Iterator[bytes]) -> Iterator[bytes]:
        """The rows of an output (or error) file as the provider writes them."""
        return rows

    def line_check(self) -> LineCheck:
        """How one input line is checked (the provider's line shape)."""
        return check_openai_line

    def new_batch_id(self) -> str:
        return "batch_" + secrets.token_hex(16)

    def too_large(self) -> Exception:
        return OpenAIError(400, "File is too large.")

    async def _enqueue(
        self, batch_id: str, path: Path | None, schedule: Schedule, now: float, fail: bool
    ) -> LineError | None:
        """Hold the new batch in the queue (`kit.queue`), or refuse it as OpenAI does: a
        batch over the enqueued-token limit of its model fails validation with
        `token_limit_exceeded` (https://platform.openai.com/docs/guides/rate-limits).
        OpenAI documents no code for the other limits: a 429 at create stands for them."""
        if path is None:
            return None
        end = schedule.validating_end if fail else schedule.finalizing_end
        until = min(end, schedule.expires_at)
        refused = await self.queue.enter(batch_id, path, "body", until, now)
        if refused is None:
            return None
        if refused != ENQUEUED_TOKENS:
            msg = f"Batch queue limit reached ({refused}). Please try again later."
            raise OpenAIError(429, msg, type="requests", code="rate_limit_exceeded")
        limit, model = self.queue.limit(refused), self.queue.last.model
        msg = (
            f"Enqueued token limit reached for {model} in organization org-emulated. "
            f"Limit: {limit:,} enqueued tokens. Please try submitting your batch again later."
        )
        return LineError("token_limit_exceeded", msg, None, None)

    async def _get_batch(self, request: Request) -> Response:
        return json_response(await self.render(self.lookup(request)))

    async def _list_batches(self, request: Request) -> Response:
        limit = parse_limit(request, default=20, maximum=100)
        newest_first = list(reversed(self.batches.values()))
        chosen, has_more = cursor_page(newest_first, request.query_params.get("after"), limit)
        data = [await self._observe(batch) for batch in chosen]
        return json_response(list_envelope(data, has_more))

    async def _cancel_batch(self, request: Request) -> Response:
        batch = self.lookup(request)
        await self._request_cancel(batch)
        return json_response(await self.render(batch))

    def lookup(self, request: Request) -> BatchRecord:
        """The batch the path names, or the provider's 404."""
        return self._batch(request)

    async def render(self, batch: BatchRecord) -> dict[str, Any]:
        """The batch as the provider's get and cancel answer it."""
        return await self._observe(batch)

    async def _request_cancel(self, batch: BatchRecord) -> None:
        """Start cancelling `batch`; the provider's 400 when it has ended already."""
        now = self.clock()
        phase, _ = await self._phase(batch, now)
        if phase.terminal:
            raise self.cannot_cancel(phase.status)
        if phase.status != "cancelling":
            batch.cancelling_at = now  # the instant the phase above was computed for
            self.queue.release(batch.id, now + batch.schedule.drain)
            if batch.scan is not None and batch.scan.done():
                self._start_final_summary(batch, batch.scan.result())

    def cannot_cancel(self, status: str) -> Exception:
        return OpenAIError(400, f"Cannot cancel a batch with status '{status}'.")

    def _batch(self, request: Request) -> BatchRecord:
        batch_id = request.path_params["batch_id"]
        batch = self.batches.get(batch_id)
        if batch is None:
            raise OpenAIError(404, f"No batch found with id '{batch_id}'")
        return batch

    # -- lifecycle ----------------------------------------------------------------------

    async def _prepare(self, batch: BatchRecord) -> Scan:
        limit = self.config.max_requests_per_batch or self.max_requests
        missing = (
            f"The input file '{batch.input_file_id}' does not exist or its purpose is not 'batch'."
        )
        scan = await asyncio.to_thread(
            scan_input,
            batch.input_path,
            batch.endpoint,
            batch.ctx,
            limit,
            missing,
            self.line_check(),
        )
        if batch.refusal is not None:
            scan = Scan(batch.refusal)
        elif batch.fail and scan.error is None:
            # The `fail_batches` knob: a valid file, failed as a whole all the same.
            scan = Scan(LineError("emulated_failure", "Emulated batch failure.", None, None))
        self._start_final_summary(batch, scan)
        return scan

    def _start_final_summary(self, batch: BatchRecord, scan: Scan) -> None:
        # Start the pass over the file as soon as its end is known, so the poll that first
        # sees the terminal status rarely waits for it.
        if scan.error is None:
            end = phase_at(batch.schedule, math.inf, scan.total, True, batch.cancelling_at)
            self._summary(batch, end.done, end.reason)

    def _summary(self, batch: BatchRecord, cut: int, reason: str | None) -> asyncio.Future[Summary]:
        future = batch.summaries.get((cut, reason))
        if future is None:
            assert batch.input_path is not None
            job = asyncio.to_thread(summarize, batch.input_path, batch.ctx, cut, reason)
            future = asyncio.ensure_future(job)
            future.add_done_callback(_forget)
            batch.summaries[(cut, reason)] = future
        return future

    async def _phase(self, batch: BatchRecord, now: float) -> tuple[Phase, Scan | None]:
        assert batch.scan is not None
        scan: Scan | None = None
        if now >= batch.schedule.validating_end or batch.cancelling_at is not None:
            scan = await batch.scan
        total = scan.total if scan is not None else None
        valid = scan is not None and scan.error is None
        return phase_at(batch.schedule, now, total, valid, batch.cancelling_at), scan

    async def _observe(self, batch: BatchRecord) -> dict[str, Any]:
        return render_batch(batch, *await self._state(batch))

    async def _state(self, batch: BatchRecord) -> tuple[Phase, Scan | None, Summary | None]:
        """The batch now: its phase, its file's validation and, once it has ended, the
        summary its published result files were made from."""
        phase, scan = await self._phase(batch, self.clock())
        summary: Summary | None = None
        if phase.terminal and scan is not None and scan.error is None:
            summary = await self._summary(batch, phase.done, phase.reason)
            self._publish(batch, phase, summary)
            # As on the real service, a batch reports its end only once its files exist.
            for file_id in (batch.output_file_id, batch.error_file_id):
                if file_id is not None:
                    await self._materialize(self.files[file_id])
        return phase, scan, summary

    def _publish(self, batch: BatchRecord, phase: Phase, summary: Summary) -> None:
        if batch.final is not None:
            return
        batch.final = (phase.done, phase.reason)
        ended = int(max(phase.times.values()))
        for output, rows, size in (
            (True, summary.output_rows, summary.output_bytes),
            (False, summary.error_rows, summary.error_bytes),
        ):
            if rows == 0:
                continue  # the real API reports null rather than an empty file
            file_id = new_file_id()
            name = f"{batch.id}_{'output' if output else 'error'}.jsonl"
            expires = ended + batch.output_ttl
            self.files[file_id] = FileRecord(
                file_id,
                "batch_output",
                name,
                size,
                ended,
                expires,
                batch_id=batch.id,
                output=output,
            )
            if output:
                batch.output_file_id = file_id
            else:
                batch.error_file_id = file_id

    def _materialize(self, record: FileRecord) -> asyncio.Future[Path]:
        """The result file's bytes on disk, generated (streamed, flat memory) only once, so
        downloads stream from disk instead of regenerating every row."""
        future = self._written.get(record.id)
        if future is None:
            batch = self.batches[str(record.batch_id)]
            assert batch.input_path is not None and batch.final is not None
            cut, reason = batch.final
            rows = iter_file_rows(batch.input_path, batch.ctx, cut, reason, record.output)
            rows = self.served_rows(record.output, rows)
            path = self.data_dir / f"{record.id}.jsonl"
            future = asyncio.ensure_future(asyncio.to_thread(_write_rows, rechunk(rows), path))
            self._written[record.id] = future
        return future


def _copy_to(source: BinaryIO, path: Path) -> int:
    source.seek(0)
    with path.open("wb") as target:
        shutil.copyfileobj(source, target, 1024 * 1024)
        return int(target.tell())


def _write_rows(chunks: Iterable[bytes], path: Path) -> Path:
    partial = path.with_suffix(".partial")
    with partial.open("wb") as target:
        for chunk in chunks:
            target.write(chunk)
    partial.replace(path)
    return path
