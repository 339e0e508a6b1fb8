"""What every `kzmail` command shares: the two consoles, one place for errors, arguments.

`KzmailGroup` is the root command group: a `KzmailError` raised by any command, however
deeply nested, becomes one line on stderr and the exit code the error carries (README's
table); its cause is shown only with `KZMAIL_DEBUG=1`.
"""

from __future__ import annotations

import os
import re
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

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


def current_workspace(
    campaign: Path | None = None, *, announce: bool = False, note_new: bool = True
) -> Workspace:
    """The workspace of this command: its project's state folder, that project's root (for
    `campaigns/` and `outbox/`), this process's environment and the real clock.

    The state folder is `$KZMAIL_STATE_DIR` if set, else the nearest `.kzmail/` above the
    campaign file (or, without one, above the current folder), so it is the same whatever
    folder the command runs in. A new one is announced in one line; `announce` names the
    folder in use too (for commands that name no campaign). The only place that decides
    these; every service is handed the result. `note_new=False` for a command that makes
    no state (`new`).
    """
    from kzmail.models import Workspace  # pydantic loads only when a command runs
    from kzmail.state.folder import locate

    environ = dict(os.environ)
    if environ.get(STATE_ENV):
        return Workspace(state=Path(environ[STATE_ENV]), root=Path("."), environ=environ)
    located = locate((campaign if campaign is not None else Path.cwd()).absolute())
    state, root = _shown(located.state), _shown(located.root)
    workspace = Workspace(state=state, root=root, environ=environ)
    if not note_new:
        return workspace
    if not located.exists and (campaign is None or campaign.is_file()):  # a typo: one error
        err.print(
            f"note: new state folder {state} for this project (who was sent, who unsubscribed, "
            "the unsubscribe secret)",
            soft_wrap=True,
        )
    elif announce:
        err.print(f"state folder: {state}", soft_wrap=True)
    return workspace


def _shown(path: Path) -> Path:
    """`path` relative to the current folder when it is inside it (shorter in messages)."""
    try:
        return path.relative_to(Path.cwd())
    except ValueError:
        return path


class _Argument(TyperArgument):
    """An argument shown as its metavar only (`CAMPAIGN`, `[CAMPAIGN]` when optional)."""

    def display_type_rich(self, ctx: Any) -> str | None:
        return None

    def get_usage_pieces(self, ctx: Any) -> list[str]:
        name = self.display_name_raw
        return [(name if self.required else f"[{name}]") + ("..." if self.nargs != 1 else "")]


class _Flag(TyperOption):
    """An on/off option: nothing after its name (typer 0.29 would show `<bool>`)."""

    def display_type_rich(self, ctx: Any) -> str | None:
        return None


# a value option without a metavar of its own is shown by its type, click's way
_METAVARS = {"Path": "PATH", "str": "TEXT", "int": "N", "float": "NUMBER"}


def _plain(param: Any) -> None:
    """Give `param` the help display of kzmail's commands (in place, once)."""
    if type(param) is TyperArgument:
        param.__class__ = _Argument
        if param.metavar is None:
            param.metavar = param.name.upper()
    elif type(param) is TyperOption:
        if param.is_flag:
            param.__class__ = _Flag
        elif param.metavar is None:
            bare = param.bare_type().removeprefix("list[").removesuffix("]")
            param.metavar = _METAVARS.get(bare, "VALUE")


class _PlainHelp:
    """Help without typer's type placeholders: flags bare, values as a METAVAR."""

    def get_params(self, ctx: Any) -> list[Any]:
        params: list[Any] = super().get_params(ctx)  # type: ignore[misc]
        for param in params:
            _plain(param)
        return params


class KzmailCommand(_PlainHelp, TyperCommand):
    """A kzmail command (help shown as `_PlainHelp` says)."""


class KzmailSubgroup(_PlainHelp, TyperGroup):
    """A group of kzmail commands below the root (`unsubscribes`, `secret`)."""


_Function = TypeVar("_Function", bound=Callable[..., Any])


class KzmailTyper(typer.Typer):
    """`typer.Typer` whose commands and groups are kzmail's (`KzmailCommand`)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("cls", KzmailSubgroup)
        super().__init__(**kwargs)

    def command(self, *args: Any, **kwargs: Any) -> Callable[[_Function], _Function]:
        kwargs.setdefault("cls", KzmailCommand)
        return super().command(*args, **kwargs)


class KzmailGroup(_PlainHelp, TyperGroup):
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
