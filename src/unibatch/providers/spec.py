"""What a provider is, as data: the one object a provider package registers.

The engine, the planner, pricing, the gateway, the emulator server and the README's
provider table all read a provider's facts from its `ProviderSpec` instead of knowing the
provider. The adapter class is named, not imported, so listing providers (the CLI's start,
the gateway's checks) does not import every adapter and its dependencies.

Example (an OpenAI-compatible Batch API served by another company)::

    from unibatch.providers.spec import BatchLimits, ProviderSpec

    SPEC = ProviderSpec(
        name="acme",
        adapter="unibatch.providers.openai.adapter:OpenAIProvider",
        endpoints=frozenset({"/v1/chat/completions"}),
        key_env=("ACME_API_KEY",),
        base_url_env="ACME_BASE_URL",
        default_base_url="https://api.acme.example/v1",
        batch_limits=BatchLimits(max_requests=50_000, max_bytes=200 * 1024 * 1024),
        batch_discount=0.5,
    )
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from unibatch.errors import ConfigurationError

if TYPE_CHECKING:
    from unibatch.providers.base import Provider

_EMPTY: Mapping[str, int] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class BatchLimits:
    """One provider batch's size limits: the planner splits work to fit them."""

    max_requests: int
    max_bytes: int
    # Embedding inputs across every request of one embeddings batch (None: no limit).
    max_embedding_inputs: int | None = None
    # The fewest requests the provider accepts in one batch (Bedrock: 100 by default).
    min_requests: int = 1


@dataclass(frozen=True, slots=True)
class ProviderSpec:
    """A provider's facts. Frozen: shared by every engine and process that uses it."""

    name: str
    # `module:Class` of the adapter (a `unibatch.providers.base.Provider`).
    adapter: str
    endpoints: frozenset[str]
    # Variables carrying the key, first match wins (named in errors), and the base URL.
    key_env: tuple[str, ...]
    base_url_env: str
    default_base_url: str
    # None: the provider has no Batch API (its requests can only run in real time).
    batch_limits: BatchLimits | None
    # Share of the list price charged for batch work (0.5 is half price).
    batch_discount: float
    # How long the provider may take over one batch, in seconds, before it expires it.
    completion_window: float = 24 * 3600
    # Limits on work queued at the provider (enqueued tokens, batches in flight, ...).
    queue_limits: Mapping[str, int] = field(default_factory=lambda: _EMPTY)
    # The adapter can find a batch it created after a crash (it carries our tag).
    finds_lost_batches: bool = True
    # The provider has a synchronous endpoint a real-time runner can use.
    has_realtime: bool = False
    # False for servers that may run without a key (a local model server): no key, no
    # Authorization header.
    key_required: bool = True
    # `module:RULES`: the provider's rules per model family (a `rules.RuleTable`), if any.
    rules: str | None = None
    # The provider's id in the genai-prices package, when it differs from `name`.
    prices_as: str | None = None
    # The emulator (`module:Class`) and the path prefix its SDK base URL ends with.
    emulator: str | None = None
    emulator_prefix: str | None = None

    def api_key(self, env: Mapping[str, str]) -> str:
        """The key from `env`, or a `ConfigurationError` naming the variables to set."""
        for var in self.key_env:
            value = env.get(var)
            if value:
                return value
        if not self.key_required:
            return ""
        raise ConfigurationError(
            f"no API key for provider {self.name!r}: set {' or '.join(self.key_env)}"
        )

    def base_url(self, env: Mapping[str, str]) -> str:
        """The base URL from `env`, else the default; a `ConfigurationError` naming the
        variable when the provider has no default (a server only the user knows)."""
        value = env.get(self.base_url_env) or self.default_base_url
        if not value:
            raise ConfigurationError(
                f"no base URL for provider {self.name!r}: set {self.base_url_env}"
            )
        return value

    def adapter_class(self) -> type[Provider]:
        """The adapter class, imported on first use."""
        cls = load_object(self.adapter)
        return cls  # type: ignore[no-any-return]


@cache
def load_object(reference: str) -> Any:
    """Import `module:attribute`."""
    module_name, _, attribute = reference.partition(":")
    if not attribute:
        raise ConfigurationError(f"{reference!r} must be written as 'module:attribute'")
    try:
        return getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise ConfigurationError(f"cannot load {reference!r}: {exc}") from exc
