"""Provider registry: which providers exist, and `provider/model` strings to adapters.

Providers are found in two places, both read together on first use:

* :data:`BUILTIN`, the providers that ship with unibatch;
* the ``unibatch.providers`` entry-point group, where another package adds its own. An
  entry point names a `ProviderSpec` or an iterable of them, e.g. in its pyproject.toml::

      [project.entry-points."unibatch.providers"]
      acme = "unibatch_acme:SPEC"

Adapters never import this module (they receive their spec when built), so there is no
cycle, and whichever module is imported first, every provider is known.
`ProviderSet` builds each adapter on first use from the environment (the official SDKs'
variables), so a missing key is reported only for a provider that is actually used.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable, Mapping
from importlib.metadata import entry_points

import httpx

from unibatch.errors import ConfigurationError, UnknownProviderError
from unibatch.providers.base import Provider
from unibatch.providers.spec import ProviderSpec, load_object

log = logging.getLogger("unibatch.providers")

ENTRY_POINT_GROUP = "unibatch.providers"
# Adding a built-in provider is one line here.
BUILTIN: tuple[str, ...] = (
    "unibatch.providers.openai:SPEC",
    "unibatch.providers.anthropic:SPEC",
    "unibatch.providers.gemini:SPEC",
    "unibatch.providers.xai:SPEC",
    "unibatch.providers.azure:SPEC",
    "unibatch.providers.bedrock:SPEC",
    "unibatch.providers.groq:SPEC",
    "unibatch.providers.mistral:SPEC",
    "unibatch.providers.together:SPEC",
    "unibatch.providers.local:SPEC",
)

_specs: dict[str, ProviderSpec] = {}
_loaded = False
_lock = threading.Lock()


def register(spec: ProviderSpec) -> ProviderSpec:
    """Add a provider (a later registration of the same name replaces the earlier one)."""
    _specs[spec.name] = spec
    return spec


def _specs_of(found: object, origin: str) -> Iterable[ProviderSpec]:
    items = [found] if isinstance(found, ProviderSpec) else found
    if not isinstance(items, Iterable):
        raise ConfigurationError(f"{origin} names neither a ProviderSpec nor a list of them")
    for item in items:
        if not isinstance(item, ProviderSpec):
            raise ConfigurationError(f"{origin} holds {item!r}, which is not a ProviderSpec")
        yield item


def load() -> None:
    """Read the built-in providers and the entry points, once per process."""
    global _loaded
    if _loaded:
        return
    with _lock:
        if _loaded:
            return
        for reference in BUILTIN:
            for spec in _specs_of(load_object(reference), reference):
                _specs.setdefault(spec.name, spec)
        for point in entry_points(group=ENTRY_POINT_GROUP):
            origin = f"entry point {point.name!r} ({point.value})"
            try:
                found = point.load()
            except Exception as exc:
                # One broken plugin must not take every provider down with it.
                log.error("%s cannot be loaded: %s", origin, exc)
                continue
            for spec in _specs_of(found, origin):
                _specs.setdefault(spec.name, spec)
        _loaded = True


def spec_of(name: str) -> ProviderSpec:
    load()
    try:
        return _specs[name]
    except KeyError:
        known = ", ".join(sorted(_specs))
        raise UnknownProviderError(f"unknown provider {name!r} (known: {known})") from None


def provider_class(name: str) -> type[Provider]:
    return spec_of(name).adapter_class()


def known_providers() -> list[str]:
    load()
    return sorted(_specs)


def specs() -> list[ProviderSpec]:
    """Every registered provider: the built-ins in `BUILTIN` order, then the others."""
    load()
    return list(_specs.values())


def split_model(model: str) -> tuple[str, str]:
    """`openai/gpt-4o-mini` or `openai:gpt-4o-mini` -> ("openai", "gpt-4o-mini")."""
    for sep in ("/", ":"):
        provider, found, name = model.partition(sep)
        if found and provider and name:
            spec_of(provider)
            return provider, name
    raise UnknownProviderError(
        f"model {model!r} names no provider: write it as provider/model, "
        f"e.g. openai/gpt-4o-mini (providers: {', '.join(known_providers())})"
    )


class ProviderSet:
    """Adapter instances for one engine, created on first use and closed together.

    `specs` replaces registered providers' specs (other limits, another base URL);
    `transports` routes a provider's HTTP calls through a given httpx transport (tests,
    proxies); `overrides` hands in ready-made adapter instances."""

    def __init__(
        self,
        env: Mapping[str, str] | None = None,
        *,
        timeout: float = 60.0,
        overrides: Mapping[str, Provider] | None = None,
        transports: Mapping[str, httpx.AsyncBaseTransport] | None = None,
        specs: Mapping[str, ProviderSpec] | None = None,
    ) -> None:
        self.env = env if env is not None else os.environ
        self.timeout = timeout
        self._specs = dict(specs or {})
        self._transports = dict(transports or {})
        self._instances: dict[str, Provider] = dict(overrides or {})
        self._handed_in = frozenset(self._instances) | set(self._transports) | set(self._specs)

    def rebuildable(self, name: str) -> bool:
        """True when another process can build the same adapter from `env` (it was not
        handed in as an instance or over a transport)."""
        return name not in self._handed_in

    def spec(self, name: str) -> ProviderSpec:
        instance = self._instances.get(name)
        if instance is not None:
            return instance.spec
        return self._specs.get(name) or spec_of(name)

    def check(self, name: str) -> None:
        """Raise now if `name` could not be used (unknown, or no key)."""
        if name in self._instances:
            return
        spec = self.spec(name)
        spec.api_key(self.env)
        spec.base_url(self.env)
        spec.adapter_class().check_env(spec, self.env)

    def min_requests(self, name: str) -> int:
        """The fewest requests one batch job of `name` may hold."""
        instance = self._instances.get(name)
        spec = self.spec(name)
        cls = type(instance) if instance is not None else spec.adapter_class()
        return cls.min_requests(spec, self.env)

    def get(self, name: str) -> Provider:
        instance = self._instances.get(name)
        if instance is None:
            spec = self.spec(name)
            instance = spec.adapter_class().from_env(
                spec, self.env, timeout=self.timeout, transport=self._transports.get(name)
            )
            self._instances[name] = instance
        return instance

    async def aclose(self) -> None:
        for instance in self._instances.values():
            await instance.aclose()
        self._instances.clear()
