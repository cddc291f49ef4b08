"""A faithful emulator of xAI's Files + Batch REST API, as a Starlette app (xAI documents
the API at docs.x.ai/docs/guides/batch-api).

Mount :attr:`XAIEmulator.app` at ``/xai/v1`` and point a client at it::

    emulator = XAIEmulator(EmulatorConfig(time_scale=0.05))
    # Mount("/xai/v1", app=emulator.app); XAI_BASE_URL=http://H:P/xai/v1

Batches are file-based (upload, then create with ``input_file_id``; the file is checked
at create: unknown model → 400, duplicate id → 412, a malformed line → the batch is
cancelled by xAI with a message) or inline (create, then ``POST …/requests``). There is
no status: counters move with the clock.
Results are paged JSON with ``pagination_token``, not in input order, with bare-string
errors. Uploads live on disk and result pages are built from them on demand.

Besides the shared :class:`EmulatorConfig`, three xAI knobs (attributes, or
``POST /xai/v1/_emulator/xai``): ``cancel_by_xai_message`` (new batches are cancelled by
xAI with this message after ``xai_cancel_after`` seconds, default mid-run) and
``expire_seconds`` (a batch's life, 30 days; both scaled by ``time_scale``). The attribute
``api_keys``, when set, makes every other key answer xAI's 400 for a wrong key.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..kit import Clock, EmulatorConfig, Fault, Handler, ProviderEmulator, json_response
from . import sync
from .batch import Timeline, XAIBatch
from .errors import XAIError
from .inline import add_requests
from .validate import ingest
from .wire import (
    EXPIRE_SECONDS,
    FILE_TTL,
    MAX_FILE_BYTES,
    MAX_REQUESTS,
    XAIFile,
    copy_to,
    decode_token,
    encode_token,
    key_id,
    new_id,
    parse_limit,
    render_batch,
)

_KNOBS = ("cancel_by_xai_message", "xai_cancel_after", "expire_seconds")


class XAIEmulator(ProviderEmulator):
    """xAI's batch API with deterministic fake completions.

    Example::

        emulator = XAIEmulator(EmulatorConfig(time_scale=0.05, failure_rate=0.1))
        emulator.cancel_by_xai_message = "capacity"  # xAI gives up on new batches mid-run
        emulator.inject_faults(3)                    # the next three API calls answer 429
    """

    name = "xai"

    def __init__(self, config: EmulatorConfig | None = None, clock: Clock | None = None) -> None:
        super().__init__(config, clock)
        self.files: dict[str, XAIFile] = {}
        self.batches: dict[str, XAIBatch] = {}  # insertion order == creation order
        self.cancel_by_xai_message: str | None = None
        self.xai_cancel_after: float | None = None
        self.expire_seconds: float = EXPIRE_SECONDS
        # When set, only these keys are accepted; any key is, otherwise.
        self.api_keys: frozenset[str] | None = None

    def api_routes(self) -> list[tuple[str, str, Handler]]:
        return [
            ("POST", "/chat/completions", self._chat_completions),
            ("POST", "/files", self._upload),
            ("GET", "/files/{file_id}", self._get_file),
            ("DELETE", "/files/{file_id}", self._delete_file),
            ("POST", "/batches", self._create_batch),
            ("GET", "/batches", self._list_batches),
            ("GET", "/batches/{batch_id}", self._get_batch),
            ("POST", "/batches/{batch_id}:cancel", self._cancel_batch),
            ("GET", "/batches/{batch_id}/results", self._results),
            ("GET", "/batches/{batch_id}/requests", self._request_metadata),
            ("POST", "/batches/{batch_id}/requests", self._add_requests),
        ]

    @property
    def app(self) -> Starlette:
        app = super().app
        if not any(getattr(r, "path", None) == "/_emulator/xai" for r in app.router.routes):
            route = Route("/_emulator/xai", self._control_xai, methods=["GET", "POST"])
            app.router.routes.insert(0, route)
        return app

    # -- wire conventions ---------------------------------------------------------------

    def authenticate(self, request: Request) -> None:
        scheme, _, key = request.headers.get("authorization", "").partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key:
            msg = "No API key provided. Send it as 'Authorization: Bearer <XAI_API_KEY>'."
            raise XAIError(401, msg)
        if self.api_keys is not None and key not in self.api_keys:
            # A wrong key is a 400, not a 401, on xAI (capture).
            msg = f"Incorrect API key provided: {key[:4]}***. Obtain one at https://console.x.ai."
            raise XAIError(400, msg)

    def fault_error(self, fault: Fault) -> XAIError:
        headers = {}
        if fault.retry_after is not None and fault.status in (429, 503):
            headers["retry-after"] = f"{fault.retry_after:g}"
        if fault.status == 429:
            msg = "Too many requests: your team has exceeded its rate limit (emulated)."
        elif fault.status >= 500:
            msg = "The service encountered an error (emulated)."
        else:
            msg = "Emulated fault."
        return XAIError(fault.status, msg, headers)

    def not_found_error(self, request: Request, status: int) -> XAIError:
        return XAIError(status, f"No route for {request.method} {request.url.path}")

    async def snapshot(self) -> dict[str, Any]:
        now = self.clock()
        batches = []
        for batch in list(self.batches.values()):
            view = batch.view(now)
            rendered = render_batch(batch, view)
            batches.append(
                {
                    "id": batch.id,
                    "name": batch.name,
                    "status": view.word,
                    "request_count": batch.total,
                    "state": rendered["state"],
                    "input_file_id": batch.input_file_id,
                }
            )
        return {"batches": batches, "files": len(self.files)}

    async def _control_xai(self, request: Request) -> Response:
        if request.method == "POST":
            try:
                changes = orjson.loads(await request.body())
                if not isinstance(changes, dict) or any(k not in _KNOBS for k in changes):
                    raise ValueError(f"body must be a JSON object with keys among {_KNOBS}")
                for key, value in changes.items():
                    _check_knob(key, value)
            except ValueError as exc:
                return json_response({"error": str(exc)}, 400)
            for key, value in changes.items():
                setattr(self, key, value)
        return json_response({k: getattr(self, k) for k in _KNOBS})

    # -- files --------------------------------------------------------------------------

    async def _chat_completions(self, request: Request) -> Response:
        return await sync.chat_completions(self, request)

    async def _upload(self, request: Request) -> Response:
        try:
            form = await request.form(max_part_size=64 * 1024)
        except MultiPartException as exc:
            raise XAIError(400, f"Invalid multipart body: {exc.message}") from None
        try:
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                raise XAIError(400, "Missing required multipart field 'file'.")
            ttl = form.get("expires_after")
            seconds = int(ttl) if isinstance(ttl, str) and ttl.isdigit() else FILE_TTL
            if not 3600 <= seconds <= 2_592_000:
                raise XAIError(400, "expires_after must be between 3600 and 2592000 seconds.")
            file_id = new_id("file")
            path = self.data_dir / f"{file_id}.jsonl"
            size = await asyncio.to_thread(copy_to, upload.file, path)
            filename = upload.filename or "upload.jsonl"
        finally:
            await form.close()
        now = int(self.clock())
        record = XAIFile(file_id, filename, size, now, now + seconds, path)
        self.files[file_id] = record
        return json_response(record.as_json())

    def _file(self, request: Request) -> XAIFile:
        file_id = request.path_params["file_id"]
        record = self.files.get(file_id)
        if record is None:
            raise XAIError(404, f"File {file_id} not found.")
        return record

    async def _get_file(self, request: Request) -> Response:
        return json_response(self._file(request).as_json())

    async def _delete_file(self, request: Request) -> Response:
        record = self._file(request)
        del self.files[record.id]
        # A batch keeps reading its input to build results, so keep referenced bytes.
        if all(b.path != record.path for b in self.batches.values()):
            record.path.unlink(missing_ok=True)
        return json_response({"id": record.id, "object": "file", "deleted": True})

    # -- batches ------------------------------------------------------------------------

    async def _create_batch(self, request: Request) -> Response:
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            raise XAIError(400, "Failed to parse the request body as JSON.") from None
        if not isinstance(body, dict) or not isinstance(body.get("name"), str):
            raise XAIError(400, "Missing required field 'name'.")
        file_id = body.get("input_file_id")
        source = self.files.get(file_id) if isinstance(file_id, str) else None
        if file_id is not None and source is None:
            raise XAIError(404, f"File {file_id} not found.")
        max_bytes = self.config.max_file_bytes or MAX_FILE_BYTES
        if source is not None and source.bytes > max_bytes:
            raise XAIError(400, f"The batch file is larger than {max_bytes} bytes.")
        now = self.clock()
        batch_id = new_id("batch")
        batch = XAIBatch(
            batch_id,
            body["name"],
            key_id(request.headers.get("authorization", "")),
            file_id,
            source.path if source is not None else None,
            self._timeline(now),
            self.config.failure_rate,
            self.config.seed,
        )
        if source is None:  # inline mode: requests arrive later, into a file of its own
            batch.path = self.data_dir / f"{batch_id}.jsonl"
            batch.path.touch()
            batch.inline_ids = {}
        else:
            limit = self.config.max_requests_per_batch or MAX_REQUESTS
            flaky = await self.failing_attempts(source.path)
            read = await asyncio.to_thread(
                ingest, source.path, batch.seed, batch.failure_rate, limit, flaky
            )
            batch.offsets, batch.kinds, batch.invalid = read.offsets, read.kinds, read.invalid
        self.batches[batch_id] = batch
        # The batch exists before the answer is held back: a client killed in this window
        # has created a batch it never heard about, which crash recovery must find.
        if self.config.create_delay > 0:
            await asyncio.sleep(self.config.create_delay)
        return json_response(render_batch(batch, batch.view(self.clock())))

    def _timeline(self, now: float) -> Timeline:
        c = self.config
        ingest_end = now + c.scaled(c.validating_seconds)
        run_end = ingest_end + c.scaled(c.in_progress_seconds)
        xai_at: float | None = None
        if self.cancel_by_xai_message:
            after = self.xai_cancel_after
            xai_at = now + c.scaled(after) if after is not None else (ingest_end + run_end) / 2
        return Timeline(
            created=now,
            ingest_end=ingest_end,
            run_end=run_end,
            expire_at=now + c.scaled(self.expire_seconds),
            drain=c.scaled(c.cancelling_seconds),
            xai_cancel_at=xai_at,
            xai_cancel_message=self.cancel_by_xai_message,
        )

    def _batch(self, request: Request) -> XAIBatch:
        batch_id = request.path_params["batch_id"]
        batch = self.batches.get(batch_id)
        if batch is None:
            raise XAIError(404, f"Batch {batch_id} not found.")
        return batch

    async def _get_batch(self, request: Request) -> Response:
        batch = self._batch(request)
        return json_response(render_batch(batch, batch.view(self.clock())))

    async def _list_batches(self, request: Request) -> Response:
        limit = parse_limit(request.query_params.get("limit"), default=100)
        start = decode_token(request.query_params.get("pagination_token"))
        if limit is None or start is None:
            raise XAIError(400, "Invalid limit or pagination_token.")
        now = self.clock()
        newest_first = list(reversed(self.batches.values()))
        chosen = newest_first[start : start + limit]
        more = start + limit < len(newest_first)
        return json_response(
            {
                "batches": [render_batch(b, b.view(now)) for b in chosen],
                "pagination_token": encode_token(start + limit) if more else None,
            }
        )

    async def _cancel_batch(self, request: Request) -> Response:
        batch = self._batch(request)
        now = self.clock()
        view = batch.view(now)
        # Nothing left to stop: the batch is returned as it stands.
        if not view.stopped and not (view.total and view.pending == 0):
            batch.cancel_at = now
        return json_response(render_batch(batch, batch.view(now)))

    async def _add_requests(self, request: Request) -> Response:
        batch = self._batch(request)
        if batch.input_file_id is not None:
            raise XAIError(412, "Cannot add inline requests to a file-based batch")
        if batch.view(self.clock()).stopped:
            raise XAIError(403, "Cannot add requests to a cancelled batch")
        # Synchronous on purpose: appends to one batch must not interleave.
        add_requests(batch, await request.body(), self.config.max_requests_per_batch)
        return json_response({})

    # -- results ------------------------------------------------------------------------

    async def _results(self, request: Request) -> Response:
        batch = self._batch(request)
        limit = parse_limit(request.query_params.get("limit"), default=100)
        start = decode_token(request.query_params.get("pagination_token"))
        if limit is None or start is None:
            raise XAIError(400, "Invalid limit or pagination_token.")
        view = batch.view(self.clock())

        def page() -> tuple[list[dict[str, Any]], int]:
            rows: list[dict[str, Any]] = []
            position = start
            if batch.path is None or position >= batch.total:
                return rows, position
            with batch.path.open("rb") as fh:
                while position < batch.total and len(rows) < limit:
                    row = batch.result(fh, batch.index_at(position), view)
                    position += 1
                    if row is not None:
                        rows.append(row)
            return rows, position

        rows, end = await asyncio.to_thread(page)
        token = encode_token(end) if end < batch.total else None
        return json_response({"results": rows, "pagination_token": token})

    async def _request_metadata(self, request: Request) -> Response:
        batch = self._batch(request)
        limit = parse_limit(request.query_params.get("limit"), default=100)
        start = decode_token(request.query_params.get("pagination_token"))
        if limit is None or start is None:
            raise XAIError(400, "Invalid limit or pagination_token.")
        view = batch.view(self.clock())
        stop = min(start + limit, batch.total)

        def page() -> list[dict[str, Any]]:
            if batch.path is None or start >= stop:
                return []
            with batch.path.open("rb") as fh:
                return [batch.metadata(fh, i, view) for i in range(start, stop)]

        items = await asyncio.to_thread(page)
        token = encode_token(stop) if stop < batch.total else None
        return json_response({"batch_request_metadata": items, "pagination_token": token})


def _check_knob(key: str, value: Any) -> None:
    if key == "cancel_by_xai_message":
        ok = value is None or isinstance(value, str)
    else:
        number = isinstance(value, int | float) and not isinstance(value, bool) and value >= 0
        ok = number or (value is None and key == "xai_cancel_after")
    if not ok:
        raise ValueError(f"bad value for {key!r}: {value!r}")
