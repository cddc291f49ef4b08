"""What every route needs: the engine, the gateway's store, its settings and its imports."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from unibatch.engine import Engine
from unibatch.gateway.accounting import result_hooks
from unibatch.gateway.imports import BackgroundImports
from unibatch.gateway.settings import GatewaySettings
from unibatch.gateway.store import GatewayStore


@dataclass(slots=True)
class Gateway:
    engine: Engine
    store: GatewayStore
    settings: GatewaySettings
    imports: BackgroundImports

    @classmethod
    def build(cls, engine: Engine, settings: GatewaySettings) -> Gateway:
        settings.files_dir.mkdir(parents=True, exist_ok=True)
        # An engine handed in by the caller may lack the hooks; the gateway's own has them.
        for hook in result_hooks():
            engine.add_result_hook(hook)
        return cls(engine, GatewayStore(engine.store.engine), settings, BackgroundImports())


def gateway(request: Request) -> Gateway:
    gw = getattr(request.app.state, "gateway", None)
    if gw is None:  # pragma: no cover - only before the lifespan has run
        raise RuntimeError("the gateway is not started (run the app with its lifespan)")
    assert isinstance(gw, Gateway)
    return gw
