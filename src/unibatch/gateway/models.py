"""Request and response bodies. They give `/openapi.json` its schemas; field names follow
OpenAI's files and batches API so its SDKs parse our answers unchanged."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from unibatch.gateway.validation import Text

Metadata = dict[str, str]
# OpenAI's limits: at most 16 pairs, keys up to 64 characters, values up to 512.
MetadataIn = dict[
    Annotated[str, StringConstraints(max_length=64)],
    Annotated[str, StringConstraints(max_length=512)],
]


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorDetail


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries for error answers, all in OpenAI's error shape."""
    return {status: {"model": ErrorResponse} for status in statuses}


class FileObject(BaseModel):
    id: str
    object: Literal["file"] = "file"
    bytes: int
    created_at: int
    filename: str
    purpose: str
    status: str = "processed"
    expires_at: int | None = None


class FileList(BaseModel):
    object: Literal["list"] = "list"
    data: list[FileObject]
    first_id: str | None = None
    last_id: str | None = None
    has_more: bool = False


class FileDeleted(BaseModel):
    id: str
    object: Literal["file"] = "file"
    deleted: bool = True


class JsonRequest(BaseModel):
    """One request of the JSON API: the short line (the OpenAI line's fields allowed too)."""

    model_config = ConfigDict(extra="forbid")
    custom_id: str = Field(min_length=1, max_length=512)
    body: dict[str, Any]
    method: Literal["POST"] = "POST"
    url: str | None = None


class BatchCreate(BaseModel):
    """Either OpenAI's `{input_file_id, endpoint, completion_window, metadata}` or the
    JSON API's `{model, requests: [...], completion_window, metadata}`."""

    model_config = ConfigDict(extra="forbid")
    input_file_id: Text | None = None
    requests: list[JsonRequest] | None = Field(default=None, min_length=1)
    model: str | None = Field(
        default=None, description="provider/model for requests whose body names none"
    )
    endpoint: str = "/v1/chat/completions"
    completion_window: Literal["24h"] = "24h"
    metadata: MetadataIn | None = Field(default=None, max_length=16)
    output_expires_after: dict[str, Any] | None = None
    max_attempts: int | None = Field(
        default=None,
        ge=1,
        le=100,
        description="Times a request that fails in a retryable way is sent in all, in "
        "follow-up jobs of the batch (default 3; 1: no retries). With OpenAI's SDK, "
        'metadata {"max_attempts": "N"} says the same.',
    )
    fallback_models: list[str] | None = Field(
        default=None,
        max_length=8,
        description="Models (provider/model) the unfinished requests of a provider batch "
        "that fails or is stuck move to, in order. With OpenAI's SDK, metadata "
        '{"fallback_models": "anthropic/claude-haiku-4-5,openai/gpt-4o"} says the same.',
    )
    max_cost: float | None = Field(
        default=None,
        ge=0,
        description="Spend cap in USD: a batch estimated at batch prices to cost more is "
        "refused before anything is sent; a running one is cancelled, its finished "
        "results kept, once its cost plus the estimate of the rest passes it. Metadata "
        '{"max_cost": "5.00"} says the same.',
    )
    stuck_after: float | None = Field(
        default=None,
        gt=0,
        description="Seconds a provider batch may stay validating or in progress before "
        'it fails over (default 6 h; needs fallback_models). Metadata {"stuck_after": '
        '"6h"} says the same.',
    )
    cache: bool | None = Field(
        default=None,
        description="Answer from the store each request whose model, endpoint and body "
        "match one of this key's that already succeeded (not sent, cost 0); default: the "
        'key\'s setting. Metadata {"cache": "true"} says the same.',
    )
    cache_ttl: float | None = Field(
        default=None,
        ge=0,
        allow_inf_nan=False,
        description="Seconds: the oldest answer the cache takes (default: the key's, else "
        'any). Metadata {"cache_ttl": "7d"} says the same.',
    )
    deadline: str | float | None = Field(
        default=None,
        description='When the batch must have ended: a duration from now ("2h"), an ISO '
        '8601 time with its timezone ("2026-12-01T09:00:00Z") or epoch seconds. In time '
        "for it the provider batch is cancelled, what finished is kept and the rest runs "
        'in real time at list price. Metadata {"deadline": "2h"} says the same.',
    )


class RequestCounts(BaseModel):
    total: int
    completed: int
    failed: int


class InputTokensDetails(BaseModel):
    cached_tokens: int


class OutputTokensDetails(BaseModel):
    reasoning_tokens: int


class BatchUsage(BaseModel):
    input_tokens: int
    input_tokens_details: InputTokensDetails
    output_tokens: int
    output_tokens_details: OutputTokensDetails
    total_tokens: int


class BatchErrorItem(BaseModel):
    code: str | None = None
    message: str | None = None
    param: str | None = None
    line: int | None = None


class BatchErrors(BaseModel):
    object: Literal["list"] = "list"
    data: list[BatchErrorItem]


class BatchCost(BaseModel):
    input: float
    output: float
    total: float
    currency: str


class BatchObject(BaseModel):
    """OpenAI's Batch, plus `providers`, `cost` and the deadline (ours; the SDK keeps
    extra fields)."""

    id: str
    object: Literal["batch"] = "batch"
    endpoint: str
    input_file_id: str | None
    completion_window: str
    status: str
    output_file_id: str | None = None
    error_file_id: str | None = None
    errors: BatchErrors | None = None
    created_at: int
    in_progress_at: int | None = None
    expires_at: int | None = None
    finalizing_at: int | None = None
    completed_at: int | None = None
    failed_at: int | None = None
    expired_at: int | None = None
    cancelling_at: int | None = None
    cancelled_at: int | None = None
    request_counts: RequestCounts
    usage: BatchUsage
    metadata: Metadata | None = None
    providers: list[str]
    cost: BatchCost
    deadline: int | None = Field(
        default=None, description="When the batch must have ended (Unix seconds), if given."
    )
    deadline_switched_at: int | None = Field(
        default=None,
        description="When it stopped waiting for the provider's Batch API to meet the "
        "deadline; its unfinished requests run in real time from then on.",
    )


class BatchList(BaseModel):
    object: Literal["list"] = "list"
    data: list[BatchObject]
    first_id: str | None = None
    last_id: str | None = None
    has_more: bool = False


class RetryRequest(BaseModel):
    """Send the failed or unfinished requests of an ended batch again."""

    model_config = ConfigDict(extra="forbid")
    statuses: list[Literal["errored", "expired", "cancelled"]] | None = Field(
        default=None, description="Which results to send again (default: all three)."
    )
    model: str | None = Field(
        default=None, description="provider/model to send them to instead (its rules apply)"
    )
    max_attempts: int | None = Field(
        default=None, ge=1, le=100, description="Attempts each gets from here (default 3)."
    )


class RefusedRequest(BaseModel):
    custom_id: str
    message: str


class RetryResponse(BaseModel):
    """The batch, under way again, how many requests went out, and those left as they
    were because the new model's rules refuse them."""

    object: Literal["batch.retry"] = "batch.retry"
    batch: BatchObject
    retried: int
    refused: list[RefusedRequest]


class ResultList(BaseModel):
    """A page of unified results (`custom_id`, `status`, `response`, `usage`, `cost`...)."""

    object: Literal["list"] = "list"
    data: list[dict[str, Any]]
    first_id: str | None = None
    last_id: str | None = None
    has_more: bool = False


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Text = Field(min_length=1, max_length=255)
    # JSON's 1e309 parses as infinity: a budget must be a real amount of money.
    max_budget: float | None = Field(
        default=None, ge=0, allow_inf_nan=False, description="USD at batch prices"
    )
    cache: bool = Field(
        default=False,
        description="Use the result cache for this key's batches unless a batch says "
        "otherwise: a request that already succeeded for this key is answered from the "
        "store, not sent, at cost 0.",
    )
    cache_ttl: float | None = Field(
        default=None,
        ge=0,
        allow_inf_nan=False,
        description="Seconds: the oldest answer the key's cache takes (default: any).",
    )


class KeyObject(BaseModel):
    id: str
    object: Literal["key"] = "key"
    name: str
    key_hint: str
    created_at: int
    revoked_at: int | None = None
    max_budget: float | None = None
    spent: float = 0.0
    reserved: float = 0.0
    cache: bool = False
    cache_ttl: float | None = None


class KeyCreated(KeyObject):
    key: str = Field(description="The key itself, shown only in this answer.")


class KeyList(BaseModel):
    object: Literal["list"] = "list"
    data: list[KeyObject]


class KeyDeleted(BaseModel):
    id: str
    object: Literal["key"] = "key"
    deleted: bool = True


class UsageRow(BaseModel):
    key_id: str | None
    key_name: str | None
    provider: str
    model: str
    requests: int
    input_tokens: int
    output_tokens: int
    cached_tokens: int
    reasoning_tokens: int
    cost: float


class UsageList(BaseModel):
    object: Literal["list"] = "list"
    data: list[UsageRow]


class Health(BaseModel):
    """`unavailable` (with HTTP 503) when this server should run a worker and it is not
    running or cannot reach the database."""

    status: Literal["ok", "unavailable"] = "ok"
    worker: bool
    worker_last_loop_seconds: float | None = None
    worker_error: str | None = None


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: Text = Field(min_length=1, max_length=2000, description="http:// or https:// URL")
    secret: Text | None = Field(
        default=None,
        max_length=255,
        description="'whsec_' + base64 of 16+ bytes; default: a fresh one, shown once",
    )


class WebhookObject(BaseModel):
    id: str
    object: Literal["webhook_endpoint"] = "webhook_endpoint"
    url: str
    created_at: int
    # Only in the answer to the create: it is not shown again.
    secret: str | None = None


class WebhookList(BaseModel):
    object: Literal["list"] = "list"
    data: list[WebhookObject]


class WebhookDeleted(BaseModel):
    id: str
    object: Literal["webhook_endpoint"] = "webhook_endpoint"
    deleted: bool = True
