"""Which database a command uses, found without loading the settings model.

`Settings` (pydantic-settings) takes a quarter of a second to import; commands that only
read the store (`unibatch status`, `list`) need nothing of it but the database URL, and
resolve it here the same way: `UNIBATCH_DATABASE_URL` (any letter case, as
pydantic-settings reads it), else a SQLite file in the user data directory.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

ENV = "UNIBATCH_DATABASE_URL"


def default_database_url() -> str:
    import platformdirs  # only when no URL is given

    data_dir = Path(platformdirs.user_data_dir("unibatch"))
    data_dir.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{data_dir / 'unibatch.db'}"


def database_url(explicit: str | None = None, env: Mapping[str, str] | None = None) -> str:
    """`explicit` (a `--database` option), else what `Settings().database_url` would be."""
    if explicit:
        return explicit
    # pydantic-settings matches names case-insensitively; the last one listed wins.
    found = {k.lower(): v for k, v in (os.environ if env is None else env).items()}
    value = found.get(ENV.lower())
    return default_database_url() if value is None else value
