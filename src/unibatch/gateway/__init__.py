"""The HTTP gateway (`unibatch serve`): OpenAI's files and batches API, a JSON batch API,
virtual keys with budgets, and usage accounting, in front of every provider."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from unibatch.gateway.app import create_app
    from unibatch.gateway.settings import GatewaySettings

__all__ = ["GatewaySettings", "create_app"]


def __getattr__(name: str) -> Any:
    # Lazy, so that a worker or `Client` can take the gateway's result hooks
    # (`unibatch.gateway.accounting`) without importing the web framework.
    if name == "create_app":
        from unibatch.gateway.app import create_app

        return create_app
    if name == "GatewaySettings":
        from unibatch.gateway.settings import GatewaySettings

        return GatewaySettings
    raise AttributeError(f"module 'unibatch.gateway' has no attribute {name!r}")
