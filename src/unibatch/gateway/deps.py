"""Route dependencies shared by every router."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from unibatch.gateway.context import Gateway, gateway

GatewayDep = Annotated[Gateway, Depends(gateway)]
