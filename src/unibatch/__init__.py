"""unibatch: one Batch API for every LLM provider."""

from unibatch.client import AsyncClient, Client
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
    BatchStatus,
    Cost,
    ErrorInfo,
    RequestCounts,
    RequestStatus,
    Result,
    Usage,
)

__version__ = "0.1.0"

__all__ = [
    "AsyncClient",
    "Batch",
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
