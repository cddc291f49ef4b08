"""Short reads of a SQLite file, each in one hop to a thread.

Through aiosqlite every step of a read (check out a connection, begin, execute, fetch,
close the cursor, roll back) is a round trip between the event loop and the connection's
own thread. One `GET /v1/batches/{id}` of the gateway made about 25 of them, and they,
not SQLite, were most of its time (bench/gateway_reads.py). Here a whole read, any
number of statements in one transaction (so one WAL snapshot), runs in one call on a plain
synchronous engine over the same file, in a small pool of threads of its own, each
keeping its connection open between reads. Writes stay on the async engine; under WAL
these reads never wait for them.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import sqlalchemy as sa

T = TypeVar("T")
# Reads are short; a few threads keep one slow read (progress over a large batch) from
# holding up the others without running dozens of them against two cores.
READ_THREADS = 4


class SnapshotReader:
    """Runs `fn(conn)` in a read transaction of `engine` (a synchronous SQLite engine)."""

    def __init__(self, engine: sa.Engine, threads: int = READ_THREADS) -> None:
        self.engine = engine
        self._size = threads
        self._threads: ThreadPoolExecutor | None = None
        self._local = threading.local()
        self._lock = threading.Lock()
        self._open: list[sa.Connection] = []

    def _connection(self) -> sa.Connection:
        # Kept per thread: checking a connection out of the pool and back in for every
        # read cost more than a short read itself.
        conn: sa.Connection | None = getattr(self._local, "conn", None)
        if conn is None or conn.closed or conn.invalidated:
            conn = self._local.conn = self.engine.connect()
            with self._lock:
                self._open = [c for c in self._open if not c.closed] + [conn]
        return conn

    def _run(self, fn: Callable[[sa.Connection], T]) -> T:
        conn = self._connection()
        # Nothing is written here: the transaction (begun by the first statement) is
        # rolled back, and a connection left in a bad state is given up.
        try:
            return fn(conn)
        except sa.exc.DBAPIError:
            conn.close()
            raise
        finally:
            if not conn.closed:
                conn.rollback()

    async def __call__(self, fn: Callable[[sa.Connection], T]) -> T:
        if self._threads is None:
            self._threads = ThreadPoolExecutor(self._size, thread_name_prefix="unibatch-read")
        return await asyncio.get_running_loop().run_in_executor(self._threads, self._run, fn)

    def close(self) -> None:
        """Stop the threads and close their connections. Like an engine's `dispose`,
        this is no end: a later read starts afresh."""
        threads, self._threads = self._threads, None
        if threads is not None:
            threads.shutdown(wait=True)
        # The threads are gone: their connections are closed from here.
        with self._lock:
            for conn in self._open:
                conn.close()
            self._open.clear()
        self.engine.dispose()
