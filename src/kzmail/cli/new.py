"""`kzmail new`: scaffold a campaign, its article and a sample list, then say what comes next."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from kzmail.cli.common import KzmailTyper, current_workspace, out

app = KzmailTyper()


@app.command()
def new(
    name: Annotated[str, typer.Argument(help="The campaign's name (letters, digits, . _ -).")],
    language: Annotated[
        str,
        typer.Option(
            metavar="de|en|ru", help="Language of the sample text and the template's texts."
        ),
    ] = "de",
) -> None:
    """Make campaigns/NAME.yaml (every key explained), NAME.md and a sample list."""
    from kzmail.services.scaffold import new_campaign

    made = new_campaign(current_workspace(note_new=False), name, language)
    for path in (made.campaign, made.article, made.subscribers):
        out.print(f"wrote {_shown(path)}", soft_wrap=True)
    campaign = _shown(made.campaign)
    out.print("Next:")
    out.print(f"  kzmail check {campaign}      # is everything in order?", soft_wrap=True)
    out.print(f"  kzmail preview {campaign}    # what a subscriber gets", soft_wrap=True)
    out.print(
        f"  kzmail send {campaign}       # to the embedded sink (smtp.host: local)", soft_wrap=True
    )


def _shown(path: Path) -> str:
    try:
        return str(path.absolute().relative_to(Path.cwd()))
    except ValueError:
        return str(path)
