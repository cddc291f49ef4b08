"""Together AI's Files and Batch API (`/v1/files`, `/v1/batches`) and its chat
completions, as a Starlette app.

Mount :attr:`TogetherEmulator.app` at ``/together`` and point the official SDK at it::

    Together(base_url="http://H:P/together", api_key="test")

Batches run on the OpenAI emulator's clock, validation and results (see
`emulators.openai`), in Together's shapes after the `together` SDK's types and Together's
batch guide (https://docs.together.ai/docs/batch-inference):

* uploads: the SDK's three steps (a form `POST /v1/files` answered 302 with the upload URL
  in `Location` and the id in `X-Together-File-Id`, a `PUT` of the bytes to that URL, then
  `POST /v1/files/{id}/preprocess`), or one multipart `POST /v1/files/upload`;
* a job: `VALIDATING`, `IN_PROGRESS`, `CANCELING` while a cancel drains, then `COMPLETED`,
  `FAILED` (with `error`), `EXPIRED` or `CANCELLED`; RFC 3339 times, `progress` in
  percent, no counters and no metadata; create answers 201 `{"job": ...}`, the list a
  bare array, a cancel of an ended job 409;
* result files: output rows in OpenAI's envelope; a failed request's row in the error
  file with `error: {"code": "batch_client_error" | "batch_server_error", "message"}`;
  a request the job never ran has no row.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any, ClassVar
from uuid import uuid4

import orjson
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.responses import Response

from unibatch.providers.rules import RuleTable
from unibatch.providers.together.rules import RULES

from ..kit import EmulatedError, Fault, Handler, json_response
from ..kit.errors import has_bearer_key, retry_after_headers
from ..openai import OpenAIEmulator
from ..openai.validate import LineCheck, check_bare_line
from ..openai.wire import BatchRecord, FileRecord
from .wire import ENDPOINTS, STATUS, TogetherError, render_file, render_job, together_rows

# The presigned upload URLs this emulator hands out: the bytes' own authority, as an S3
# URL would be, so they take no API key.
UPLOADS = "/v1/_uploads/"


class TogetherEmulator(OpenAIEmulator):
    """Together's Batch API with deterministic fake results (see the module docstring)."""

    name = "together"
    api_root: ClassVar[str] = "/v1"
    rules: ClassVar[RuleTable] = RULES
    sync_endpoints: ClassVar[tuple[str, ...]] = ("/v1/chat/completions",)
    upload_purposes: ClassVar[frozenset[str]] = frozenset(
        {"fine-tune", "calibration", "eval", "batch-api"}
    )
    unrun_rows: ClassVar[bool] = False
    batch_purpose: ClassVar[str] = "batch-api"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Upload slots opened by `POST /v1/files`, filled by the PUT: id -> (name, purpose).
        self.pending: dict[str, tuple[str, str]] = {}
        # The model each create named (`model_id`), shown once validation passes.
        self.model_ids: dict[str, str | None] = {}

    def api_routes(self) -> list[tuple[str, str, Handler]]:
        return [
            *self.sync.routes(),
            ("POST", "/v1/files", self._open_upload),
            ("PUT", UPLOADS + "{file_id}", self._put_upload),
            ("POST", "/v1/files/{file_id}/preprocess", self._preprocess),
            ("POST", "/v1/files/upload", self._upload_direct),
            ("GET", "/v1/files", self._list_together_files),
            ("GET", "/v1/files/{file_id}", self._get_file),
            ("GET", "/v1/files/{file_id}/content", self._file_content),
            ("DELETE", "/v1/files/{file_id}", self._delete_file),
            ("POST", "/v1/batches", self._create_job),
            ("GET", "/v1/batches", self._list_jobs),
            ("GET", "/v1/batches/{batch_id}", self._get_batch),
            ("POST", "/v1/batches/{batch_id}/cancel", self._cancel_batch),
        ]

    # -- wire conventions ---------------------------------------------------------------

    def authenticate(self, request: Request) -> None:
        if UPLOADS in request.url.path:
            return
        if not has_bearer_key(request.headers.get("authorization", "")):
            raise TogetherError(401, "Invalid API key provided.", type="invalid_api_key")

    def fault_error(self, fault: Fault) -> EmulatedError:
        headers = retry_after_headers(fault.status, fault.retry_after)
        if fault.status == 429:
            msg = "You have exceeded the rate limit (emulated)."
            return TogetherError(429, msg, type="rate_limit_exceeded", headers=headers)
        if fault.status >= 500:
            return TogetherError(fault.status, "Internal server error (emulated).", headers=headers)
        return TogetherError(fault.status, "Emulated fault.", headers=headers)

    def not_found_error(self, request: Request, status: int) -> EmulatedError:
        return TogetherError(status, f"Not found: {request.method} {request.url.path}")

    def render_file(self, record: FileRecord) -> dict[str, Any]:
        return render_file(record)

    def line_check(self) -> LineCheck:
        return check_bare_line

    def cannot_cancel(self, status: str) -> Exception:
        msg = f"Cannot cancel job - already in terminal state: {STATUS[status]}"
        return EmulatedError(409, {"error": msg})

    def status_name(self, phase: str) -> str:
        return STATUS[phase]

    def new_batch_id(self) -> str:
        return str(uuid4())

    def served_rows(self, output: bool, rows: Iterator[bytes]) -> Iterator[bytes]:
        return rows if output else together_rows(rows)

    # -- files --------------------------------------------------------------------------

    async def _open_upload(self, request: Request) -> Response:
        form = await self._form(request)
        name, purpose = form.get("file_name"), form.get("purpose")
        if not isinstance(name, str) or not isinstance(purpose, str):
            raise TogetherError(400, "file_name and purpose are required.")
        self._check_purpose(purpose)
        file_id = f"file-{uuid4()}"
        self.pending[file_id] = (name, purpose)
        # Under the mount, where this call came in (`.../v1/files`).
        mount = str(request.url.replace(query="")).removesuffix("/v1/files")
        location = mount + UPLOADS + file_id
        headers = {"Location": location, "X-Together-File-Id": file_id}
        return Response(status_code=302, headers=headers)

    async def _put_upload(self, request: Request) -> Response:
        file_id = request.path_params["file_id"]
        if file_id not in self.pending:
            raise TogetherError(404, f"No upload for {file_id}.")
        path = self.data_dir / f"{file_id}.jsonl"
        size = 0
        with path.open("wb") as out:
            async for chunk in request.stream():
                size += len(chunk)
                await asyncio.to_thread(out.write, chunk)
        name, purpose = self.pending.pop(file_id)
        self._keep(file_id, name, purpose, size, path)
        return Response(status_code=200)

    async def _preprocess(self, request: Request) -> Response:
        return json_response(render_file(self._file(request)))

    async def _upload_direct(self, request: Request) -> Response:
        form = await self._form(request)
        upload, purpose = form.get("file"), form.get("purpose")
        name = form.get("file_name")
        if not isinstance(upload, UploadFile) or not isinstance(purpose, str):
            raise TogetherError(400, "file and purpose are required.")
        self._check_purpose(purpose)
        file_id = f"file-{uuid4()}"
        path = self.data_dir / f"{file_id}.jsonl"
        data = await upload.read()
        await asyncio.to_thread(path.write_bytes, data)
        filename = name if isinstance(name, str) else upload.filename or "upload.jsonl"
        return json_response(render_file(self._keep(file_id, filename, purpose, len(data), path)))

    def _keep(self, file_id: str, name: str, purpose: str, size: int, path: Any) -> FileRecord:
        now = int(self.clock())
        record = FileRecord(file_id, purpose, name, size, now, None, path=path)
        self.files[file_id] = record
        return record

    def _check_purpose(self, purpose: str) -> None:
        if purpose not in self.upload_purposes:
            msg = f"Invalid purpose '{purpose}'; one of {sorted(self.upload_purposes)}."
            raise TogetherError(400, msg)

    async def _form(self, request: Request) -> Any:
        try:
            return await request.form(max_part_size=64 * 1024)
        except MultiPartException as exc:
            raise TogetherError(400, f"Invalid multipart body: {exc.message}") from None

    async def _list_together_files(self, request: Request) -> Response:
        return json_response({"data": [render_file(f) for f in reversed(self.files.values())]})

    # -- jobs ---------------------------------------------------------------------------

    async def _create_job(self, request: Request) -> Response:
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            raise TogetherError(400, "Invalid JSON body.") from None
        if not isinstance(body, dict):
            raise TogetherError(400, "The request body must be a JSON object.")
        endpoint, file_id = body.get("endpoint"), body.get("input_file_id")
        if endpoint not in ENDPOINTS:
            raise TogetherError(400, f"Unsupported endpoint: {endpoint!r}.")
        if endpoint != "/v1/chat/completions":
            raise TogetherError(400, f"The emulator does not fake answers for {endpoint}.")
        if not isinstance(file_id, str) or not file_id:
            raise TogetherError(400, "input_file_id is required.")
        window = body.get("completion_window") or "24h"
        if window != "24h":
            raise TogetherError(400, "completion_window must be 24h.")
        batch = await self._start_batch(endpoint, file_id, None, window=86400.0, label="24h")
        model_id = body.get("model_id")
        self.model_ids[batch.id] = model_id if isinstance(model_id, str) else None
        job = await self.render(batch)
        return json_response({"job": job}, 201)

    async def _list_jobs(self, request: Request) -> Response:
        return json_response([await self.render(b) for b in reversed(self.batches.values())])

    def lookup(self, request: Request) -> BatchRecord:
        batch = self.batches.get(request.path_params["batch_id"])
        if batch is None:
            raise EmulatedError(404, {"error": "Job not found", "request_id": str(uuid4())})
        return batch

    async def render(self, batch: BatchRecord) -> dict[str, Any]:
        source = self.files.get(batch.input_file_id)
        size = source.bytes if source is not None else 0
        model_id = self.model_ids.get(batch.id)
        return render_job(batch, *await self._state(batch), file_size=size, model_id=model_id)
