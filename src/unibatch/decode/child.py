"""The decoder helper process: ``python -m unibatch.decode.child``.

Started and fed by `unibatch.decode.process.Decoder`. Reads a greeting (the providers'
environment) and then one job per line on stdin; for each job it downloads the result
files, turns every row into a store record and writes the records to stdout in frames of
`chunk` rows, then a DONE frame (or an ERROR frame). It stops at the end of stdin, and
dies on a broken pipe when the ingesting process is gone: it never touches the database,
so stopping anywhere loses nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import queue
import signal
import sys
import threading
import time
from typing import IO, Any

import orjson

from unibatch.decode import wire
from unibatch.decode.records import Record, Unresolved, extend, records
from unibatch.logs import RedactingFormatter
from unibatch.pricing import Rates
from unibatch.providers.base import ProviderJob
from unibatch.providers.registry import ProviderSet
from unibatch.types import BatchStatus


class Output:
    """Frames go out from a thread: while the ingesting process is busy and the pipe is
    full, decoding goes on, up to `depth` frames ahead (bounded memory)."""

    def __init__(self, out: IO[bytes], depth: int = 2) -> None:
        self._out = out
        self._frames: queue.Queue[bytes | None] = queue.Queue(maxsize=depth)
        self._failed: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="decoder-output", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while (frame := self._frames.get()) is not None:
                self._out.write(frame)
                if self._frames.empty():
                    self._out.flush()
            self._out.flush()
        except BaseException as exc:  # a broken pipe: the ingesting process is gone
            self._failed = exc

    def write(self, frame: bytes | None) -> None:
        # Never block for good on a queue whose writer thread has died.
        while True:
            if self._failed is not None:
                raise self._failed
            try:
                self._frames.put(frame, timeout=0.5)
                return
            except queue.Full:
                continue

    def close(self) -> None:
        if self._thread.is_alive():
            self.write(None)
            self._thread.join()
        if self._failed is not None:
            raise self._failed


async def decode_job(providers: ProviderSet, request: dict[str, Any], out: Output) -> None:
    provider = providers.get(request["provider"])
    job = ProviderJob(**(request["job"] | {"status": BatchStatus(request["job"]["status"])}))
    rates = Rates.from_list(request["rates"])
    batch_id, job_id, chunk_size = request["batch_id"], request["job_id"], request["chunk"]
    chunk: list[Record] = []
    unresolved: Unresolved = []
    async for rows in provider.results(job):
        extend(chunk, unresolved, *records(batch_id, job_id, rates, rows, time.time()))
        if len(chunk) >= chunk_size:
            # Blocks when `out` is `depth` frames behind: the download waits (bounded memory).
            out.write(wire.frame(wire.ROWS, wire.encode_rows(chunk, unresolved)))
            chunk, unresolved = [], []
    if chunk:
        out.write(wire.frame(wire.ROWS, wire.encode_rows(chunk, unresolved)))


async def serve(stdin: IO[bytes], stdout: IO[bytes]) -> None:
    greeting = orjson.loads(stdin.readline() or b"{}")
    out = Output(stdout)
    providers = ProviderSet(greeting.get("env") or {}, timeout=greeting.get("timeout", 60.0))
    for name in greeting.get("warm") or ():
        # Imports the adapter and builds its HTTP client (a TLS context costs tens of ms).
        # A failure here (no key...) is reported by the job that needs the adapter.
        with contextlib.suppress(Exception):
            providers.get(name)
    out.write(wire.frame(wire.DONE))  # ready
    try:
        # Between jobs the helper only waits for the next line: blocking here is fine.
        while line := stdin.readline():
            try:
                await decode_job(providers, orjson.loads(line), out)
                out.write(wire.frame(wire.DONE))
            except Exception as exc:
                logging.getLogger("unibatch.decode").debug("job failed", exc_info=True)
                out.write(wire.frame(wire.ERROR, wire.encode_error(exc)))
    finally:
        await providers.aclose()
        out.close()


def _widen_pipe(out: IO[bytes]) -> None:
    try:
        import fcntl

        fcntl.fcntl(out.fileno(), fcntl.F_SETPIPE_SZ, 1024 * 1024)
    except (ImportError, AttributeError, OSError):
        pass  # not Linux, or not a pipe: the default buffer works, only slower


def main() -> None:
    # Ctrl-C in a terminal reaches the whole process group; the ingesting process decides
    # when this helper stops (it closes our stdin).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Parsing allocates millions of short-lived, acyclic dicts: collecting after every 700
    # allocations cost a sixth of the decode time (bench/ingest.py). Freed by reference
    # counting, they need no cycle collector; this process holds nothing else.
    gc.freeze()
    gc.set_threshold(100_000, 50, 100)
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    for handler in logging.getLogger().handlers:
        handler.setFormatter(RedactingFormatter("%(name)s: %(message)s"))
    try:
        _widen_pipe(sys.stdout.buffer)
        asyncio.run(serve(sys.stdin.buffer, sys.stdout.buffer))
    except BrokenPipeError:
        sys.exit(1)  # the ingesting process is gone


if __name__ == "__main__":
    main()
