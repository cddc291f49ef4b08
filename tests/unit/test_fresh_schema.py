"""A new SQLite file is made from the schema snapshot (`unibatch.store.fresh`): the same
database the migrations make, without loading Alembic."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
from pathlib import Path

from unibatch.store import fresh
from unibatch.store.db import open_store
from unibatch.store.lite import head_revision


def test_the_snapshot_is_what_the_migrations_make() -> None:
    # Fails after a new migration until `python -m unibatch.store.fresh` is run.
    revision, statements = fresh.migrated_schema()
    assert revision == head_revision()
    assert fresh.SNAPSHOT.read_text(encoding="utf-8") == fresh.render(revision, statements)


def test_a_new_file_gets_the_migrated_schema_without_alembic(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    code = (
        "import asyncio, sys\n"
        "from unibatch.store.db import open_store\n"
        "async def main():\n"
        f"    store = await open_store('sqlite:///{path}')\n"
        "    await store.engine.dispose()\n"
        "asyncio.run(main())\n"
        "print(any(m == 'alembic' or m.startswith('alembic.') for m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
    _, migrated = fresh.migrated_schema()
    with sqlite3.connect(path) as conn:
        assert fresh.dump(conn) == migrated
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [
            (head_revision(),)
        ]


def test_a_file_with_tables_is_migrated_as_before(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE notes (x INTEGER)")
    store = asyncio.run(_open(f"sqlite:///{path}"))
    del store
    with sqlite3.connect(path) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    # Alembic ran every migration beside the table that was there.
    assert {"notes", "batches", "jobs", "requests", "results"} <= tables


async def _open(url: str) -> object:
    store = await open_store(url)
    await store.engine.dispose()
    return store
