"""The app factory. The engine's worker runs inside the server unless told otherwise, so
one command runs everything; any number of servers and workers may share a database."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator

from fastapi import Depends, FastAPI

from unibatch.config import Settings
from unibatch.engine import Engine
from unibatch.gateway import errors
from unibatch.gateway.accounting import result_hooks
from unibatch.gateway.context import Gateway
from unibatch.gateway.routes_admin import router as admin_router
from unibatch.gateway.routes_batches import router as batches_router
from unibatch.gateway.routes_files import router as files_router
from unibatch.gateway.routes_files import sweep_expired_files
from unibatch.gateway.routes_metrics import router as metrics_router
from unibatch.gateway.routes_webhooks import router as webhooks_router
from unibatch.gateway.settings import GatewaySettings
from unibatch.gateway.store import ORPHAN_SWEEP_MARGIN_SECONDS
from unibatch.gateway.ui import install as install_ui
from unibatch.gateway.validation import refuse_nul
from unibatch.providers.registry import ProviderSet

log = logging.getLogger("unibatch.gateway")


async def _release_orphans(gw: Gateway) -> None:
    """Budget reservations of creates that died with their server stop counting now,
    rather than an hour after they were made."""
    released = await gw.store.release_orphan_reservations(time.time() - ORPHAN_SWEEP_MARGIN_SECONDS)
    if released:
        log.info("released %d budget reservations of creates that never finished", released)


async def _sweep_files(gw: Gateway, stop: asyncio.Event) -> None:
    """Delete expired uploads now and every `file_sweep_seconds` until `stop`."""
    while not stop.is_set():
        try:
            gone = await sweep_expired_files(gw, time.time())
            if gone:
                log.info("deleted %d expired uploaded files", gone)
        except Exception as exc:  # the database may be away: try again next time
            log.warning("expired files could not be swept (%s); trying again later", exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), gw.settings.file_sweep_seconds)


def create_app(
    engine_or_settings: Engine | Settings | None = None,
    *,
    gateway_settings: GatewaySettings | None = None,
    worker: bool = True,
    providers: ProviderSet | None = None,
) -> FastAPI:
    """An ASGI app serving the gateway.

    Given an `Engine`, the app uses it (and leaves closing it to the caller); given
    `Settings` (or nothing: the environment), it opens its own engine in its lifespan.

    >>> app = create_app(Settings(), worker=False)   # doctest: +SKIP
    >>> uvicorn.run(app)                             # doctest: +SKIP
    """
    gw_settings = gateway_settings or GatewaySettings()
    given = engine_or_settings if isinstance(engine_or_settings, Engine) else None
    settings = engine_or_settings if isinstance(engine_or_settings, Settings) else None

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = given
        if engine is None:
            engine = await Engine.open(
                settings=settings or Settings(), providers=providers, result_hooks=result_hooks()
            )
        app.state.gateway = gw = Gateway.build(engine, gw_settings)
        # Imports that a stopped or crashed server left half done end `failed` here (and
        # in every worker), not `validating` for ever.
        await engine.sweep_imports()
        await _release_orphans(gw)
        stop = asyncio.Event()
        task = asyncio.create_task(engine.run_worker(stop)) if worker else None
        app.state.worker_task = task
        sweeper = asyncio.create_task(_sweep_files(gw, stop))
        if gw_settings.master_key is None:
            log.warning("UNIBATCH_MASTER_KEY is not set: keys cannot be managed over HTTP")
        try:
            yield
        finally:
            await gw.imports.aclose()
            stop.set()
            await sweeper
            if task is not None:
                await task
            if given is None:
                await engine.aclose()

    app = FastAPI(
        title="unibatch gateway",
        summary="OpenAI-compatible files and batches API in front of every provider.",
        version="0.1.0",
        lifespan=lifespan,
        # Before every route's own parameters (ids, cursors) reach the database.
        dependencies=[Depends(refuse_nul)],
    )
    if given is not None:
        # Usable without the lifespan (in-process test clients that skip it).
        app.state.gateway = Gateway.build(given, gw_settings)
    errors.install(app)
    app.add_middleware(errors.BodyLimit, limit=gw_settings.max_body_bytes)
    for router in (files_router, batches_router, webhooks_router, admin_router, metrics_router):
        app.include_router(router)
    install_ui(app)
    return app
