"""HTTP plumbing shared by adapters: one place where httpx errors become ours."""

from __future__ import annotations

import email.utils
import time
from typing import Any

import httpx

from unibatch.errors import PermanentProviderError, TransientProviderError

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


def raise_for_status(provider: str, response: httpx.Response) -> None:
    if response.is_success:
        return
    try:
        detail: Any = response.json()
    except ValueError:
        detail = response.text[:500]
    message = (
        f"{provider}: HTTP {response.status_code} on {response.request.method} "
        f"{response.request.url.path}: {detail}"
    )
    if response.status_code in _TRANSIENT_STATUS:
        raise TransientProviderError(
            message, status_code=response.status_code, retry_after=retry_after_seconds(response)
        )
    raise PermanentProviderError(message, status_code=response.status_code)


async def send(
    client: httpx.AsyncClient, provider: str, method: str, url: str, **kwargs: Any
) -> httpx.Response:
    """Send a request; every failure comes back as one of our provider errors."""
    try:
        response = await client.request(method, url, **kwargs)
    except httpx.TimeoutException as exc:
        raise TransientProviderError(f"{provider}: timeout on {method} {url}") from exc
    except httpx.TransportError as exc:
        raise TransientProviderError(f"{provider}: {type(exc).__name__} on {method} {url}") from exc
    raise_for_status(provider, response)
    return response
