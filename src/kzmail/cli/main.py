"""The `kzmail` command: the root group, `--version`, and the command groups joined into it.

Each group lives in its own module and imports its services only when a command runs, so
`kzmail --help` and `kzmail --version` load typer and little else.
"""

from __future__ import annotations

from typing import Annotated

import typer

from kzmail.cli import inbox, lists, new, sending, server, unsubscribe
from kzmail.cli.common import KzmailGroup, out

HELP = """Send a newsletter campaign to the subscriber list in your spreadsheet.

Start with `kzmail new NAME`, then check, preview and send it.

State (who was sent, who unsubscribed, the unsubscribe secret) lives in the nearest .kzmail/
folder above the campaign file (or, for commands without one, above the current folder),
made beside campaigns/ the first time; $KZMAIL_STATE_DIR overrides it.

Exit codes: 0 done, 1 general error, 2 a mistake in your files or options, 3 some
deliveries failed, 4 the send paused itself, 130 interrupted (Ctrl-C).
"""

cli = typer.Typer(
    cls=KzmailGroup,
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help=HELP,
)
cli.add_typer(new.app)
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


@cli.callback(help=HELP)
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
) -> None:
    """The root's own option, --version (its help is HELP)."""


def main() -> None:
    """The console entry point."""
    cli()


__all__ = ["cli", "main"]
