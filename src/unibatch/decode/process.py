"""The ingesting process's side of the decoder helper (see `child.py`).

One long-lived helper per engine, started on the first large ingest and reused: a worker
pays its start-up (a fraction of a second; the helper needs ~45 MB) once. It decodes one
job at a time.
If the helper dies, or a job is abandoned half-read, it is stopped and the next job
starts a fresh one; the ingest step that was running sees a transient error and is
retried, and re-ingesting is idempotent.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import sys
from collections.abc import AsyncGenerator, Mapping, Sequence

import orjson

from unibatch.decode import wire
from unibatch.decode.records import Record, Unresolved
from unibatch.errors import DecoderError, TransientProviderError
from unibatch.pricing import Rates
from unibatch.providers.base import ProviderJob

log = logging.getLogger("unibatch.decode")
_READ_LIMIT = 2 * 1024 * 1024
# `python -m unibatch.decode.child`, minus httpx's command-line tool and trio: httpx
# imports its tool (with rich, pygments and click, ~6 MB of the helper's ~35) whenever
# they are installed, as they are with our CLI, and httpcore imports trio (~4 MB) whenever
# it is installed (selenium brings it, say); the helper uses neither and runs on asyncio.
# Both fall back as when the package is missing.
_START = (
    "import sys; sys.modules['httpx._main'] = None; sys.modules['trio'] = None; "
    "from unibatch.decode.child import main; main()"
)


class Decoder:
    def __init__(self, env: Mapping[str, str], timeout: float) -> None:
        self._env = {"env": dict(env), "timeout": timeout}
        self._proc: asyncio.subprocess.Process | None = None
        self._lock = asyncio.Lock()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    async def start(self, warm: Sequence[str] = ()) -> None:
        """Start the helper unless it is running, and wait until it is ready, with the
        adapters named in `warm` built (a worker may call this at start-up)."""
        if self._proc is not None and self._proc.returncode is None:
            return
        proc = self._proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _START,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            # The stream reader pauses the pipe above twice this; a frame is a few MB.
            limit=_READ_LIMIT,
        )
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(orjson.dumps(self._env | {"warm": list(warm)}) + b"\n")
        try:
            ready = await asyncio.wait_for(proc.stdout.readexactly(wire.HEADER.size), 60)
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError) as exc:
            await self._stop(kill=True)
            raise TransientProviderError(
                f"the decoder process did not start (exit code {proc.returncode})"
            ) from exc
        if wire.HEADER.unpack(ready) != (wire.DONE, 0):
            await self._stop(kill=True)
            raise DecoderError(f"decoder process: unexpected greeting {ready!r}")

    async def records(
        self,
        provider: str,
        job: ProviderJob,
        *,
        batch_id: str,
        job_id: str,
        rates: Rates,
        chunk: int,
    ) -> AsyncGenerator[tuple[list[Record], Unresolved], None]:
        """The job's records, about `chunk` at a time, decoded by the helper."""
        request = {
            "provider": provider,
            "job": dataclasses.asdict(job),  # the status is a str enum: JSON keeps its value
            "batch_id": batch_id,
            "job_id": job_id,
            "rates": rates.as_list(),
            "chunk": chunk,
        }
        async with self._lock:
            await self.start()
            proc = self._proc
            assert proc is not None and proc.stdin is not None and proc.stdout is not None
            finished = False
            try:
                proc.stdin.write(orjson.dumps(request) + b"\n")
                await proc.stdin.drain()
                while True:
                    header = await proc.stdout.readexactly(wire.HEADER.size)
                    kind, size = wire.HEADER.unpack(header)
                    payload = await proc.stdout.readexactly(size) if size else b""
                    if kind == wire.ROWS:
                        yield wire.decode_rows(payload)
                    elif kind == wire.DONE:
                        finished = True
                        return
                    else:
                        finished = True
                        raise wire.decode_error(payload)
            except (asyncio.IncompleteReadError, ConnectionError) as exc:
                code = await _exit_code(proc)
                raise TransientProviderError(
                    f"{provider}: the decoder process stopped (exit code {code}) while "
                    f"reading the results of {job.id}"
                ) from exc
            finally:
                if not finished:
                    # Half-read: the rest of this job's frames would reach the next one.
                    await self._stop(kill=True)

    async def aclose(self) -> None:
        await self._stop(kill=False)

    async def _stop(self, *, kill: bool) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.returncode is not None:
            return
        if kill:
            proc.kill()
        elif proc.stdin is not None:
            proc.stdin.close()  # end of input: the helper finishes and exits
        try:
            await asyncio.wait_for(proc.wait(), timeout=10)
        except TimeoutError:
            log.warning("decoder process %s did not exit; killing it", proc.pid)
            proc.kill()
            await proc.wait()


async def _exit_code(proc: asyncio.subprocess.Process) -> int | None:
    try:
        return await asyncio.wait_for(proc.wait(), timeout=2)
    except TimeoutError:
        return None
