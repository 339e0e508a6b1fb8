"""What every `kzmail` command shares: the Typer app, the two consoles, one-line errors."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from .errors import KzmailError

cli = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Send a newsletter campaign to the subscriber list in your spreadsheet.")
out = Console(highlight=False)
err = Console(stderr=True, highlight=False)

CampaignArg = Annotated[Path, typer.Argument(help="The campaign YAML file.", show_default=False)]


def fail(exc: KzmailError) -> typer.Exit:
    err.print(f"[bold red]error:[/] {exc}", markup=True, soft_wrap=True)
    return typer.Exit(exc.exit_code)
