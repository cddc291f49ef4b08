"""The result cache: a request already answered is not sent again.

A request's cache key is the SHA-256 of what decides its answer: the provider, the model
(as sent), the endpoint and the body as JSON with its keys sorted at every level, so key
order and whitespace in the input line do not matter (values do: `1` and `1.0`, or a
changed `temperature`, are different requests). A namespace goes first, so that callers
who must not see each other's answers (the gateway's keys) never share one.

Every imported request stores its key (`requests.cache_key`), cache or not, so a batch
sent without the cache can answer a later one that asks for it. A batch imported with
the cache looks its keys up a chunk at a time: a request whose key has a succeeded
answer younger than the TTL gets a copy of that answer (cost 0: nothing was billed for
it in this batch) in the transaction that stores the request, and joins no provider job.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Any

import orjson

from unibatch import durations
from unibatch.errors import InputError
from unibatch.store.cache import Answer, CacheCopy, key_hash

__all__ = ["LOCAL", "Answer", "CacheCopy", "CachePolicy", "cache_key", "cache_policy", "key_hash"]

_SEP = b"\x00"
# The namespace of the library and CLI; the gateway uses one per key.
LOCAL = ""


def cache_key(namespace: str, provider: str, model: str, endpoint: str, body: Any) -> bytes:
    """The 32-byte key of a request (`body` as it is sent: its `model` is the bare one)."""
    digest = hashlib.sha256()
    for part in (namespace, provider, model, endpoint):
        digest.update(part.encode())
        digest.update(_SEP)
    digest.update(orjson.dumps(body, option=orjson.OPT_SORT_KEYS))
    return digest.digest()


@dataclass(frozen=True, slots=True)
class CachePolicy:
    """A batch that uses the cache: `ttl` seconds bound the age of an answer it takes
    (None: any age)."""

    ttl: float | None = None

    def __post_init__(self) -> None:
        if self.ttl is not None and not (self.ttl >= 0 and math.isfinite(self.ttl)):
            raise InputError(
                f"cache_ttl must be a number of seconds, at least 0, not {self.ttl!r}",
                field="cache_ttl",
            )

    def since(self, now: float) -> float | None:
        """The oldest answer time taken at `now`, or None for no bound."""
        return None if self.ttl is None else now - self.ttl


def cache_policy(cache: bool, ttl: float | str | None = None) -> CachePolicy | None:
    """The policy of a front end's `cache` and `cache_ttl` options (seconds, or a
    duration such as "7d"); None when the cache is off. A TTL without the cache is an
    error rather than silently nothing."""
    if not cache:
        if ttl is not None:
            raise InputError("cache_ttl needs the cache turned on (cache)", field="cache_ttl")
        return None
    if isinstance(ttl, str):
        try:
            ttl = durations.seconds(ttl)
        except ValueError as exc:
            raise InputError(f"cache_ttl: {exc}", field="cache_ttl") from None
    return CachePolicy(ttl)
