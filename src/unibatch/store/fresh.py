"""A new SQLite database gets the newest schema in one step instead of every migration.

Running the migrations on a new file costs about half a second (loading Alembic and its
operations, then every migration, several of which rebuild tables because SQLite
cannot alter columns in place): a sixth of a first `unibatch submit` of 100,000 lines.
`sqlite_schema.sql` holds the schema the migrations produce, statement for statement as
SQLite stores it (`sqlite_master`), and the revision it is of. A new, empty file gets
those statements and that revision in one transaction; the result is the database the
migrations would have made (a test migrates a file and compares). Anything else (a file
with tables, PostgreSQL, a snapshot older than the newest migration) is migrated as
before, so a stale snapshot costs time, never correctness.

Regenerate the snapshot after adding a migration:

    python -m unibatch.store.fresh
"""

from __future__ import annotations

import sqlite3
import sys
import tempfile
from pathlib import Path

import sqlalchemy as sa

from unibatch.store.lite import head_revision

SNAPSHOT = Path(__file__).with_name("sqlite_schema.sql")
_HEAD = "-- revision: "
# Each statement ends with a line holding only this (a statement may span lines).
_END = "\n;\n"


def dump(conn: sqlite3.Connection) -> list[str]:
    """The statements that make `conn`'s schema: its tables in the order SQLite made them,
    then the rest (indexes) by name, an order that does not depend on the order Alembic
    happened to rebuild a table's indexes in. SQLite's own tables are made by SQLite."""
    rows = conn.execute(
        "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%'"
        " ORDER BY type != 'table', CASE WHEN type = 'table' THEN rowid END, name"
    ).fetchall()
    return [row[0] for row in rows]


def _read() -> tuple[str, list[str]] | None:
    try:
        text = SNAPSHOT.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    first, _, rest = text.partition("\n")
    if not first.startswith(_HEAD):
        return None
    statements = [s.strip() for s in rest.split(_END) if s.strip()]
    return first[len(_HEAD) :].strip(), statements


def create(sync_conn: sa.Connection) -> bool:
    """Give a new, empty SQLite database the newest schema from the snapshot, in the
    caller's transaction; False (nothing done) where the migrations must run instead."""
    if sync_conn.dialect.name != "sqlite":
        return False
    if sync_conn.exec_driver_sql("SELECT count(*) FROM sqlite_master").scalar():
        return False
    snapshot = _read()
    if snapshot is None or snapshot[0] != head_revision():
        return False
    revision, statements = snapshot
    for statement in statements:
        sync_conn.exec_driver_sql(statement)
    sync_conn.exec_driver_sql("INSERT INTO alembic_version (version_num) VALUES (?)", (revision,))
    return True


def migrated_schema() -> tuple[str, list[str]]:
    """The revision and schema statements of a new SQLite file brought up by Alembic."""
    from alembic import command

    from unibatch.store.db import alembic_config

    with tempfile.TemporaryDirectory(prefix="unibatch-schema-") as folder:
        path = Path(folder) / "schema.db"
        engine = sa.create_engine(f"sqlite:///{path}")
        try:
            with engine.begin() as conn:
                cfg = alembic_config()
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
                revision = conn.exec_driver_sql("SELECT version_num FROM alembic_version")
                head = str(revision.scalar_one())
        finally:
            engine.dispose()
        with sqlite3.connect(path) as conn:
            return head, dump(conn)


def render(revision: str, statements: list[str]) -> str:
    return f"{_HEAD}{revision}\n" + "".join(s + _END for s in statements)


def main() -> None:
    revision, statements = migrated_schema()
    SNAPSHOT.write_text(render(revision, statements), encoding="utf-8")
    print(f"wrote {SNAPSHOT} ({len(statements)} statements, revision {revision})", file=sys.stderr)


if __name__ == "__main__":
    main()
