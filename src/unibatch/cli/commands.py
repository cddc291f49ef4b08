"""The `unibatch` command line, as typer commands (see the package's docstring)."""

from __future__ import annotations

from typing import Annotated

import typer

from unibatch import logs
from unibatch.cli import batches, costs, dev, keys, webhooks
from unibatch.cli.common import EXIT_INPUT, Group, error
from unibatch.errors import ConfigurationError

__all__ = ["app"]

app = typer.Typer(
    cls=Group,
    help="One Batch API for every LLM provider: submit, track and collect batches.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _version(shown: bool) -> None:
    if shown:
        from importlib import metadata  # loads the email package: only when asked

        typer.echo(f"unibatch {metadata.version('unibatch')}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """One Batch API for every LLM provider: submit, track and collect batches."""
    # Warnings (a provider error being retried, say) through the formatter that masks
    # credentials; `serve`, `worker` and `emulate` set their own default level.
    try:
        logs.setup("WARNING")
    except ConfigurationError as exc:
        error(exc)
        raise typer.Exit(EXIT_INPUT) from None


# Registration order is the order `unibatch --help` lists commands in.
app.add_typer(batches.app)
app.add_typer(costs.app)
app.add_typer(dev.app)
app.add_typer(dev.db_app, name="db")
app.add_typer(keys.app, name="keys")
app.add_typer(webhooks.app, name="webhooks")
