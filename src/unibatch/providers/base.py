"""The provider interface: what the engine needs from any Batch API.

An adapter speaks its provider's real wire format and translates every vendor error into
`unibatch.errors` at this boundary. Limits and the batch discount are data on its
`ProviderSpec`, so the planner can split work without knowing any provider; request and
response bodies go through its `Translator`.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterable, AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import httpx
import orjson

from unibatch.errors import ConfigurationError, TransientProviderError
from unibatch.providers.spec import ProviderSpec
from unibatch.providers.translate import Translator
from unibatch.types import BatchStatus, ErrorInfo, RequestStatus, Usage


@dataclass(frozen=True, slots=True)
class JobSpec:
    """What one provider batch must run. `tag` finds the batch again after a crash."""

    job_id: str
    model: str
    endpoint: str
    tag: str
    request_count: int
    byte_count: int


class RequestLine:
    """One request as the adapter sends it. `seq` is its position in the batch: an adapter
    whose provider restricts ids may send an id built from it and return `seq` in the
    `ResultRow`, and the engine maps it back to `custom_id`.

    A stored request comes with `data`, its body as the JSON bytes stored at submit; `body`
    is parsed from them on first use only, so an adapter that sends the body unchanged
    (`Translator.verbatim`) writes those bytes out without ever building the dict."""

    __slots__ = ("_body", "custom_id", "data", "seq")

    def __init__(
        self,
        custom_id: str,
        body: dict[str, Any] | None = None,
        seq: int = -1,
        *,
        data: bytes | None = None,
    ) -> None:
        if body is None and data is None:
            raise TypeError("RequestLine needs a body or its JSON bytes")
        self.custom_id = custom_id
        self.seq = seq
        self.data = data
        self._body = body

    @property
    def body(self) -> dict[str, Any]:
        if self._body is None:
            assert self.data is not None
            self._body = orjson.loads(self.data)
        return self._body

    def __repr__(self) -> str:
        return f"RequestLine({self.custom_id!r}, seq={self.seq})"


@dataclass(slots=True)
class ProviderJob:
    """A provider batch as last seen, in our vocabulary."""

    id: str
    status: BatchStatus
    native_status: str
    # The provider's own progress counters, where it reports them while the batch runs:
    # requests answered, failed (errored or expired), and cancelled.
    completed: int = 0
    failed: int = 0
    cancelled: int = 0
    total: int = 0
    input_file_id: str | None = None
    output_file_id: str | None = None
    error_file_id: str | None = None
    errors: list[str] = field(default_factory=list)
    tag: str | None = None


@dataclass(slots=True)  # not frozen: built once per result row, and frozen init costs 3x
class ResultRow:
    """One result line, normalised. `body` is the response in the lingua franca.

    Either `custom_id` is the user's id, or it is None and `seq` names the request."""

    custom_id: str | None
    status: RequestStatus
    status_code: int | None = None
    body: dict[str, Any] | None = None
    error: ErrorInfo | None = None
    usage: Usage = field(default_factory=Usage)
    row_id: str | None = None
    request_id: str | None = None
    # The native row as received, when `body` and the fields above cannot rebuild it.
    raw: bytes | None = None
    seq: int | None = None


class Provider(abc.ABC):
    """One provider's Batch API. Implementations are async and hold their own HTTP client.

    An adapter is built for one `ProviderSpec` (its name, limits, key variables), so one
    adapter class can serve several providers that speak the same wire format."""

    # Translates request and response bodies; the default passes them through unchanged.
    translator: ClassVar[Translator] = Translator()

    def __init__(self, spec: ProviderSpec) -> None:
        self.spec = spec

    @property
    def name(self) -> str:
        return self.spec.name

    @classmethod
    @abc.abstractmethod
    def from_env(
        cls,
        spec: ProviderSpec,
        env: Mapping[str, str],
        *,
        timeout: float = 60.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> Provider:
        """Build the adapter from the provider's usual variables; raise if the key is missing.
        `transport` replaces the network (tests, proxies), as in httpx."""

    @classmethod
    def check_env(cls, spec: ProviderSpec, env: Mapping[str, str]) -> None:
        """Raise `ConfigurationError` now if `env` lacks a setting the adapter needs beyond
        its key and base URL, so a submit stops before anything is stored."""
        return None

    @classmethod
    def min_requests(cls, spec: ProviderSpec, env: Mapping[str, str]) -> int:
        """The fewest requests one provider batch may hold (the spec's limit unless the
        adapter reads a setting for it)."""
        return spec.batch_limits.min_requests if spec.batch_limits else 1

    @abc.abstractmethod
    async def submit(self, spec: JobSpec, lines: AsyncIterable[RequestLine]) -> ProviderJob:
        """Upload the requests and create the batch, tagged with `spec.tag`."""

    @abc.abstractmethod
    async def find(
        self, tag: str, *, since: float, request_count: int | None = None
    ) -> ProviderJob | None:
        """The batch created with `tag` after `since` (Unix seconds), if any (crash recovery).
        `request_count` is the job's size, for providers whose batches carry no tag (a
        candidate is matched on it and proven by its results: see `ForeignBatchError`)."""

    @abc.abstractmethod
    async def get(self, job: ProviderJob) -> ProviderJob:
        """The batch's current state."""

    @abc.abstractmethod
    async def cancel(self, job: ProviderJob) -> ProviderJob:
        """Ask the provider to cancel; the batch usually passes through `cancelling`."""

    @abc.abstractmethod
    def results(self, job: ProviderJob) -> AsyncIterator[list[ResultRow]]:
        """Stream every result row of a finished batch (successes and errors), a list at
        a time (e.g. what one network read brought): a million rows cost a few thousand
        awaits, not a million."""

    @abc.abstractmethod
    async def aclose(self) -> None:
        """Release the HTTP client."""

    async def realtime(self, endpoint: str, model: str, line: RequestLine) -> ResultRow:
        """Send one request for `model` (the bare name) to the provider's ordinary
        synchronous endpoint and return its answer as the `ResultRow` a batch result line
        would give.

        The request goes through the same translation as a batch line. A provider error
        about the request itself (400, content policy) comes back as an errored row; a rate
        limit, overload, server error or timeout raises `TransientProviderError` (with the
        provider's `retry_after`), for the caller to try again later."""
        raise ConfigurationError(f"{self.name} has no real-time endpoint in unibatch")

    def queue_refusal(self, job: ProviderJob) -> str | None:
        """The queue limit a failed batch was refused for (`enqueued_tokens`,
        `queued_requests` or `concurrent_batches`), or None when it failed for another
        reason. A refused batch is not a failure: its job waits and is sent again."""
        return None

    def refused_at_create(self, error: TransientProviderError) -> str | None:
        """The queue limit a create call was refused for (the provider answered it with a
        rate-limit error naming its batch queue), or None for any other error."""
        return None

    @classmethod
    def line_bytes(cls, line: RequestLine, encoded: bytes | None = None) -> int:
        """Bytes this request adds to the provider's upload, for the planner's byte limit.
        `encoded` is the body already serialised, when the caller has it. Adapters that
        translate override this to count the request as sent."""
        body = encoded if encoded is not None else orjson.dumps(line.body)
        # 64 covers the envelope around the body (custom_id key, method, url).
        return len(body) + len(line.custom_id) + 64
