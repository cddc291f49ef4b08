"""Bearer authentication: the master key from the environment, virtual keys from the store.

Virtual keys are 256-bit random tokens stored as their SHA-256. A slow password hash
buys nothing for keys nobody can guess, and a plain digest can be looked up by index.
Keys are never logged; comparisons run in constant time.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from unibatch.gateway.context import Gateway, gateway
from unibatch.gateway.errors import APIError
from unibatch.gateway.keys import hash_key

_bearer = HTTPBearer(auto_error=False, description="A virtual key, or the master key.")


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling. `key_id` is None for the master key, which sees everything."""

    key_id: str | None
    name: str
    max_budget: float | None = None

    @property
    def is_master(self) -> bool:
        return self.key_id is None

    @property
    def scope(self) -> str | None:
        return self.key_id


def _unauthorized(message: str) -> APIError:
    return APIError(401, message, code="invalid_api_key")


async def authenticate(gw: Gateway, token: str | None) -> Principal:
    if not token:
        raise _unauthorized("missing API key: send 'Authorization: Bearer <key>'")
    master = gw.settings.master_key
    if master is not None and hmac.compare_digest(
        token.encode(), master.get_secret_value().encode()
    ):
        return Principal(None, "master")
    digest = hash_key(token)
    row = await gw.store.key_by_hash(digest)
    if row is None or not hmac.compare_digest(row["key_hash"], digest):
        raise _unauthorized("invalid API key")
    if row["revoked_at"] is not None:
        raise _unauthorized("this API key has been revoked")
    return Principal(row["id"], row["name"], row["max_budget"])


async def principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    return await authenticate(gateway(request), credentials.credentials if credentials else None)


async def master(who: Annotated[Principal, Depends(principal)]) -> Principal:
    if not who.is_master:
        raise APIError(403, "only the master key can manage keys", code="master_key_required")
    return who


Caller = Annotated[Principal, Depends(principal)]
Master = Annotated[Principal, Depends(master)]
