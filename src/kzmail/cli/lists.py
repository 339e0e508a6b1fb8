"""`kzmail check` and `kzmail clean`: what is wrong with a campaign and its lists, and a
clean copy of a list.

Services load on first use, so `kzmail --help` stays fast.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from kzmail.cli.common import KzmailTyper, current_workspace, err, out
from kzmail.errors import KzmailError

if TYPE_CHECKING:
    from kzmail.lists.checker import ListSummary
    from kzmail.lists.rows import Problem

app = KzmailTyper()


def _count(n: int, noun: str) -> str:
    """`1 row`, `2 rows`: `n` and the noun, plural unless n is 1."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def list_summary(s: ListSummary) -> str:
    """The one-line count shown by `check`, `clean` and `send` (nouns agree with their
    numbers: `1 row: 1 valid, 0 invalid, 1 duplicate, ...`)."""
    return (
        f"{_count(s.rows, 'row')}: {s.valid} valid, {s.invalid} invalid, "
        f"{_count(s.duplicates, 'duplicate')}, "
        f"{s.unsubscribed} marked unsubscribed, {s.suppressed} suppressed "
        f"(unsubscribed or bounced earlier) -> {s.sendable} sendable"
    )


def _print_problem(problem: Problem) -> None:
    out.print(str(problem), markup=False, highlight=False, soft_wrap=True)


@app.command()
def check(
    campaign: Annotated[
        Path | None,
        typer.Argument(help="The campaign YAML file (default: the only one in campaigns/)."),
    ] = None,
    subscribers: Annotated[
        list[Path] | None,
        typer.Option(
            "--subscribers", help="Check this list instead of the campaign's (repeatable)."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    check_dns: Annotated[
        bool, typer.Option("--check-dns", help="Also ask DNS whether each domain accepts mail.")
    ] = False,
    smtp: Annotated[
        bool,
        typer.Option(
            "--smtp",
            help="Also connect to each relay: EHLO, TLS and AUTH as configured, no mail sent.",
        ),
    ] = False,
) -> None:
    """Check the campaign, its template and every list; print each problem as FILE:LINE."""
    import kzmail.services.lists
    from kzmail.cli.sending import sync_first

    if campaign is not None and campaign.is_file():
        sync_first(campaign, required=False)

    try:
        result = kzmail.services.lists.check(
            current_workspace(campaign),
            campaign,
            lists=subscribers or [],
            check_dns=check_dns,
            smtp=smtp,
            on_problem=(lambda _: None) if as_json else _print_problem,
            keep_problems=10_000 if as_json else 0,
        )
    except KzmailError as exc:
        if not as_json:
            raise  # one line on stderr, like every command
        typer.echo(json.dumps({"ok": False, "errors": [str(exc)]}, ensure_ascii=False))
        raise typer.Exit(exc.exit_code) from exc
    s = result.summary
    errors = [str(e) for e in s.errors] + result.errors
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "ok": result.ok,
                    "campaign": result.campaign.name if result.campaign else None,
                    "lists": result.lists,
                    "rows": s.rows,
                    "valid": s.valid,
                    "invalid": s.invalid,
                    "duplicates": s.duplicates,
                    "unsubscribed": s.unsubscribed,
                    "suppressed": s.suppressed,
                    "sendable": s.sendable,
                    "problems": [
                        {"file": p.file, "line": p.line, "reason": p.reason, "kind": p.kind}
                        for p in s.problems
                    ],
                    "problems_truncated": s.problems_truncated,
                    "errors": errors,
                    "notes": s.notes,
                    "warnings": result.warnings,
                    **(
                        {
                            "relays": [
                                {"relay": r.relay, "ok": r.ok, "detail": r.detail, "code": r.code}
                                for r in result.relays
                            ]
                        }
                        if smtp
                        else {}
                    ),
                },
                ensure_ascii=False,
            )
        )
    else:
        for note in s.notes:
            out.print(f"note: {note}", markup=False, soft_wrap=True)
        for warning in result.warnings:
            err.print(f"warning: {warning}", markup=False, soft_wrap=True)
        for line in errors:
            err.print(f"error: {line}", markup=False, soft_wrap=True)
        for relay in result.relays:  # one line per relay
            if relay.ok:
                out.print(f"relay {relay.relay}: OK: {relay.detail}", markup=False, soft_wrap=True)
            else:
                err.print(f"error: relay {relay.relay}: {relay.detail}", soft_wrap=True)
        if not result.lists:  # the campaign could not even be read
            raise typer.Exit(result.exit_code)
        out.print(list_summary(s), markup=False, soft_wrap=True)
        if result.ok:
            out.print(
                f"OK: can be sent to {_count(s.sendable, 'subscriber')}; "
                "rows with problems are skipped.",
                markup=False,
            )
        else:
            out.print("Cannot be sent: fix the errors above.", markup=False)
    if not result.ok:
        raise typer.Exit(result.exit_code)


@app.command()
def clean(
    subscriber_list: Annotated[
        Path,
        typer.Argument(
            metavar="LIST", help="The list to clean (.csv, .tsv, .txt, .xlsx, .xls, .ods)."
        ),
    ],
    out_file: Annotated[
        Path, typer.Option("--out", help="Where to write the clean list (.csv, or .xlsx).")
    ],
    campaign: Annotated[
        Path | None,
        typer.Option(
            help="Drop addresses suppressed for this campaign's list (default: for any list)."
        ),
    ] = None,
    encoding: Annotated[
        str | None, typer.Option(help="Read the list in this encoding (default: detected).")
    ] = None,
    delimiter: Annotated[
        str | None,
        typer.Option(
            help="Column delimiter of a text list (default: detected); the clean CSV uses it too."
        ),
    ] = None,
) -> None:
    """Write the list back without invalid, duplicate and suppressed rows, every column kept."""
    import kzmail.services.lists

    result = kzmail.services.lists.clean(
        current_workspace(campaign),
        subscriber_list,
        out_file,
        campaign=campaign,
        encoding=encoding,
        delimiter=delimiter,
        on_problem=_print_problem,
    )
    for note in result.summary.notes:
        out.print(f"note: {note}", markup=False, soft_wrap=True)
    out.print(list_summary(result.summary), markup=False, soft_wrap=True)
    out.print(f"Wrote {_count(result.written, 'subscriber')} to {result.out}", markup=False)
