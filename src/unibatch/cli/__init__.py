"""The `unibatch` command line.

Exit codes: 0 success; 1 a provider or runtime error; 2 bad input or configuration;
3 the batch ended failed, expired or cancelled; 4 no such batch; 5 the batch has not
ended (`results` without `--partial`).

Commands live by area (`batches`, `keys`, `dev`), gathered in `commands.app`; `common`
holds what they share, among it `async_command`, which runs an `async def` command and
turns our errors into the exit codes above.

Start-up time is part of every command: the command modules import only typer and rich,
and a command imports what it needs (the store, the engine, the gateway) when it runs.
tests/unit/test_lazy_imports.py checks that `--help` loads none of them. `unibatch
status` on a SQLite store does not load typer either (`quick`): `main` tries it first.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from unibatch.cli.commands import app

__all__ = ["app", "main"]


def main(argv: list[str] | None = None) -> None:
    """Run the command line (the `unibatch` script and `python -m unibatch`)."""
    from unibatch.cli import quick

    args = sys.argv[1:] if argv is None else argv
    if quick.run(args):
        return
    from unibatch.cli.commands import app

    app(args, prog_name="unibatch")


def __getattr__(name: str) -> Any:
    # Lazy, so that `main` can answer `status` before typer and rich are imported.
    if name == "app":
        from unibatch.cli.commands import app

        return app
    raise AttributeError(f"module 'unibatch.cli' has no attribute {name!r}")
