"""unibatch: one Batch API for every LLM provider."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from unibatch.errors import (
    ConfigurationError,
    InputError,
    LimitError,
    NotFoundError,
    ProviderError,
    UnibatchError,
    UnknownProviderError,
)
from unibatch.types import (
    Batch,
    BatchError,
    BatchStatus,
    Cost,
    ErrorInfo,
    RequestCounts,
    RequestStatus,
    Result,
    Usage,
)

if TYPE_CHECKING:
    from unibatch.client import AsyncClient, Client

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    # The clients pull in the engine, the store and SQLAlchemy; importing them lazily keeps
    # `import unibatch.providers...` light for the ingest decoder process.
    if name in ("AsyncClient", "Client"):
        from unibatch import client

        return getattr(client, name)
    raise AttributeError(f"module 'unibatch' has no attribute {name!r}")


__all__ = [
    "AsyncClient",
    "Batch",
    "BatchError",
    "BatchStatus",
    "Client",
    "ConfigurationError",
    "Cost",
    "ErrorInfo",
    "InputError",
    "LimitError",
    "NotFoundError",
    "ProviderError",
    "RequestCounts",
    "RequestStatus",
    "Result",
    "UnibatchError",
    "UnknownProviderError",
    "Usage",
    "__version__",
]
