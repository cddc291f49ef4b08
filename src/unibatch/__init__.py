"""unibatch: one Batch API for every LLM provider."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from unibatch.client import AsyncClient, Client
    from unibatch.errors import (
        ConfigurationError,
        CostLimitError,
        InputError,
        LimitError,
        NotFoundError,
        ProviderError,
        UnibatchError,
        UnknownProviderError,
    )
    from unibatch.estimate import Estimate, ModelEstimate
    from unibatch.types import (
        Attempt,
        Batch,
        BatchError,
        BatchStatus,
        Cost,
        ErrorInfo,
        QueueWait,
        RequestCounts,
        RequestStatus,
        Result,
        Usage,
    )

__version__ = "0.1.0"

# Where each public name lives. They load on first use (PEP 562): the clients pull in the
# engine, the store and SQLAlchemy, and a process that needs none of it (the CLI's
# `--help`, the ingest decoder process) must not pay for them.
_HOMES = {
    "AsyncClient": "unibatch.client",
    "Client": "unibatch.client",
    "ConfigurationError": "unibatch.errors",
    "CostLimitError": "unibatch.errors",
    "Estimate": "unibatch.estimate",
    "ModelEstimate": "unibatch.estimate",
    "InputError": "unibatch.errors",
    "LimitError": "unibatch.errors",
    "NotFoundError": "unibatch.errors",
    "ProviderError": "unibatch.errors",
    "UnibatchError": "unibatch.errors",
    "UnknownProviderError": "unibatch.errors",
    "Attempt": "unibatch.types",
    "Batch": "unibatch.types",
    "BatchError": "unibatch.types",
    "BatchStatus": "unibatch.types",
    "Cost": "unibatch.types",
    "ErrorInfo": "unibatch.types",
    "QueueWait": "unibatch.types",
    "RequestCounts": "unibatch.types",
    "RequestStatus": "unibatch.types",
    "Result": "unibatch.types",
    "Usage": "unibatch.types",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'unibatch' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # looked up once
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOMES])


__all__ = [
    "AsyncClient",
    "Attempt",
    "Batch",
    "BatchError",
    "BatchStatus",
    "Client",
    "ConfigurationError",
    "Cost",
    "CostLimitError",
    "ErrorInfo",
    "Estimate",
    "InputError",
    "LimitError",
    "ModelEstimate",
    "NotFoundError",
    "ProviderError",
    "QueueWait",
    "RequestCounts",
    "RequestStatus",
    "Result",
    "UnibatchError",
    "UnknownProviderError",
    "Usage",
    "__version__",
]
