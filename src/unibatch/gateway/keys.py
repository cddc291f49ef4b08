"""Virtual keys: creating them and showing them with what they spent (HTTP and CLI)."""

from __future__ import annotations

import hashlib
import math
import secrets
import time
from typing import Any

from unibatch.engine.cache import CachePolicy
from unibatch.engine.ids import new_id
from unibatch.errors import InputError
from unibatch.gateway.models import KeyCreated, KeyObject
from unibatch.gateway.store import GatewayStore

KEY_PREFIX = "ubk-"


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    # Keys are 256-bit random tokens: nothing to brute-force, so a fast digest is enough,
    # and it can be looked up by index instead of trying a slow KDF against every row.
    return hashlib.sha256(key.encode()).hexdigest()


def key_hint(key: str) -> str:
    """What a listing shows of a key: enough to tell keys apart, useless to an attacker."""
    return f"{key[: len(KEY_PREFIX) + 2]}...{key[-4:]}"


def _ts(value: float | None) -> int | None:
    return None if value is None else int(value)


async def key_object(store: GatewayStore, row: dict[str, Any]) -> KeyObject:
    spent, reserved = await store.spending(row["id"])
    return KeyObject(
        id=row["id"],
        name=row["name"],
        key_hint=row["key_hint"],
        created_at=int(row["created_at"]),
        revoked_at=_ts(row["revoked_at"]),
        max_budget=row["max_budget"],
        spent=spent,
        reserved=reserved,
        cache=bool(row.get("cache")),
        cache_ttl=row.get("cache_ttl"),
    )


def check_budget(max_budget: float | None) -> None:
    """Refuse a budget that is no amount of money: infinity would be stored and shown as
    no budget at all, and NaN compares false with every cost."""
    if max_budget is not None and (not math.isfinite(max_budget) or max_budget < 0):
        raise InputError(
            f"max_budget must be a finite number of USD, at least 0, not {max_budget!r}",
            field="max_budget",
        )


async def create_key(
    store: GatewayStore,
    name: str,
    max_budget: float | None,
    *,
    cache: bool = False,
    cache_ttl: float | None = None,
) -> KeyCreated:
    """Create a virtual key; the key itself is in the answer and nowhere else. With
    `cache`, its batches use the result cache unless they say otherwise."""
    check_budget(max_budget)
    CachePolicy(cache_ttl)  # refuses a TTL that is no number of seconds
    key = new_key()
    row = {
        "id": new_id("key"),
        "name": name,
        "key_hash": hash_key(key),
        "key_hint": key_hint(key),
        "created_at": time.time(),
        "revoked_at": None,
        "max_budget": max_budget,
        "cache": cache,
        "cache_ttl": cache_ttl,
    }
    await store.add_key(row)
    return KeyCreated(key=key, **(await key_object(store, row)).model_dump())
