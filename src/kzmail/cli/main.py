"""The `kzmail` command: the root group, `--version`, and the command groups joined into it.

Each group lives in its own module and imports its services only when a command runs, so
`kzmail --help` and `kzmail --version` load typer and little else.
"""

from __future__ import annotations

from typing import Annotated

import typer

from kzmail.cli import inbox, lists, sending, server, unsubscribe
from kzmail.cli.common import KzmailGroup, out

cli = typer.Typer(
    cls=KzmailGroup,
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Send a newsletter campaign to the subscriber list in your spreadsheet.",
)
cli.add_typer(sending.app)
cli.add_typer(lists.app)
cli.add_typer(unsubscribe.app)
cli.add_typer(inbox.app)
cli.add_typer(server.app)


def _version(asked: bool) -> None:
    if asked:
        from importlib.metadata import version

        out.print(f"kzmail {version('kzmail')}")
        raise typer.Exit()


@cli.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
) -> None:
    """Send a newsletter campaign to the subscriber list in your spreadsheet."""


def main() -> None:
    """The console entry point."""
    cli()


__all__ = ["cli", "main"]
