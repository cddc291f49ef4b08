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
    """OpenAI's Batch, plus `providers` and `cost` (ours; the SDK keeps extra fields)."""

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


class BatchList(BaseModel):
    object: Literal["list"] = "list"
    data: list[BatchObject]
    first_id: str | None = None
    last_id: str | None = None
    has_more: bool = False


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
