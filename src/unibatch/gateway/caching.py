"""The result cache of a batch created through the gateway (`unibatch.engine.cache`)."""

from __future__ import annotations

from typing import Any

from unibatch import durations
from unibatch.engine.cache import CachePolicy
from unibatch.gateway.auth import Principal
from unibatch.gateway.errors import APIError
from unibatch.gateway.models import BatchCreate


def cache_options(spec: BatchCreate, who: Principal) -> dict[str, Any]:
    """The result cache of a create: the JSON API's `cache` and `cache_ttl`, or the
    metadata's ("true"/"false", a duration such as "7d"), else the key's setting. Keys
    never share answers: each caller has its own namespace (the master key one too)."""
    meta = spec.metadata or {}
    on, ttl = spec.cache, spec.cache_ttl
    if "cache" in meta:
        flag = meta["cache"].strip().lower()
        if flag not in ("true", "false"):
            raise APIError(
                400, f"metadata cache must be true or false, not {flag!r}", param="metadata.cache"
            )
        if on is not None and on != (flag == "true"):
            raise APIError(400, "cache and metadata cache disagree", param="cache")
        on = flag == "true"
    if "cache_ttl" in meta:
        try:
            value = durations.seconds(meta["cache_ttl"])
        except ValueError as exc:
            raise APIError(400, f"metadata cache_ttl: {exc}", param="metadata.cache_ttl") from None
        if ttl is not None and ttl != value:
            raise APIError(400, "cache_ttl and metadata cache_ttl disagree", param="cache_ttl")
        ttl = value
    if on is None:
        on = who.cache
    if not on:
        if ttl is not None and spec.cache is not None:
            raise APIError(400, "cache_ttl needs the cache turned on", param="cache_ttl")
        return {}
    policy = CachePolicy(ttl if ttl is not None else who.cache_ttl)
    return {"cache": policy, "namespace": f"key:{who.key_id}" if who.key_id else "master"}
