"""`/v1/batches`: OpenAI's batches API and the JSON API (`requests` in the body,
`/results` to read them), over the engine."""

from __future__ import annotations

import hashlib
import time
from collections.abc import AsyncIterator, Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import anyio
from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse

from unibatch.engine.ids import new_id
from unibatch.engine.inputs import Source
from unibatch.engine.limits import ValueRefused, encode_body
from unibatch.engine.views import result_view
from unibatch.errors import (
    BudgetExceededError,
    ConfigurationError,
    IdempotencyConflictError,
    InputError,
    UnknownProviderError,
    UnpricedModelError,
)
from unibatch.gateway.auth import Caller, Principal
from unibatch.gateway.context import Gateway
from unibatch.gateway.convert import (
    batch_object,
    estimate_cost,
    jsonl_dicts,
    openai_status,
)
from unibatch.gateway.deps import GatewayDep
from unibatch.gateway.errors import APIError, not_found
from unibatch.gateway.models import (
    BatchCreate,
    BatchList,
    BatchObject,
    ErrorResponse,
    ResultList,
    error_responses,
)
from unibatch.gateway.routes_files import file_path
from unibatch.gateway.store import Idempotency
from unibatch.providers.registry import known_providers

router = APIRouter(
    prefix="/v1/batches", tags=["batches"], responses=error_responses(400, 401, 404, 413)
)
ENDPOINTS = ("/v1/chat/completions", "/v1/embeddings", "/v1/responses")


def _input_error(exc: InputError, source: Source) -> APIError:
    """The engine's message, in the caller's terms: `line N` of the uploaded file (never
    the server's path of it) or `requests[i]` of an inline batch."""
    if isinstance(source, Path):
        where = "" if exc.line is None else f"line {exc.line}: "
        return APIError(400, where + exc.detail, param="input_file_id", code="invalid_request")
    where = "" if exc.line is None else f"requests[{exc.line - 1}]: "
    return APIError(400, where + exc.detail, param="requests", code="invalid_request")


async def _create(
    gw: Gateway,
    who: Principal,
    source: Source,
    estimate_lines: Iterable[Mapping[str, Any]],
    spec: BatchCreate,
    idempotency: Idempotency | None,
) -> BatchObject:
    try:
        estimate = await anyio.to_thread.run_sync(
            lambda: estimate_cost(
                estimate_lines,
                pricer=gw.engine.pricer,
                default_model=spec.model,
                default_max_tokens=gw.settings.default_max_tokens,
            )
        )
    except UnpricedModelError as exc:
        if who.max_budget is not None:
            raise APIError(400, str(exc), param="model", code="model_not_priced") from None
        estimate = 0.0
    batch_id = new_id("ubb")
    owner = {
        "batch_id": batch_id,
        "key_id": who.key_id,
        "input_file_id": spec.input_file_id,
        "completion_window": spec.completion_window,
        "estimated_cost": estimate,
        "created_at": time.time(),
    }
    draft = gw.engine.draft_batch(endpoint=spec.endpoint, metadata=spec.metadata, batch_id=batch_id)
    try:
        earlier = await gw.store.reserve_batch(
            owner, who.max_budget, batch=draft, idempotency=idempotency
        )
    except BudgetExceededError as exc:
        raise APIError(402, str(exc), code="budget_exceeded") from None
    except IdempotencyConflictError as exc:
        raise _conflict(exc) from None
    if earlier is not None:
        return await _view(gw, who, earlier)
    if isinstance(source, Path):
        # Answer now, as OpenAI does: the file is checked and stored after the answer, and
        # a bad line leaves the batch `failed` with `errors` naming it.
        created = batch_object(await gw.engine.get_batch(batch_id, importing=True), owner)
        gw.imports.start(batch_id, gw.engine.import_batch(draft, source, keep_failed=True))
        return created
    # Inline requests came with the request: they are checked before the answer.
    try:
        await gw.engine.import_batch(draft, source)
    except (UnknownProviderError, ConfigurationError) as exc:
        # A provider the registry knows but this deployment has no credentials for.
        # Before InputError, of which an unknown provider is a kind.
        await gw.store.drop_reservation(batch_id)
        message = f"this gateway cannot run that provider: {exc}"
        raise APIError(400, message, param="model", code="model_not_found") from None
    except InputError as exc:
        await gw.store.drop_reservation(batch_id)
        raise _input_error(exc, source) from None
    except BaseException:
        await gw.store.drop_reservation(batch_id)
        raise
    return batch_object(await gw.engine.get_batch(batch_id), owner)


def _conflict(exc: IdempotencyConflictError) -> APIError:
    return APIError(409, str(exc), param="Idempotency-Key", code="idempotency_key_reused")


def _idempotency(key: str | None, who: Principal, body: bytes) -> Idempotency | None:
    """The create's Idempotency-Key, per caller, with a digest of its body (the bytes
    sent: a retry sends the same ones)."""
    if key is None:
        return None
    if not 0 < len(key) <= 255 or not (key.isascii() and key.isprintable()):
        raise APIError(
            400,
            "Idempotency-Key must be 1 to 255 printable ASCII characters",
            param="Idempotency-Key",
        )
    return Idempotency(who.key_id or "", key, hashlib.sha256(body).hexdigest())


async def _view(gw: Gateway, who: Principal, batch_id: str) -> BatchObject:
    """The batch as its caller sees it, `validating` while it is being imported."""
    owner = await _owned(gw, who, batch_id)
    return batch_object(await gw.engine.get_batch(batch_id, importing=True), owner)


def _json_lines(spec: BatchCreate) -> list[dict[str, Any]]:
    lines = []
    for i, item in enumerate(spec.requests or []):
        body = dict(item.body)
        try:
            # Python's JSON parser takes integers of any size and deeper nesting; the
            # store's encoder (and every provider) takes 64 bits and less.
            encode_body(body)
        except ValueRefused as exc:
            param = f"requests[{i}].body"
            raise APIError(400, f"{param} {exc}", param=param) from None
        if spec.model and not body.get("model"):
            body["model"] = spec.model
        lines.append({"custom_id": item.custom_id, "url": item.url or spec.endpoint, "body": body})
    return lines


@router.post(
    "",
    response_model=BatchObject,
    responses=error_responses(402, 409),
)
async def create_batch(
    request: Request,
    gw: GatewayDep,
    who: Caller,
    spec: BatchCreate,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            description="Send a create again with the same key and body (within 24 h) "
            "to get the batch it made instead of a second one.",
        ),
    ] = None,
) -> BatchObject:
    """Create a batch from an uploaded file (`input_file_id`) or inline `requests`.
    Each request's `body.model` (`provider/model`) picks the provider that runs it.

    A file is checked after the answer: the batch is `validating` until it is stored,
    then runs, or ends `failed` with `errors` naming the bad line. Inline requests are
    checked before it (400 naming `requests[i]`)."""
    if spec.endpoint not in ENDPOINTS:
        raise APIError(
            400,
            f"endpoint must be one of {', '.join(ENDPOINTS)}, not {spec.endpoint!r}",
            param="endpoint",
        )
    if (spec.input_file_id is None) == (spec.requests is None):
        raise APIError(
            400,
            "give exactly one of input_file_id (an uploaded file) or requests (inline)",
            param="requests",
        )
    idempotency = _idempotency(idempotency_key, who, await request.body())
    if idempotency is not None:
        # A retry answers from what the first create made, whatever happened since.
        try:
            earlier = await gw.store.idempotent_batch(idempotency)
        except IdempotencyConflictError as exc:
            raise _conflict(exc) from None
        if earlier is not None:
            return await _view(gw, who, earlier)
    if spec.requests is not None:
        lines = _json_lines(spec)
        return await _create(gw, who, lines, lines, spec, idempotency)
    assert spec.input_file_id is not None
    if spec.model is not None:
        raise APIError(
            400,
            "model applies to inline requests only; name the model in each line's body.model",
            param="model",
        )
    row = await gw.store.get_file(spec.input_file_id, who.scope)
    path = file_path(gw, spec.input_file_id)
    if row is None or not path.exists():
        raise APIError(
            400,
            f"no file with id {spec.input_file_id!r}",
            param="input_file_id",
            code="invalid_request",
        )
    return await _create(gw, who, path, jsonl_dicts(str(path)), spec, idempotency)


@router.get("", response_model=BatchList)
async def list_batches(
    gw: GatewayDep,
    who: Caller,
    after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> BatchList:
    """This key's batches (every key's for the master key), newest first."""
    rows = await gw.store.list_owned_batches(who.scope, after=after, limit=limit + 1)
    page = rows[:limit]
    # One read for the whole page: a query or three per batch made large pages slow.
    views = {b.id: b for b in await gw.engine.get_batches([r["batch_id"] for r in page])}
    data = [batch_object(views[r["batch_id"]], r) for r in page if r["batch_id"] in views]
    return BatchList(
        data=data,
        first_id=data[0].id if data else None,
        last_id=data[-1].id if data else None,
        has_more=len(rows) > limit,
    )


async def _owned(gw: Gateway, who: Principal, batch_id: str) -> dict[str, Any]:
    owner = await gw.store.owned_batch(batch_id, who.scope)
    if owner is None:
        raise not_found("batch", batch_id)
    return owner


@router.get("/{batch_id}", response_model=BatchObject)
async def retrieve_batch(gw: GatewayDep, who: Caller, batch_id: str) -> BatchObject:
    return await _view(gw, who, batch_id)


@router.post("/{batch_id}/cancel", response_model=BatchObject)
async def cancel_batch(gw: GatewayDep, who: Caller, batch_id: str) -> BatchObject:
    """Cancel; results that finished first are kept. A finished batch stays as it is."""
    owner = await _owned(gw, who, batch_id)
    return batch_object(await gw.engine.cancel(batch_id, importing=True), owner)


async def _jsonl(gw: Gateway, batch_id: str) -> AsyncIterator[bytes]:
    async for lines in gw.engine.result_lines(batch_id, "unified"):
        yield b"".join(lines)


@router.get(
    "/{batch_id}/results",
    response_model=ResultList,
    responses={
        200: {"content": {"application/x-ndjson": {}}},
        409: {"model": ErrorResponse, "description": "the batch has not finished yet"},
    },
)
async def batch_results(
    request: Request,
    gw: GatewayDep,
    who: Caller,
    batch_id: str,
    after: Annotated[str | None, Query(description="custom_id of the previous page's last")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    format: Annotated[Literal["json", "jsonl"], Query(description="jsonl: stream all")] = "json",
    provider: Annotated[str | None, Query(description="accepted for compatibility")] = None,
) -> ResultList | StreamingResponse:
    """The unified results of a finished batch, in input order: a page, or every one as
    streamed JSONL (`format=jsonl`, or `Accept: application/x-ndjson`)."""
    await _owned(gw, who, batch_id)
    batch = await gw.engine.get_batch(batch_id, importing=True)
    if provider is not None and provider not in known_providers():
        raise APIError(400, f"unknown provider {provider!r}", param="provider")
    if not batch.status.terminal:
        raise APIError(
            409,
            f"batch {batch_id} is {openai_status(batch.status)}; its results are ready once it has "
            "completed, failed, expired or been cancelled",
            code="batch_not_finished",
        )
    if format == "jsonl" or "application/x-ndjson" in request.headers.get("accept", ""):
        return StreamingResponse(_jsonl(gw, batch_id), media_type="application/x-ndjson")
    rows = await gw.store.results_page(batch_id, after=after, limit=limit + 1)
    if rows is None:
        raise APIError(400, f"after: no request {after!r} in batch {batch_id}", param="after")
    data = [result_view(r).as_unified() for r in rows[:limit]]
    return ResultList(
        data=data,
        first_id=data[0]["custom_id"] if data else None,
        last_id=data[-1]["custom_id"] if data else None,
        has_more=len(rows) > limit,
    )
