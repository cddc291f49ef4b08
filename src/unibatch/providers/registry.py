"""Provider registry: `provider/model` strings to adapter instances.

Adapters register by name; `ProviderSet` builds each one on first use from the
environment (the official SDKs' variables), so a missing key is reported only for a
provider that is actually used.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from unibatch.errors import ConfigurationError, UnknownProviderError
from unibatch.providers.base import Provider

_FACTORIES: dict[str, type[Provider]] = {}


def register(cls: type[Provider]) -> type[Provider]:
    _FACTORIES[cls.name] = cls
    return cls


def provider_class(name: str) -> type[Provider]:
    _load_builtin()
    try:
        return _FACTORIES[name]
    except KeyError:
        known = ", ".join(sorted(_FACTORIES))
        raise UnknownProviderError(f"unknown provider {name!r} (known: {known})") from None


def known_providers() -> list[str]:
    _load_builtin()
    return sorted(_FACTORIES)


def split_model(model: str) -> tuple[str, str]:
    """`openai/gpt-4o-mini` or `openai:gpt-4o-mini` -> ("openai", "gpt-4o-mini")."""
    for sep in ("/", ":"):
        provider, found, name = model.partition(sep)
        if found and provider and name:
            provider_class(provider)
            return provider, name
    raise UnknownProviderError(
        f"model {model!r} names no provider: write it as provider/model, "
        f"e.g. openai/gpt-4o-mini (providers: {', '.join(known_providers())})"
    )


def api_key(cls: type[Provider], env: Mapping[str, str]) -> str:
    for var in cls.key_env:
        value = env.get(var)
        if value:
            return value
    raise ConfigurationError(
        f"no API key for provider {cls.name!r}: set {' or '.join(cls.key_env)}"
    )


class ProviderSet:
    """Adapter instances for one engine, created on first use and closed together."""

    def __init__(
        self,
        env: Mapping[str, str] | None = None,
        *,
        timeout: float = 60.0,
        overrides: Mapping[str, Provider] | None = None,
    ) -> None:
        self.env = env if env is not None else os.environ
        self.timeout = timeout
        self._instances: dict[str, Provider] = dict(overrides or {})
        self._overridden = frozenset(self._instances)

    def rebuildable(self, name: str) -> bool:
        """True when another process can build the same adapter from `env` (it was not
        handed in as an instance)."""
        return name not in self._overridden

    def check(self, name: str) -> None:
        """Raise now if `name` could not be used (unknown, or no key)."""
        if name in self._instances:
            return
        api_key(provider_class(name), self.env)

    def get(self, name: str) -> Provider:
        instance = self._instances.get(name)
        if instance is None:
            cls = provider_class(name)
            instance = cls.from_env(self.env, timeout=self.timeout)
            self._instances[name] = instance
        return instance

    async def aclose(self) -> None:
        for instance in self._instances.values():
            await instance.aclose()
        self._instances.clear()


def _load_builtin() -> None:
    if not _FACTORIES:
        from unibatch.providers import (
            anthropic,  # noqa: F401  (registers itself)
            gemini,  # noqa: F401
            openai,  # noqa: F401
            xai,  # noqa: F401
        )
