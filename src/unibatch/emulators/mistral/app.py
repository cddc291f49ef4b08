"""Mistral's Files + Batch API (`/v1/files`, `/v1/batch/jobs`) and its chat completions
and embeddings, as a Starlette app.

Mount :attr:`MistralEmulator.app` at ``/mistral`` and point the official SDK at it::

    Mistral(api_key="test", server_url="http://H:P/mistral")

Batches run on the OpenAI emulator's clock, validation and deterministic results (see
`emulators.openai`), shown in Mistral's shapes (`wire.py`): statuses QUEUED, RUNNING,
SUCCESS, FAILED, TIMEOUT_EXCEEDED, CANCELLATION_REQUESTED and CANCELLED; counters
`total/completed/succeeded/failed_requests`; an output file of the answered requests and
an error file of the failed ones, in OpenAI's row envelope (as Mistral's batch guide,
https://docs.mistral.ai/capabilities/batch/, shows it). A request the job never ran (its
timeout, a cancel) has no row. `timeout_hours` is the job's window: 24 hours last
`completion_window_seconds`, other windows in proportion. Inline `requests` and agents
are not emulated.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar
from uuid import uuid4

import orjson
from starlette.requests import Request
from starlette.responses import Response

from unibatch.providers.mistral.rules import RULES
from unibatch.providers.rules import RuleTable

from ..kit import Fault, Handler, json_response
from ..kit.errors import has_bearer_key, retry_after_headers
from ..openai import OpenAIEmulator
from ..openai.fakes import Faker
from ..openai.validate import LineCheck, check_bare_line
from ..openai.wire import BatchRecord, FileRecord
from .wire import (
    EMULATED,
    ENDPOINTS,
    MISTRAL_FAKERS,
    STATUS,
    MistralError,
    render_file,
    render_job,
)

# Query parameters of the job list that are not metadata keys (the SDK sends a metadata
# filter as one parameter per key).
_LIST_PARAMS = frozenset(
    {"page", "page_size", "model", "agent_id", "metadata", "created_after"}
    | {"created_by_me", "status", "order_by"}
)


class MistralEmulator(OpenAIEmulator):
    """Mistral's Batch API with deterministic fake results (see the module docstring)."""

    name = "mistral"
    api_root: ClassVar[str] = "/v1"
    rules: ClassVar[RuleTable] = RULES
    sync_endpoints: ClassVar[tuple[str, ...]] = tuple(sorted(EMULATED))
    upload_purposes: ClassVar[frozenset[str]] = frozenset({"batch", "fine-tune", "ocr"})
    unrun_rows: ClassVar[bool] = False
    fakers: ClassVar[Mapping[str, Faker]] = MISTRAL_FAKERS

    def line_check(self) -> LineCheck:
        return check_bare_line

    def api_routes(self) -> list[tuple[str, str, Handler]]:
        return [
            *self.sync.routes(),
            ("POST", "/v1/files", self._upload),
            ("GET", "/v1/files", self._list_mistral_files),
            ("GET", "/v1/files/{file_id}", self._get_mistral_file),
            ("GET", "/v1/files/{file_id}/content", self._file_content),
            ("DELETE", "/v1/files/{file_id}", self._delete_file),
            ("POST", "/v1/batch/jobs", self._create_job),
            ("GET", "/v1/batch/jobs", self._list_jobs),
            ("GET", "/v1/batch/jobs/{batch_id}", self._get_batch),
            ("POST", "/v1/batch/jobs/{batch_id}/cancel", self._cancel_batch),
        ]

    # -- wire conventions ---------------------------------------------------------------

    def authenticate(self, request: Request) -> None:
        if not has_bearer_key(request.headers.get("authorization", "")):
            raise MistralError(401, "Unauthorized", type="unauthorized")

    def fault_error(self, fault: Fault) -> MistralError:
        headers = retry_after_headers(fault.status, fault.retry_after)
        if fault.status == 429:
            msg = "Requests rate limit exceeded"
            return MistralError(429, msg, type="rate_limited", code="1300", headers=headers)
        if fault.status >= 500:
            msg = "Internal server error (emulated)"
            return MistralError(fault.status, msg, type="internal_server_error", headers=headers)
        return MistralError(fault.status, "Emulated fault.", headers=headers)

    def not_found_error(self, request: Request, status: int) -> MistralError:
        return MistralError(status, f"Not Found: {request.method} {request.url.path}")

    def render_file(self, record: FileRecord) -> dict[str, Any]:
        return render_file(record)

    def cannot_cancel(self, status: str) -> Exception:
        return MistralError(400, f"Cannot cancel a job with status {STATUS[status]}.")

    def too_large(self) -> Exception:
        return MistralError(400, "File is too large.")

    def status_name(self, phase: str) -> str:
        return STATUS[phase]

    def new_batch_id(self) -> str:
        return str(uuid4())

    # -- files --------------------------------------------------------------------------

    async def _list_mistral_files(self, request: Request) -> Response:
        page, size = _page(request)
        purpose = request.query_params.get("purpose")
        items = [f for f in reversed(self.files.values()) if purpose in (None, f.purpose)]
        chosen = items[page * size : (page + 1) * size]
        data = [render_file(f) for f in chosen]
        return json_response({"object": "list", "data": data, "total": len(items)})

    async def _get_mistral_file(self, request: Request) -> Response:
        # Retrieving a file says whether it was deleted (the SDK's `GetFileResponse`).
        return json_response({**render_file(self._file(request)), "deleted": False})

    # -- jobs ---------------------------------------------------------------------------

    async def _create_job(self, request: Request) -> Response:
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            raise MistralError(400, "Invalid JSON body.") from None
        if not isinstance(body, dict):
            raise MistralError(400, "The request body must be a JSON object.")
        endpoint = body.get("endpoint")
        if endpoint not in ENDPOINTS:
            raise _invalid("endpoint", f"Input should be one of {', '.join(ENDPOINTS)}")
        if endpoint not in EMULATED:
            raise MistralError(400, f"The emulator does not fake answers for {endpoint}.")
        files = body.get("input_files")
        if body.get("requests") is not None or body.get("agent_id") is not None:
            raise MistralError(400, "Inline requests and agents are not emulated.")
        if not isinstance(files, list) or len(files) != 1 or not isinstance(files[0], str):
            raise MistralError(400, "The emulator takes exactly one input file per job.")
        model = body.get("model")
        metadata = body.get("metadata")
        hours = body.get("timeout_hours", 24)
        if model is not None and not isinstance(model, str):
            raise _invalid("model", "Input should be a valid string")
        if metadata is not None and not (
            isinstance(metadata, dict) and all(isinstance(v, str) for v in metadata.values())
        ):
            raise _invalid("metadata", "Input should be a valid dictionary of strings")
        if isinstance(hours, bool) or not isinstance(hours, int) or hours < 1:
            raise _invalid("timeout_hours", "Input should be a positive integer")
        batch = await self._start_batch(
            endpoint, files[0], metadata, window=hours * 3600.0, label=f"{hours}h", model=model
        )
        return json_response(await self.render(batch))

    async def _list_jobs(self, request: Request) -> Response:
        page, size = _page(request)
        params = request.query_params
        after = params.get("created_after")
        since = datetime.fromisoformat(after).timestamp() if after else None
        statuses = set(params.getlist("status"))
        wanted = {k: v for k, v in params.items() if k not in _LIST_PARAMS}
        jobs = list(self.batches.values())
        if params.get("order_by", "-created") == "-created":
            jobs.reverse()
        views = []
        for batch in jobs:
            if since is not None and batch.schedule.created < since:
                continue
            if params.get("model") not in (None, batch.ctx.model):
                continue
            if any((batch.metadata or {}).get(k) != v for k, v in wanted.items()):
                continue
            view = await self.render(batch)
            if not statuses or view["status"] in statuses:
                views.append(view)
        chosen = views[page * size : (page + 1) * size]
        return json_response({"object": "list", "data": chosen, "total": len(views)})

    def lookup(self, request: Request) -> BatchRecord:
        job_id = request.path_params["batch_id"]
        batch = self.batches.get(job_id)
        if batch is None:
            raise MistralError(404, f"Batch job {job_id} not found", type="not_found")
        return batch

    async def render(self, batch: BatchRecord) -> dict[str, Any]:
        return render_job(batch, *await self._state(batch))


def _invalid(field: str, message: str) -> MistralError:
    return MistralError(422, f"{field}: {message}", type="invalid_request_error", code="invalid")


def _page(request: Request) -> tuple[int, int]:
    try:
        page = int(request.query_params.get("page", 0))
        size = int(request.query_params.get("page_size", 100))
    except ValueError:
        raise _invalid("page", "Input should be a valid integer") from None
    if page < 0 or not 1 <= size <= 1000:
        raise _invalid("page_size", "Input should be between 1 and 1000")
    return page, size
