"""Provider-neutral machinery shared by every emulator: knobs, clock, faults, wire recording.

A provider emulator subclasses :class:`ProviderEmulator`, lists its API routes and says how its
errors look on the wire; everything a test steers (timing, injected faults, slowness) and
everything a test asserts on (calls seen per route) lives here, identical for all providers.
"""

from __future__ import annotations

import abc
import asyncio
import dataclasses
import random
import shutil
import tempfile
import time
from collections import Counter, deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.concurrency import iterate_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

Clock = Callable[[], float]
"""Returns the current time in Unix seconds (float); ``time.time`` unless a test swaps it."""

Handler = Callable[[Request], Awaitable[Response]]

# Knobs that may not change over HTTP: the data directory is fixed once files exist in it.
_FROZEN_KNOBS = frozenset({"data_dir"})


@dataclass
class EmulatorConfig:
    """Every knob of the emulators; one instance is shared by all providers a server mounts.

    Durations are in seconds and multiplied by ``time_scale`` (0.1 = ten times faster); the
    schedule of a batch is frozen when it is created, so a change affects only new batches.

    Example::

        config = EmulatorConfig(time_scale=0.05, failure_rate=0.1)
        config.update({"fault_rate": 0.2})      # what POST {prefix}/_emulator/config does
    """

    time_scale: float = 1.0
    validating_seconds: float = 0.5
    in_progress_seconds: float = 1.5
    finalizing_seconds: float = 0.5
    cancelling_seconds: float = 0.5
    completion_window_seconds: float = 86400.0
    failure_rate: float = 0.0
    fault_rate: float = 0.0
    fault_status: int = 429
    retry_after: float = 1.0
    slow_seconds: float = 0.0
    create_delay: float = 0.0
    download_chunk_delay: float = 0.0
    max_requests_per_batch: int | None = None
    max_file_bytes: int | None = None
    seed: int = 0
    data_dir: Path | None = None

    @property
    def download_chunk_bytes(self) -> int:
        """Network chunk of a file download: small when paced, so a test can stop a
        client mid-file; large otherwise, so serving costs few thread hops."""
        return 64 * 1024 if self.download_chunk_delay > 0 else 256 * 1024

    def scaled(self, seconds: float) -> float:
        """A lifecycle duration after ``time_scale``."""
        return seconds * self.time_scale

    def update(self, changes: Mapping[str, Any]) -> None:
        """Apply a partial update, all or nothing; raises ``ValueError`` on a bad key or value."""
        fields = {f.name: f for f in dataclasses.fields(self)}
        coerced: dict[str, Any] = {}
        for key, value in changes.items():
            if key not in fields:
                raise ValueError(f"unknown knob {key!r}")
            if key in _FROZEN_KNOBS:
                raise ValueError(f"knob {key!r} cannot change at runtime")
            coerced[key] = _coerce(key, value, nullable=key.startswith("max_"))
        for key, value in coerced.items():
            setattr(self, key, value)

    def to_dict(self) -> dict[str, Any]:
        """The knobs as JSON-ready values."""
        out = dataclasses.asdict(self)
        out["data_dir"] = str(self.data_dir) if self.data_dir is not None else None
        return out


def _coerce(key: str, value: Any, *, nullable: bool) -> Any:
    if value is None and nullable:
        return None
    integer = key in {"fault_status", "seed"} or key.startswith("max_")
    # bool is an int subclass; "true" for a rate is a caller bug worth reporting.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"knob {key!r} needs a number, got {value!r}")
    if integer:
        if value != int(value):
            raise ValueError(f"knob {key!r} needs an integer, got {value!r}")
        if key == "fault_status" and not 400 <= value <= 599:
            raise ValueError(f"knob 'fault_status' must be an HTTP error status, got {value!r}")
        return int(value)
    if value < 0 or (key.endswith("_rate") and value > 1):
        raise ValueError(f"knob {key!r} out of range: {value!r}")
    return float(value)


@dataclass(frozen=True)
class Fault:
    """One HTTP fault to answer instead of the real response."""

    status: int
    retry_after: float | None


class FaultPlan:
    """Decides which API calls fail: first an explicit queue, then a seeded coin per call.

    The queue makes storms exact (``inject(3)`` fails precisely the next three calls); the
    coin uses ``random.Random(seed)`` so a ``fault_rate`` run is reproducible.
    """

    def __init__(self, config: EmulatorConfig) -> None:
        self._config = config
        self._queue: deque[Fault] = deque()
        self._seed = config.seed
        self._rng = random.Random(config.seed)

    def inject(self, count: int, status: int = 429, retry_after: float | None = None) -> None:
        """Make the next ``count`` API calls answer ``status``."""
        if retry_after is None:
            retry_after = self._config.retry_after
        self._queue.extend(Fault(status, retry_after) for _ in range(count))

    @property
    def pending(self) -> int:
        """Faults still queued."""
        return len(self._queue)

    def draw(self) -> Fault | None:
        """The fault for the call being served, if any."""
        try:
            return self._queue.popleft()
        except IndexError:
            pass
        if self._seed != self._config.seed:
            self._seed = self._config.seed
            self._rng = random.Random(self._seed)
        rate = self._config.fault_rate
        if rate > 0 and self._rng.random() < rate:
            return Fault(self._config.fault_status, self._config.retry_after)
        return None


def json_response(
    body: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    """A JSON response serialised with orjson (fast, and keeps non-ASCII ids byte-exact)."""
    return Response(orjson.dumps(body), status, headers, media_type="application/json")


def rechunk(pieces: Iterable[bytes], size: int = 64 * 1024) -> Iterator[bytes]:
    """Group small pieces (result rows) into network-sized chunks."""
    buf: list[bytes] = []
    filled = 0
    for piece in pieces:
        buf.append(piece)
        filled += len(piece)
        if filled >= size:
            yield b"".join(buf)
            buf, filled = [], 0
    if buf:
        yield b"".join(buf)


def read_chunks(path: Path, size: int = 64 * 1024) -> Iterator[bytes]:
    """A file's bytes, chunk by chunk, so a download never holds the whole file."""
    with path.open("rb") as fh:
        while chunk := fh.read(size):
            yield chunk


async def paced(chunks: Iterator[bytes], delay: Callable[[], float]) -> AsyncIterator[bytes]:
    """Stream ``chunks`` from a worker thread, sleeping ``delay()`` between them.

    The thread keeps file reads and row generation off the event loop; the delay opens the
    window in which a test can kill a client mid-download.
    """
    first = True
    async for chunk in iterate_in_threadpool(chunks):
        pause = delay()
        if not first and pause > 0:
            await asyncio.sleep(pause)
        first = False
        yield chunk


class ProviderEmulator(abc.ABC):
    """Base of one provider's emulator: an ASGI app plus the state it keeps.

    Subclasses implement :meth:`api_routes` and the wire shape of their errors; this class
    wraps each route so that every call is counted, slowed, possibly faulted and
    authenticated, in that order, and adds the unauthenticated, never-faulted control
    routes ``POST _emulator/config``, ``POST _emulator/faults`` and ``GET _emulator/state``.
    """

    name: str = "provider"

    def __init__(self, config: EmulatorConfig | None = None, clock: Clock | None = None) -> None:
        self.config = config if config is not None else EmulatorConfig()
        self.clock: Clock = clock if clock is not None else time.time
        self.faults = FaultPlan(self.config)
        self.requests_seen: Counter[str] = Counter()
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
    def authenticate(self, request: Request) -> Response | None:
        """``None`` when the call may proceed, else the provider's auth error response."""

    @abc.abstractmethod
    def fault_response(self, fault: Fault) -> Response:
        """The provider's wire shape for an injected fault."""

    @abc.abstractmethod
    def not_found_response(self, request: Request, status: int) -> Response:
        """The provider's answer to an unknown path (404) or method (405)."""

    @abc.abstractmethod
    async def snapshot(self) -> dict[str, Any]:
        """What the emulator holds: at least ``batches`` (list) and ``files`` (count)."""

    # -- shared behaviour ---------------------------------------------------------------

    def inject_faults(
        self, count: int, status: int = 429, retry_after: float | None = None
    ) -> None:
        """Make exactly the next ``count`` API calls fail with ``status``."""
        self.faults.inject(count, status, retry_after)

    @property
    def app(self) -> Starlette:
        """The ASGI app; routes are relative to the provider's mount prefix."""
        if self._app is None:
            routes: list[BaseRoute] = [
                Route("/_emulator/config", self._control_config, methods=["GET", "POST"]),
                Route("/_emulator/faults", self._control_faults, methods=["POST"]),
                Route("/_emulator/state", self._control_state, methods=["GET"]),
            ]
            routes += [self._wrap(m, path, h) for m, path, h in self.api_routes()]
            handlers = {404: self._unmatched, 405: self._unmatched}
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
            if self.config.slow_seconds > 0:
                await asyncio.sleep(self.config.slow_seconds)
            fault = self.faults.draw()
            if fault is not None:
                return self.fault_response(fault)
            denied = self.authenticate(request)
            if denied is not None:
                return denied
            return await handler(request)

        return Route(template, endpoint, methods=[method])

    async def _unmatched(self, request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 404
        return self.not_found_response(request, status)

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

    async def _control_state(self, request: Request) -> Response:
        state = await self.snapshot()
        state["requests_seen"] = dict(self.requests_seen)
        return json_response(state)
