"""Route dependencies shared by every router."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from unibatch.gateway.context import Gateway, gateway


async def _gateway(request: Request) -> Gateway:
    # A coroutine: FastAPI runs a plain function dependency in its thread pool, a
    # round trip to another thread on every request for an attribute lookup.
    return gateway(request)


GatewayDep = Annotated[Gateway, Depends(_gateway)]
