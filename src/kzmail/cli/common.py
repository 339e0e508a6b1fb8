"""What every `kzmail` command shares: the two consoles, one place for errors, arguments.

`KzmailGroup` is the root command group: a `KzmailError` raised by any command, however
deeply nested, becomes one line on stderr and the exit code the error carries (README's
table); its cause is shown only with `KZMAIL_DEBUG=1`.
"""

from __future__ import annotations

import os
import re
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

from kzmail.errors import KzmailError
from kzmail.text import CONTROL_SET

if TYPE_CHECKING:
    from kzmail.models import Workspace

# Terminal control: ESC starts OSC 8 hyperlinks and colour changes, CR overwrites a line,
# bidi overrides reorder it. Printed text keeps only line breaks and tabs.
_UNPRINTABLE = re.compile(rf"(?![\t\n]){CONTROL_SET}")


class _PlainConsole(Console):
    """A console that never lets a string it prints steer the terminal.

    Markup is off unless a call asks for it (`markup=True`); such a call must pass every
    value it did not write itself through `untrusted`.
    """

    def print(self, *objects: Any, **kwargs: Any) -> None:
        super().print(
            *(_UNPRINTABLE.sub("?", o) if isinstance(o, str) else o for o in objects), **kwargs
        )


def untrusted(value: object) -> str:
    """`value` as text that Rich markup shows as written (for calls with `markup=True`)."""
    return escape(str(value))


out = _PlainConsole(highlight=False, markup=False)
err = _PlainConsole(stderr=True, highlight=False, markup=False)

DEBUG_ENV = "KZMAIL_DEBUG"
STATE_ENV = "KZMAIL_STATE_DIR"


def current_workspace(campaign: Path | None = None, *, announce: bool = False) -> Workspace:
    """The workspace of this command: its project's state folder, that project's root (for
    `campaigns/` and `outbox/`), this process's environment and the real clock.

    The state folder is `$KZMAIL_STATE_DIR` if set, else the nearest `.kzmail/` above the
    campaign file (or, without one, above the current folder), so it is the same whatever
    folder the command runs in. A new one is announced in one line; `announce` names the
    folder in use too (for commands that name no campaign). The only place that decides
    these; every service is handed the result.
    """
    from kzmail.models import Workspace  # pydantic loads only when a command runs
    from kzmail.state.folder import locate

    environ = dict(os.environ)
    if environ.get(STATE_ENV):
        return Workspace(state=Path(environ[STATE_ENV]), root=Path("."), environ=environ)
    located = locate((campaign if campaign is not None else Path.cwd()).absolute())
    state, root = _shown(located.state), _shown(located.root)
    if not located.exists and (campaign is None or campaign.is_file()):  # a typo: one error
        err.print(
            f"note: new state folder {state} for this project (who was sent, who unsubscribed, "
            "the unsubscribe secret)",
            soft_wrap=True,
        )
    elif announce:
        err.print(f"state folder: {state}", soft_wrap=True)
    return Workspace(state=state, root=root, environ=environ)


def _shown(path: Path) -> Path:
    """`path` relative to the current folder when it is inside it (shorter in messages)."""
    try:
        return path.relative_to(Path.cwd())
    except ValueError:
        return path


class KzmailGroup(TyperGroup):
    """The root group: the one place where a `KzmailError` becomes a line and an exit code."""

    def invoke(self, ctx: Any) -> Any:  # a click Context (typer 0.2x vendors its own click)
        try:
            return super().invoke(ctx)
        except KzmailError as exc:
            show_error(exc)
            raise typer.Exit(exc.exit_code) from exc


def show_error(exc: KzmailError) -> None:
    """`error: ...` on stderr; with `KZMAIL_DEBUG=1` first the whole chain of causes."""
    if os.environ.get(DEBUG_ENV) == "1":
        traceback.print_exception(exc)
    err.print(f"[bold red]error:[/] {untrusted(exc)}", markup=True, soft_wrap=True)


CampaignArg = Annotated[Path, typer.Argument(help="The campaign YAML file.", show_default=False)]
