"""HTTP plumbing shared by adapters: one place where httpx errors become ours, and the
base class of every adapter over an HTTP API."""

from __future__ import annotations

import email.utils
import tempfile
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import IO, Any, Self

import httpx
import orjson

from unibatch.errors import LimitError, PermanentProviderError, TransientProviderError
from unibatch.metrics.counters import PROVIDER_CALLS, PROVIDER_SECONDS
from unibatch.providers.base import JobSpec, Provider, ProviderJob, RequestLine
from unibatch.providers.spec import ProviderSpec
from unibatch.providers.translate import NATIVE_FLAG
from unibatch.providers.upstream import Upstream

# How a body flagged as native starts its flag's key (`NATIVE_FLAG`): such a body loses
# the flag on the way out, so it is encoded again. The quotes keep the same words inside a
# string value (where they would be escaped) from matching; a false match only costs time.
NATIVE_KEY = b'"' + NATIVE_FLAG.encode() + b'"'
# Uploads above this size spill from memory to a temporary file.
SPOOL_BYTES = 1024 * 1024
# Bytes of upload lines gathered before one write to the spool: below malloc's mmap
# threshold (128 KB), as larger blocks left more memory behind with uploads in parallel.
_UPLOAD_BLOCK = 64 * 1024
_TRANSIENT_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 529})


def retry_after_seconds(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value)
        return max(0.0, parsed.timestamp() - time.time())


def raise_for_status(provider: str, response: httpx.Response, upstream: Upstream) -> None:
    """Our provider error for a failed answer: the provider's message and its path,
    never our base URL (see `Upstream`)."""
    if response.is_success:
        return
    try:
        detail: Any = response.json()
    except ValueError:
        detail = response.text[:500]
    where = upstream.where(response.request.method, response.request.url)
    message = upstream.scrub(f"{provider}: HTTP {response.status_code} on {where}: {detail}")
    if response.status_code in _TRANSIENT_STATUS:
        raise TransientProviderError(
            message, status_code=response.status_code, retry_after=retry_after_seconds(response)
        )
    raise PermanentProviderError(message, status_code=response.status_code)


async def send(
    client: httpx.AsyncClient,
    provider: str,
    method: str,
    url: str,
    *,
    upstream: Upstream,
    **kwargs: Any,
) -> httpx.Response:
    """Send a request; every failure comes back as one of our provider errors."""
    try:
        response = await client.request(method, url, **kwargs)
    except httpx.TimeoutException as exc:
        where = upstream.where(method, url)
        raise TransientProviderError(f"{provider}: timeout on {where}") from exc
    except httpx.TransportError as exc:
        where = upstream.where(method, url)
        raise TransientProviderError(f"{provider}: {type(exc).__name__} on {where}") from exc
    raise_for_status(provider, response, upstream)
    return response


class MeteredTransport(httpx.AsyncBaseTransport):
    """Counts every request to a provider by its answer's status code, and times it to
    the answer's headers: at the transport, so streamed downloads and calls made
    outside `send` count too, and a timeout or reset counts as `error`."""

    def __init__(self, provider: str, inner: httpx.AsyncBaseTransport) -> None:
        self.provider, self.inner = provider, inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        started = time.perf_counter()
        code = "error"
        try:
            response = await self.inner.handle_async_request(request)
            code = str(response.status_code)
            return response
        finally:
            PROVIDER_SECONDS.labels(self.provider).observe(time.perf_counter() - started)
            PROVIDER_CALLS.labels(self.provider, code).inc()

    async def aclose(self) -> None:
        await self.inner.aclose()


def http_client(
    base_url: str,
    headers: Mapping[str, str],
    timeout: float,
    transport: httpx.AsyncBaseTransport | None = None,
    *,
    provider: str = "unknown",
    **kwargs: Any,
) -> httpx.AsyncClient:
    """The HTTP client every adapter uses: base URL kept as a prefix, bounded connects,
    every call counted (`MeteredTransport`)."""
    return httpx.AsyncClient(
        base_url=base_url.rstrip("/") + "/",
        headers=dict(headers),
        timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
        transport=MeteredTransport(provider, transport or httpx.AsyncHTTPTransport()),
        **kwargs,
    )


class HttpProvider(Provider):
    """An adapter over one HTTP API: key and base URL from the SDK's variables, one client.
    Subclasses add their own settings as keyword arguments and read them in `from_env`."""

    def __init__(
        self,
        spec: ProviderSpec,
        api_key: str,
        base_url: str | None = None,
        *,
        timeout: float = 60.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(spec)
        self.upstream = Upstream(base_url or spec.default_base_url, spec.default_base_url)
        self._client = http_client(
            base_url or spec.default_base_url,
            self.auth_headers(api_key),
            timeout,
            transport,
            provider=spec.name,
            **self.client_options(),
        )

    @classmethod
    def auth_headers(cls, api_key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {api_key}"}

    def client_options(self) -> dict[str, Any]:
        """More `httpx.AsyncClient` arguments (event hooks, ...) for this provider."""
        return {}

    @classmethod
    def from_env(
        cls,
        spec: ProviderSpec,
        env: Mapping[str, str],
        *,
        timeout: float = 60.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> Self:
        return cls(
            spec,
            spec.api_key(env),
            spec.base_url(env),
            timeout=timeout,
            transport=transport,
            **cls.env_options(env),
        )

    @classmethod
    def env_options(cls, env: Mapping[str, str]) -> dict[str, Any]:
        """This provider's own constructor settings, read from the environment."""
        return {}

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        return await send(self._client, self.name, method, url, upstream=self.upstream, **kwargs)

    async def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        return (await self._send(method, path, **kwargs)).json()

    async def post_realtime(self, path: str, payload: Any, **kwargs: Any) -> httpx.Response:
        """POST one real-time request. A timeout, a dropped connection and a transient
        status (429, 5xx, ...) raise `TransientProviderError` (429 and 503 with the
        provider's Retry-After); any other answer is returned for the adapter to read,
        errors included: a 400 is this request's result, not a failure of the call."""
        try:
            response = await self._client.post(
                path,
                content=orjson.dumps(payload),
                headers={"content-type": "application/json"},
                **kwargs,
            )
        except httpx.TimeoutException as exc:
            where = self.upstream.where("POST", path)
            raise TransientProviderError(f"{self.name}: timeout on {where}") from exc
        except httpx.TransportError as exc:
            where = self.upstream.where("POST", path)
            raise TransientProviderError(f"{self.name}: {type(exc).__name__} on {where}") from exc
        if response.status_code in _TRANSIENT_STATUS:
            raise_for_status(self.name, response, self.upstream)
        return response

    async def upload_batch_file(
        self,
        path: str,
        spec: JobSpec,
        lines: AsyncIterable[RequestLine],
        *,
        method_and_url: bool = True,
    ) -> str:
        """Upload the job as a JSONL file with purpose `batch` (OpenAI's Files API and the
        APIs shaped like it); the file's id."""
        async with self.batch_file(spec, lines, method_and_url=method_and_url) as upload:
            file_obj = await self._call(
                "POST",
                path,
                data={"purpose": "batch"},
                files={"file": (f"{spec.tag}.jsonl", upload, "application/jsonl")},
            )
        return str(file_obj["id"])

    async def cancel_or_get(
        self, path: str, job: ProviderJob, read: Callable[[Any], ProviderJob]
    ) -> ProviderJob:
        """POST the cancel at `path`, the answer read by `read`. A batch that has just
        ended cannot be cancelled (a 400 or 409): its state is what we want then."""
        try:
            return read(await self._call("POST", path))
        except PermanentProviderError as exc:
            if exc.status_code in (400, 409):
                return await self.get(job)
            raise

    def check_limits(self, count: int, size: int) -> None:
        """Refuse, before any upload, a job past the provider's request or byte limit."""
        limits = self.spec.batch_limits
        if limits is None:
            raise LimitError(f"{self.name} has no Batch API")
        if count > limits.max_requests:
            raise LimitError(
                f"{self.name}: {count} requests in one batch, the limit is "
                f"{limits.max_requests}; split the input into files of at most that many lines"
            )
        if size > limits.max_bytes:
            raise LimitError(
                f"{self.name}: the batch is {size / 1e6:.1f} MB, the limit is "
                f"{limits.max_bytes / 1e6:.0f} MB; split the input into smaller files"
            )

    @asynccontextmanager
    async def batch_file(
        self,
        spec: JobSpec,
        lines: AsyncIterable[RequestLine],
        *,
        method_and_url: bool = True,
    ) -> AsyncIterator[IO[bytes]]:
        """The job as an OpenAI-style JSONL upload of translated bodies, spilled to disk
        past a few MB so a 200 MB batch never sits in memory; checked against the limits,
        rewound. Where the translator sends bodies as they are, a stored body's bytes are
        written out unparsed: byte for byte what encoding the parsed body would give, as
        orjson writes the same bytes for a document it parsed from its own output."""
        native = self.translator.to_native
        verbatim = self.translator.verbatim
        # Every line is {"custom_id":..,"method":"POST","url":..,"body":..} as orjson
        # writes it; a body sent as stored is spliced in as bytes.
        # Without `method_and_url` a line is `{"custom_id":..,"body":..}` (Mistral's, whose
        # job names the endpoint).
        middle = b',"method":"POST","url":' + orjson.dumps(spec.endpoint) + b',"body":'
        if not method_and_url:
            middle = b',"body":'
        with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as upload:
            count = 0
            # Lines gather in a list written in blocks: three spool writes per line (each
            # a Python-level call with a rollover check) were half the upload's CPU time.
            block: list[bytes] = []
            pending = 0
            async for line in lines:
                count += 1
                data = line.data
                if verbatim and data is not None and NATIVE_KEY not in data:
                    block += (b'{"custom_id":', orjson.dumps(line.custom_id), middle, data)
                    block.append(b"}\n")
                    pending += len(data) + 100
                else:
                    entry: dict[str, Any] = {"custom_id": line.custom_id}
                    if method_and_url:
                        entry.update(method="POST", url=spec.endpoint)
                    entry["body"] = native(spec.endpoint, line.body)
                    encoded = orjson.dumps(entry, option=orjson.OPT_APPEND_NEWLINE)
                    block.append(encoded)
                    pending += len(encoded)
                if pending >= _UPLOAD_BLOCK:
                    upload.write(b"".join(block))
                    block, pending = [], 0
            upload.write(b"".join(block))
            self.check_limits(count, upload.tell())
            upload.seek(0)
            yield upload

    async def stream_lines(
        self, path: str, params: Mapping[str, str] | None = None
    ) -> AsyncIterator[list[bytes]]:
        """A JSONL download, streamed: the complete non-blank lines of each network chunk.
        Lists rather than single lines, so a million-row file costs one await per chunk."""
        try:
            async with self._client.stream("GET", path, params=params) as response:
                if not response.is_success:
                    await response.aread()
                    raise_for_status(self.name, response, self.upstream)
                rest = b""
                async for chunk in response.aiter_bytes():
                    *complete, rest = (rest + chunk).split(b"\n")
                    # isspace() stops at the first visible byte; strip() would copy the line.
                    lines = [line for line in complete if line and not line.isspace()]
                    if lines:
                        yield lines
                if rest.strip():
                    yield [rest]
        except httpx.TransportError as exc:
            where = self.upstream.where("GET", path)
            raise TransientProviderError(f"{self.name}: {type(exc).__name__} on {where}") from exc
