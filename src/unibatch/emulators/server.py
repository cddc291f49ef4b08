"""One HTTP server hosting every provider emulator, each under its own path prefix.

Run it standalone with ``unibatch emulate --port 0``: it prints one
``<PROVIDER>_BASE_URL=...`` line per provider once it listens. In tests, use
:func:`running_emulator`, which serves on a loopback port from a background thread::

    with running_emulator(EmulatorConfig(time_scale=0.05)) as emu:
        client = OpenAI(base_url=emu.base_url("openai"), api_key="test")
"""

from __future__ import annotations

import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType

import uvicorn
from starlette.applications import Starlette
from starlette.routing import BaseRoute, Mount

from unibatch.listen import listen
from unibatch.providers.registry import spec_of, specs
from unibatch.providers.spec import load_object

from .kit import EmulatorConfig, ProviderEmulator
from .openai import OpenAIEmulator


@dataclass(frozen=True)
class ProviderMount:
    """A provider emulator and the path prefix its SDK base URL ends with."""

    name: str
    prefix: str
    factory: Callable[[EmulatorConfig], ProviderEmulator]
    base_url_env: str


def mounts() -> list[ProviderMount]:
    """An emulator for every registered provider whose spec names one, in registry order."""
    return [
        ProviderMount(
            spec.name, spec.emulator_prefix, load_object(spec.emulator), spec.base_url_env
        )
        for spec in specs()
        if spec.emulator and spec.emulator_prefix
    ]


def build_app(
    config: EmulatorConfig | None = None,
) -> tuple[Starlette, dict[str, ProviderEmulator]]:
    """The combined ASGI app and the emulators it mounts, keyed by provider name.

    All emulators share ``config``, so one ``POST …/_emulator/config`` steers them all.
    """
    config = config if config is not None else EmulatorConfig()
    mounted = mounts()
    emulators = {mount.name: mount.factory(config) for mount in mounted}
    routes: list[BaseRoute] = [
        Mount(mount.prefix, app=emulators[mount.name].app) for mount in mounted
    ]
    return Starlette(routes=routes), emulators


class _Server(uvicorn.Server):
    """A uvicorn server that reports its bound port once it listens."""

    def __init__(self, app: Starlette, host: str, port: int, on_ready: Callable[[int], None]):
        super().__init__(
            uvicorn.Config(
                app,
                host=host,
                port=port,
                log_level="warning",
                access_log=False,
                # Through the host process's logging (`unibatch.logs` in `emulate`).
                log_config=None,
                lifespan="off",
                ws="none",
                timeout_graceful_shutdown=2,
            )
        )
        self._on_ready = on_ready

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            self._on_ready(int(self.servers[0].sockets[0].getsockname()[1]))


def _public_host(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host


def serve(host: str = "127.0.0.1", port: int = 0, config: EmulatorConfig | None = None) -> None:
    """Serve until interrupted; prints ``OPENAI_BASE_URL=http://H:P/openai/v1`` (and one line
    per other provider) once listening, with the real port when ``port`` is 0."""
    listening = listen(host, port)  # before anything starts: see unibatch.listen
    app, emulators = build_app(config)

    def announce(bound: int) -> None:
        base = f"http://{_public_host(host)}:{bound}"
        for mount in mounts():
            print(f"{mount.base_url_env}={base}{mount.prefix}", flush=True)
        for emulator in emulators.values():
            for name, value in emulator.client_env().items():
                print(f"{name}={value}", flush=True)

    server = _Server(app, host, port, announce)
    # uvicorn re-raises SIGTERM after its graceful shutdown; with the default handler that
    # would kill the process before the emulators delete their temporary files.
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _exit_quietly) if main else None
    try:
        server.run(sockets=[listening])
    finally:
        if main:
            signal.signal(signal.SIGTERM, previous)
        for emulator in emulators.values():
            emulator.close()


def _exit_quietly(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


@dataclass
class RunningEmulator:
    """A live emulator server on loopback (what :func:`running_emulator` yields)."""

    url: str
    emulators: dict[str, ProviderEmulator]

    def base_url(self, provider: str) -> str:
        """The SDK base URL of ``provider``, e.g. ``http://127.0.0.1:PORT/openai/v1``."""
        prefix = spec_of(provider).emulator_prefix
        if prefix is None:
            raise KeyError(f"provider {provider!r} has no emulator")
        return self.url + prefix

    @property
    def openai(self) -> OpenAIEmulator:
        """The OpenAI emulator instance (its state, config and fault queue)."""
        emulator = self.emulators["openai"]
        assert isinstance(emulator, OpenAIEmulator)
        return emulator

    @property
    def config(self) -> EmulatorConfig:
        """The config shared by every mounted emulator; mutate it to steer them."""
        return self.openai.config


@contextmanager
def running_emulator(config: EmulatorConfig | None = None) -> Iterator[RunningEmulator]:
    """Serve all emulators on 127.0.0.1, a free port, in a background thread."""
    app, emulators = build_app(config)
    ports: list[int] = []
    ready = threading.Event()

    def on_ready(bound: int) -> None:
        ports.append(bound)
        ready.set()

    server = _Server(app, "127.0.0.1", 0, on_ready)
    # Off the main thread uvicorn installs no signal handlers, so the host process keeps its own.
    thread = threading.Thread(target=server.run, name="unibatch-emulator", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not ready.wait(0.01):
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError("emulator server did not start")
    try:
        yield RunningEmulator(f"http://127.0.0.1:{ports[0]}", emulators)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        for emulator in emulators.values():
            emulator.close()
