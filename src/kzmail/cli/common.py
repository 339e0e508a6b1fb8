"""What every `kzmail` command shares: the Typer app, the two consoles, one-line errors."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from kzmail.errors import KzmailError

# Terminal control: ESC starts OSC 8 hyperlinks and colour changes, CR overwrites a line,
# bidi overrides reorder it. Printed text keeps only line breaks and tabs.
_UNPRINTABLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


class _PlainConsole(Console):
    """A console that never lets a string it prints steer the terminal.

    Markup is off unless a call asks for it (`markup=True`); such a call must pass every
    value it did not write itself through `untrusted`.
    """

    def print(self, *objects: Any, **kwargs: Any) -> None:
        super().print(*(_UNPRINTABLE.sub("?", o) if isinstance(o, str) else o
                        for o in objects), **kwargs)


def untrusted(value: object) -> str:
    """`value` as text that Rich markup shows as written (for calls with `markup=True`)."""
    return escape(str(value))


cli = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Send a newsletter campaign to the subscriber list in your spreadsheet.")
out = _PlainConsole(highlight=False, markup=False)
err = _PlainConsole(stderr=True, highlight=False, markup=False)

CampaignArg = Annotated[Path, typer.Argument(help="The campaign YAML file.", show_default=False)]


def fail(exc: KzmailError) -> typer.Exit:
    err.print(f"[bold red]error:[/] {untrusted(exc)}", markup=True, soft_wrap=True)
    return typer.Exit(exc.exit_code)
