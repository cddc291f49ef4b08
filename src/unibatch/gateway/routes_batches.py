"""`/v1/batches`: OpenAI's batches API and the JSON API (`requests` in the body,
`/results` to read them), over the engine."""

from __future__ import annotations

import hashlib
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import anyio
from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse

from unibatch import durations
from unibatch.engine.ids import new_id
from unibatch.engine.inputs import Source
from unibatch.engine.limits import ValueRefused, encode_body
from unibatch.engine.views import result_view, state_view
from unibatch.errors import (
    BudgetExceededError,
    ConfigurationError,
    IdempotencyConflictError,
    InputError,
    NotEndedError,
    UnknownProviderError,
    UnpricedModelError,
)
from unibatch.gateway.auth import BearerToken, Caller, Principal, authenticated_read
from unibatch.gateway.caching import cache_options
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
    RefusedRequest,
    ResultList,
    RetryRequest,
    RetryResponse,
    error_responses,
)
from unibatch.gateway.routes_files import file_path
from unibatch.gateway.store import Idempotency, owned_batch_state
from unibatch.providers.registry import known_providers
from unibatch.store.ops import BatchState

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
    if who.max_budget is not None:
        await _check_lines(gw, source, spec)
    try:
        estimate = await anyio.to_thread.run_sync(
            lambda: estimate_cost(
                estimate_lines,
                pricer=gw.engine.pricer,
                default_model=spec.model,
                default_max_tokens=gw.settings.default_max_tokens,
                endpoint=spec.endpoint,
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
    fallbacks, stuck_after = _failover(spec)
    cache = cache_options(spec, who)
    hooks = await _webhooks(gw, who, spec)
    try:
        draft = gw.engine.draft_batch(
            endpoint=spec.endpoint,
            metadata=spec.metadata,
            max_attempts=_max_attempts(spec),
            fallback_models=fallbacks,
            stuck_after=stuck_after,
            deadline=_deadline(spec),
            batch_id=batch_id,
            webhooks=hooks,
            max_cost=_max_cost(spec),
        )
    except (UnknownProviderError, ConfigurationError, InputError) as exc:
        param = getattr(exc, "field", None) or "fallback_models"
        raise APIError(400, str(exc), param=param, code="invalid_value") from None
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
        work = gw.engine.import_batch(draft, source, keep_failed=True, **cache)
        gw.imports.start(batch_id, work)
        return created
    # Inline requests came with the request: they are checked before the answer.
    try:
        await gw.engine.import_batch(draft, source, **cache)
    except (UnknownProviderError, ConfigurationError) as exc:
        # Before InputError, of which an unknown provider is a kind.
        await gw.store.drop_reservation(batch_id)
        raise _unrunnable(exc) from None
    except InputError as exc:
        await gw.store.drop_reservation(batch_id)
        raise _input_error(exc, source) from None
    except BaseException:
        await gw.store.drop_reservation(batch_id)
        raise
    return batch_object(await gw.engine.get_batch(batch_id), owner)


async def _check_lines(gw: Gateway, source: Source, spec: BatchCreate) -> None:
    """Every line checked before the budget is: a key with a budget reads the whole input
    for the estimate anyway, and a bad line must get 400 naming it, not a 402 for an
    estimate of lines that would never run."""
    try:
        await anyio.to_thread.run_sync(lambda: gw.engine.check_requests(source, model=spec.model))
    except (UnknownProviderError, ConfigurationError) as exc:
        raise _unrunnable(exc) from None
    except InputError as exc:
        raise _input_error(exc, source) from None


def _unrunnable(exc: Exception) -> APIError:
    """A provider the registry knows but this deployment has no credentials for."""
    message = f"this gateway cannot run that provider: {exc}"
    return APIError(400, message, param="model", code="model_not_found")


async def _webhooks(gw: Gateway, who: Principal, spec: BatchCreate) -> list[str]:
    """The endpoints the batch reports to: the caller's, and `metadata.webhook_url`, which
    must be one of them (a virtual key's receiver needs the secret that registration
    shows); the master key may name any URL when the deployment has a webhook secret."""
    url = (spec.metadata or {}).get("webhook_url")
    try:
        hooks, _ = await gw.engine.webhook_targets(url, key_id=who.key_id, configured=who.is_master)
    except InputError as exc:
        raise APIError(
            400, exc.detail, param="metadata.webhook_url", code="invalid_value"
        ) from None
    return hooks


Number = TypeVar("Number", int, float)


def _setting(
    spec: BatchCreate, name: str, parse: Callable[[str], Number | None], wants: str
) -> Number | None:
    """`name` of the JSON API, or of the metadata (all OpenAI's create takes); given
    both ways, the two must agree."""
    field: Number | None = getattr(spec, name)
    given = (spec.metadata or {}).get(name)
    if given is None:
        return field
    value = parse(given)
    if value is None:
        raise APIError(
            400, f"metadata {name} must be {wants}, not {given!r}", param=f"metadata.{name}"
        )
    if field is not None and field != value:
        raise APIError(400, f"{name} and metadata {name} disagree", param=name)
    return value


def _attempts(text: str) -> int | None:
    try:
        value = int(text)
    except ValueError:
        return None
    return value if 1 <= value <= 100 else None


def _usd(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if value >= 0 else None  # NaN too


def _max_attempts(spec: BatchCreate) -> int | None:
    return _setting(spec, "max_attempts", _attempts, "a whole number from 1 to 100")


def _max_cost(spec: BatchCreate) -> float | None:
    return _setting(spec, "max_cost", _usd, "an amount in USD of at least 0")


def _deadline(spec: BatchCreate) -> str | float | None:
    """`deadline` of the JSON API, or of the metadata (checked by the engine)."""
    given = (spec.metadata or {}).get("deadline")
    if given is None:
        return spec.deadline
    if spec.deadline is not None and spec.deadline != given:
        raise APIError(400, "deadline and metadata deadline disagree", param="deadline")
    return given


def _failover(spec: BatchCreate) -> tuple[list[str] | None, float | None]:
    """`fallback_models` and `stuck_after` of the JSON API, or of the metadata (a comma
    list, and a duration such as "6h")."""
    meta = spec.metadata or {}
    fallbacks = spec.fallback_models
    listed = meta.get("fallback_models")
    if listed is not None:
        named = [m.strip() for m in listed.split(",") if m.strip()]
        if fallbacks is not None and fallbacks != named:
            raise APIError(
                400,
                "fallback_models and metadata fallback_models disagree",
                param="fallback_models",
            )
        fallbacks = named
    stuck_after = spec.stuck_after
    given = meta.get("stuck_after")
    if given is not None:
        try:
            value = durations.seconds(given)
        except ValueError as exc:
            raise APIError(
                400, f"metadata stuck_after: {exc}", param="metadata.stuck_after"
            ) from None
        if stuck_after is not None and stuck_after != value:
            raise APIError(
                400, "stuck_after and metadata stuck_after disagree", param="stuck_after"
            )
        stuck_after = value
    return fallbacks, stuck_after


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
    found = await gw.store.read(lambda conn: owned_batch_state(conn, batch_id, who.scope))
    return _shown(batch_id, found)


def _shown(batch_id: str, found: tuple[dict[str, Any], BatchState] | None) -> BatchObject:
    if found is None:
        raise not_found("batch", batch_id)
    owner, state = found
    return batch_object(state_view(state), owner)


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
async def retrieve_batch(gw: GatewayDep, token: BearerToken, batch_id: str) -> BatchObject:
    # What clients poll: the key and the batch are read in one go.
    _, found = await authenticated_read(
        gw, token, lambda conn, who: owned_batch_state(conn, batch_id, who.scope)
    )
    return _shown(batch_id, found)


@router.post("/{batch_id}/cancel", response_model=BatchObject)
async def cancel_batch(gw: GatewayDep, who: Caller, batch_id: str) -> BatchObject:
    """Cancel; results that finished first are kept. A finished batch stays as it is."""
    owner = await _owned(gw, who, batch_id)
    return batch_object(await gw.engine.cancel(batch_id, importing=True), owner)


@router.post("/{batch_id}/retry", response_model=RetryResponse, responses=error_responses(409))
async def retry_batch(
    gw: GatewayDep, who: Caller, batch_id: str, spec: RetryRequest | None = None
) -> RetryResponse:
    """Send the failed or unfinished requests of an ended batch again, into the same
    batch (its results then hold the final answer per custom_id), optionally on another
    model. A unibatch extension; the batch is `in_progress` again until they end.
    Requests the new model's rules refuse stay as they were and are listed in
    `refused`. Not charged against the key's budget in advance."""
    spec = spec or RetryRequest()
    owner = await _owned(gw, who, batch_id)
    try:
        outcome = await gw.engine.retry(
            batch_id, statuses=spec.statuses, model=spec.model, max_attempts=spec.max_attempts
        )
    except (UnknownProviderError, ConfigurationError) as exc:
        message = f"this gateway cannot run that model: {exc}"
        raise APIError(400, message, param="model", code="model_not_found") from None
    except NotEndedError as exc:
        raise APIError(409, exc.detail, code="batch_not_finished") from None
    except InputError as exc:
        raise APIError(400, exc.detail, param=exc.field) from None
    batch = batch_object(await gw.engine.get_batch(batch_id), owner)
    refused = [RefusedRequest(custom_id=r.custom_id, message=r.message) for r in outcome.refused]
    return RetryResponse(batch=batch, retried=outcome.retried, refused=refused)


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
    page = rows[:limit]
    retried = [r["custom_id"] for r in page if r["attempts"] > 1]
    history = await gw.store.history(batch_id, retried) if retried else {}
    data = [result_view(r, history.get(r["custom_id"], ())).as_unified() for r in page]
    return ResultList(
        data=data,
        first_id=data[0]["custom_id"] if data else None,
        last_id=data[-1]["custom_id"] if data else None,
        has_more=len(rows) > limit,
    )
