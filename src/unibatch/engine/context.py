"""What every engine step needs: the store, the providers, prices, settings and a clock."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from unibatch.config import Settings
from unibatch.decode.process import Decoder
from unibatch.pricing import Pricer
from unibatch.providers.registry import ProviderSet
from unibatch.store import Store


def default_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{os.urandom(3).hex()}"


@dataclass
class Context:
    store: Store
    settings: Settings
    providers: ProviderSet
    pricer: Pricer = field(default_factory=Pricer)
    owner: str = field(default_factory=default_owner)
    clock: Callable[[], float] = time.time
    _decoder: Decoder | None = field(default=None, init=False, repr=False)
    _webhooks: httpx.AsyncClient | None = field(default=None, init=False, repr=False)

    def lease_until(self) -> float:
        return self.clock() + self.settings.lease_seconds

    def decoder(self) -> Decoder:
        """The ingest decoder helper, made on first use (its process starts lazily too)."""
        if self._decoder is None:
            self._decoder = Decoder(self.providers.env, self.providers.timeout)
        return self._decoder

    def webhook_client(self) -> httpx.AsyncClient:
        """The HTTP client webhooks are sent with, made on first use. Redirects are not
        followed: a signed event goes only where its endpoint says."""
        if self._webhooks is None:
            self._webhooks = httpx.AsyncClient(follow_redirects=False)
        return self._webhooks

    async def aclose(self) -> None:
        if self._webhooks is not None:
            await self._webhooks.aclose()
        if self._decoder is not None:
            await self._decoder.aclose()
        await self.providers.aclose()
        await self.store.aclose()
