"""Bearer authentication: the master key from the environment, virtual keys from the store.

Virtual keys are 256-bit random tokens stored as their SHA-256. A slow password hash
buys nothing for keys nobody can guess, and a plain digest can be looked up by index.
Keys are never logged; comparisons run in constant time.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

import sqlalchemy as sa
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from unibatch.gateway.context import Gateway, gateway
from unibatch.gateway.errors import APIError
from unibatch.gateway.keys import hash_key
from unibatch.gateway.store import key_by_hash

T = TypeVar("T")

_bearer = HTTPBearer(auto_error=False, description="A virtual key, or the master key.")


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling. `key_id` is None for the master key, which sees everything."""

    key_id: str | None
    name: str
    max_budget: float | None = None
    cache: bool = False
    cache_ttl: float | None = None

    @property
    def is_master(self) -> bool:
        return self.key_id is None

    @property
    def scope(self) -> str | None:
        return self.key_id


def _unauthorized(message: str) -> APIError:
    return APIError(401, message, code="invalid_api_key")


def _master(gw: Gateway, token: str | None) -> Principal | None:
    """The master key's principal if `token` is the master key; None for any other."""
    if not token:
        raise _unauthorized("missing API key: send 'Authorization: Bearer <key>'")
    master = gw.settings.master_key
    if master is not None and hmac.compare_digest(
        token.encode(), master.get_secret_value().encode()
    ):
        return Principal(None, "master")
    return None


def _virtual(row: Mapping[str, Any] | None, digest: str) -> Principal:
    """The principal of the virtual key stored as `row` (looked up by `digest`)."""
    if row is None or not hmac.compare_digest(row["key_hash"], digest):
        raise _unauthorized("invalid API key")
    if row["revoked_at"] is not None:
        raise _unauthorized("this API key has been revoked")
    return Principal(
        row["id"], row["name"], row["max_budget"], bool(row["cache"]), row["cache_ttl"]
    )


async def authenticate(gw: Gateway, token: str | None) -> Principal:
    who = _master(gw, token)
    if who is not None:
        return who
    assert token is not None
    digest = hash_key(token)
    return _virtual(await gw.store.key_by_hash(digest), digest)


async def authenticated_read(
    gw: Gateway, token: str | None, read: Callable[[sa.Connection, Principal], T]
) -> tuple[Principal, T]:
    """Authenticate and then `read(conn, who)`, in one call to the store and one
    transaction: for the reads clients poll, where a second trip to the database was a
    good part of the answer's time. Nothing is cached: the key is read with the data, so
    a key revoked (or its budget changed) by any server counts from the next request."""
    master = _master(gw, token)
    digest = "" if master is not None or token is None else hash_key(token)

    def both(conn: sa.Connection) -> tuple[Principal, T]:
        who = master or _virtual(key_by_hash(conn, digest), digest)
        return who, read(conn, who)

    return await gw.store.read(both)


async def bearer_token(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str | None:
    return credentials.credentials if credentials else None


BearerToken = Annotated[str | None, Depends(bearer_token)]


async def principal(request: Request, token: BearerToken) -> Principal:
    return await authenticate(gateway(request), token)


async def master(who: Annotated[Principal, Depends(principal)]) -> Principal:
    if not who.is_master:
        raise APIError(403, "only the master key can manage keys", code="master_key_required")
    return who


Caller = Annotated[Principal, Depends(principal)]
Master = Annotated[Principal, Depends(master)]
