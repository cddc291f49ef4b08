"""Provider-neutral machinery shared by every emulator: knobs, clock, faults, wire recording.

A provider emulator subclasses :class:`ProviderEmulator`, lists its API routes and says how its
errors look on the wire; everything a test steers (timing, injected faults, slowness) and
everything a test asserts on (calls seen per route) lives here, identical for all providers.
"""

from __future__ import annotations

import abc
import asyncio
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from .attempts import AttemptCounter, by_custom_id, request_keys
from .config import EmulatorConfig, Fault
from .errors import EmulatedError
from .faults import FaultPlan
from .queue import QueueGate
from .realtime import RealtimeGate
from .responses import json_response

Clock = Callable[[], float]
"""Returns the current time in Unix seconds (float); ``time.time`` unless a test swaps it."""

Handler = Callable[[Request], Awaitable[Response]]


class ProviderEmulator(abc.ABC):
    """Base of one provider's emulator: an ASGI app plus the state it keeps.

    Subclasses implement :meth:`api_routes` and the wire shape of their errors; this class
    wraps each route so that every call is counted, slowed, possibly faulted and
    authenticated, in that order, and adds the unauthenticated, never-faulted control
    routes ``POST _emulator/config``, ``POST _emulator/faults``, ``GET _emulator/state`` and
    ``GET _emulator/calls`` (API calls per concrete path). Handlers raise
    :class:`EmulatedError` (a provider's subclass) for every API error; one exception
    handler of the app sends it.
    """

    name: str = "provider"

    def __init__(self, config: EmulatorConfig | None = None, clock: Clock | None = None) -> None:
        self.config = config if config is not None else EmulatorConfig()
        self.clock: Clock = clock if clock is not None else time.time
        self.faults = FaultPlan(self.config)
        self.requests_seen: Counter[str] = Counter()
        self.realtime = RealtimeGate(self.config, self.clock)
        self.queue = QueueGate(self.config, self.name)
        # Per concrete path ("GET /openai/v1/batches/batch_1"): how often one provider
        # batch was polled, say (a benchmark checks that many workers poll each once).
        self.calls_by_path: Counter[str] = Counter()
        self.attempts = AttemptCounter()
        self._own_dir = self.config.data_dir is None
        root = Path(tempfile.mkdtemp(prefix="unibatch-emulator-")) if self._own_dir else None
        self._root = root if root is not None else Path(str(self.config.data_dir))
        self.data_dir = self._root / self.name
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._app: Starlette | None = None

    # -- what a provider supplies -------------------------------------------------------

    @abc.abstractmethod
    def api_routes(self) -> list[tuple[str, str, Handler]]:
        """``(method, path template, handler)`` for every API call the provider answers."""

    @abc.abstractmethod
    def authenticate(self, request: Request) -> None:
        """Return when the call may proceed; raise the provider's auth error otherwise."""

    @abc.abstractmethod
    def fault_error(self, fault: Fault) -> EmulatedError:
        """The provider's wire shape for an injected fault."""

    @abc.abstractmethod
    def not_found_error(self, request: Request, status: int) -> EmulatedError:
        """The provider's answer to an unknown path (404) or method (405)."""

    @abc.abstractmethod
    async def snapshot(self) -> dict[str, Any]:
        """What the emulator holds: at least ``batches`` (list) and ``files`` (count)."""

    def client_env(self) -> dict[str, str]:
        """Variables a client needs besides the base URL to use this emulator (Bedrock:
        its S3 endpoint and bucket); `unibatch emulate` prints them too."""
        return {}

    # -- shared behaviour ---------------------------------------------------------------

    async def realtime_answer(
        self, request: Request, raw: bytes, tokens: int, answer: Callable[[], Response]
    ) -> Response:
        """Answer one synchronous request with `answer()` (which may raise the provider's
        error: that is an answer too), after the rate limits and the hold of
        `kit.realtime`; a request past a limit answers the provider's 429."""
        fault = self.realtime.limit(tokens)
        if fault is not None:
            raise self.fault_error(fault)
        if not await self.realtime.admit(request, raw):
            return Response(status_code=499)  # the client is gone: nobody reads this
        try:
            return answer()
        finally:
            self.realtime.answered(raw)

    def inject_faults(
        self, count: int, status: int = 429, retry_after: float | None = None
    ) -> None:
        """Make exactly the next ``count`` API calls fail with ``status``."""
        self.faults.inject(count, status, retry_after)

    async def failing_attempts(
        self, path: Path | None, key: Callable[[dict[str, Any]], str] = by_custom_id
    ) -> frozenset[str]:
        """The keys of the requests of a new batch (its JSONL file) that fail on this
        attempt of theirs (``retryable_failure_rate``; see ``kit.attempts``)."""
        rate, seed = self.config.retryable_failure_rate, self.config.seed
        if rate <= 0 or path is None:
            return frozenset()
        keys = request_keys(path, key)
        return await asyncio.to_thread(self.attempts.failing, keys, rate, seed)

    @property
    def app(self) -> Starlette:
        """The ASGI app; routes are relative to the provider's mount prefix."""
        if self._app is None:
            routes: list[BaseRoute] = [
                Route("/_emulator/config", self._control_config, methods=["GET", "POST"]),
                Route("/_emulator/faults", self._control_faults, methods=["POST"]),
                Route("/_emulator/state", self._control_state, methods=["GET"]),
                Route("/_emulator/calls", self._control_calls, methods=["GET"]),
            ]
            routes += [self._wrap(m, path, h) for m, path, h in self.api_routes()]
            handlers = {
                404: self._unmatched,
                405: self._unmatched,
                EmulatedError: self._emulated_error,
            }
            self._app = Starlette(routes=routes, exception_handlers=handlers)
        return self._app

    def close(self) -> None:
        """Forget the files on disk when the emulator created their directory itself."""
        if self._own_dir:
            shutil.rmtree(self._root, ignore_errors=True)
        else:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def _wrap(self, method: str, template: str, handler: Handler) -> Route:
        key = f"{method} {template}"

        async def endpoint(request: Request) -> Response:
            self.requests_seen[key] += 1
            self.calls_by_path[f"{method} {request.url.path}"] += 1
            if self.config.slow_seconds > 0:
                await asyncio.sleep(self.config.slow_seconds)
            fault = self.faults.draw()
            if fault is not None:
                raise self.fault_error(fault)
            self.authenticate(request)
            return await handler(request)

        return Route(template, endpoint, methods=[method])

    async def _unmatched(self, request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 404
        return self.not_found_error(request, status).response()

    async def _emulated_error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, EmulatedError)  # the only class this handler is registered for
        return exc.response()

    async def _control_config(self, request: Request) -> Response:
        if request.method == "POST":
            try:
                changes = orjson.loads(await request.body())
                if not isinstance(changes, dict):
                    raise ValueError("body must be a JSON object of knobs")
                self.config.update(changes)
            except ValueError as exc:  # orjson.JSONDecodeError is a ValueError
                return json_response({"error": str(exc)}, 400)
        return json_response(self.config.to_dict())

    async def _control_faults(self, request: Request) -> Response:
        try:
            body = orjson.loads(await request.body() or b"{}")
            count = int(body.get("count", 1))
            status = int(body.get("status", 429))
            retry = body.get("retry_after")
            self.inject_faults(count, status, None if retry is None else float(retry))
        except (ValueError, TypeError, AttributeError) as exc:
            return json_response({"error": f"bad fault request: {exc}"}, 400)
        return json_response({"pending": self.faults.pending})

    async def _control_calls(self, request: Request) -> Response:
        return json_response(dict(self.calls_by_path))

    async def _control_state(self, request: Request) -> Response:
        state = await self.snapshot()
        state["requests_seen"] = dict(self.requests_seen)
        state["realtime"] = self.realtime.snapshot()
        state["queue"] = self.queue.snapshot()
        return json_response(state)
