"""Database engines and schema upgrades.

Users give plain URLs (`sqlite:///path`, `postgresql://...`); we pick the async drivers.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from unibatch.errors import ConfigurationError
from unibatch.store import fresh
from unibatch.store.bulk_read import sqlite_file
from unibatch.store.lite import head_revision
from unibatch.store.ops import Store
from unibatch.store.snapshot import READ_THREADS, SnapshotReader

if TYPE_CHECKING:
    from alembic.config import Config

_MIGRATIONS = Path(__file__).parent / "migrations"
# Any constant works; it only has to be the same in every process.
_MIGRATION_LOCK_ID = 0x756E6962


def async_url(url: str) -> str:
    try:
        parsed = make_url(url)
    except sa.exc.ArgumentError as exc:
        raise ConfigurationError(f"invalid database URL {url!r}: {exc}") from exc
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            folder = Path(parsed.database).expanduser().parent
            if not folder.is_dir():
                # A typo in a path must not quietly start a second, empty database.
                raise ConfigurationError(
                    f"database {url!r}: the directory {folder} does not exist; create it first"
                )
        return parsed.set(drivername="sqlite+aiosqlite").render_as_string(hide_password=False)
    if backend == "postgresql":
        return parsed.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)
    raise ConfigurationError(
        f"unsupported database {backend!r}: use sqlite:///PATH or postgresql://USER@HOST/DB"
    )


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    # Applies to a new database only (before its first table; WAL fixes it after that).
    # Rows carry JSON bodies of 0.5-2 KB: 16 KB pages made result inserts ~10% faster
    # than the 4 KB default and need fewer overflow pages.
    cur.execute("PRAGMA page_size=16384")
    # WAL lets readers (status, progress) run while a worker writes results.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    # Several processes share one file; wait for the write lock instead of failing.
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    # Page cache per connection: 512 KiB instead of SQLite's 2 MB default. A worker pools
    # up to ten connections (ten uploads at once at 1M requests) and each cache stays
    # filled: 15 MB of its peak. Pages missed are read again from the OS's file cache.
    cur.execute("PRAGMA cache_size=-512")
    cur.close()


# The connection option that marks a SQLite transaction as a writer's (see `_SQLiteEngine`).
_WRITES = "unibatch_writes"


class _SQLiteEngine(AsyncEngine):
    """SQLite: `begin()` opens a write transaction, `connect()` a read-only one.

    A deferred BEGIN that later writes fails with "database is locked" at once when
    another writer holds the lock (the busy timeout does not apply to that upgrade), so
    write transactions take the lock at BEGIN (IMMEDIATE) and wait for it. Reads must not:
    under WAL a deferred read never waits for a writer, so status and progress stay
    readable while a long write (an import, an ingest) runs. Every write in the store
    goes through `begin()`; `connect()` is for reads only.

    `reader`, for a database in a file, runs short reads in a thread of its own
    (see `unibatch.store.snapshot`); `Store.read` uses it."""

    reader: SnapshotReader | None = None

    @contextlib.asynccontextmanager
    async def begin(self) -> AsyncIterator[AsyncConnection]:
        async with self.connect() as conn:
            await conn.execution_options(**{_WRITES: True})
            async with conn.begin():
                yield conn

    def execution_options(self, **opt: Any) -> AsyncEngine:
        engine = _SQLiteEngine(self.sync_engine.execution_options(**opt))
        engine.reader = self.reader
        return engine

    async def dispose(self, close: bool = True) -> None:
        if self.reader is not None:
            self.reader.close()
        await super().dispose(close)


def _sqlite_begin(conn: sa.Connection) -> None:
    writes = conn.get_execution_options().get(_WRITES, False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if writes else "BEGIN")


def _sqlite_setup(engine: sa.Engine) -> None:
    sa.event.listen(engine, "connect", _sqlite_pragmas)
    sa.event.listen(engine, "begin", _sqlite_begin)
    sa.event.listen(
        engine, "connect", lambda dbapi_conn, _rec: setattr(dbapi_conn, "isolation_level", None)
    )


def create_engine(url: str) -> AsyncEngine:
    full = async_url(url)
    if full.startswith("sqlite"):
        engine = _SQLiteEngine(create_async_engine(full, connect_args={"timeout": 30}).sync_engine)
        _sqlite_setup(engine.sync_engine)
        path = sqlite_file(engine.url)
        if path is not None:
            sync = sa.create_engine(
                sa.URL.create("sqlite", database=path),
                connect_args={"timeout": 30, "check_same_thread": False},
                pool_size=READ_THREADS,
            )
            _sqlite_setup(sync)
            engine.reader = SnapshotReader(sync)
        return engine
    return create_async_engine(full, pool_size=5, max_overflow=5, pool_pre_ping=True)


def alembic_config() -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    return cfg


def _up_to_date(sync_conn: sa.Connection) -> bool:
    """Whether the schema is at the newest migration. Checked before Alembic is loaded:
    importing it takes a quarter of a second, which every command would pay for nothing
    once the database is current."""
    if not sa.inspect(sync_conn).has_table("alembic_version"):
        return False
    rows = sync_conn.execute(sa.text("SELECT version_num FROM alembic_version")).all()
    return [row[0] for row in rows] == [head_revision()]


def _upgrade(sync_conn: sa.Connection) -> None:
    from alembic import command

    if sync_conn.dialect.name == "postgresql":
        # Several workers may start at once; only one of them runs the migrations.
        sync_conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK_ID})
    cfg = alembic_config()
    cfg.attributes["connection"] = sync_conn
    command.upgrade(cfg, "head")


def _create_or_upgrade(sync_conn: sa.Connection) -> None:
    # A new SQLite file is made from the schema snapshot, without Alembic (`store.fresh`).
    if not fresh.create(sync_conn):
        _upgrade(sync_conn)


async def upgrade(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        if await conn.run_sync(_up_to_date):
            return
    async with engine.begin() as conn:
        await conn.run_sync(_create_or_upgrade)


async def open_store(url: str, *, migrate: bool = True) -> Store:
    """The store at `url`, its schema brought up to date; a database that cannot be
    reached is one `ConfigurationError` line naming it (password hidden) and the cause."""
    engine = create_engine(url)
    try:
        if migrate:
            await upgrade(engine)
        else:
            async with engine.connect():
                pass
    except (OSError, sa.exc.DBAPIError) as exc:
        await engine.dispose()
        cause = exc.orig if isinstance(exc, sa.exc.DBAPIError) else exc
        shown = make_url(url).render_as_string(hide_password=True)
        raise ConfigurationError(
            f"cannot open the database {shown}: {type(cause).__name__}: {cause}".strip()
        ) from None
    return Store(engine)
