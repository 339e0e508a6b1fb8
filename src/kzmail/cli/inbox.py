"""`kzmail inbox`: bounces, complaints, auto-replies and unsubscribe replies, acted on once."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from kzmail.cli.common import KzmailTyper, current_workspace, err, out, untrusted

if TYPE_CHECKING:
    from kzmail.services.inbox import InboxResult

app = KzmailTyper()


@app.command()
def inbox(
    source: Annotated[
        str,
        typer.Argument(
            help="An mbox file, a Maildir, imaps://user@host[:port]/FOLDER, or a campaign "
            "file whose inbox.source names one.",
            show_default=False,
        ),
    ],
    campaign: Annotated[
        Path | None,
        typer.Option(help="The campaign whose list complaints and unsubscribe replies concern."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show the verdicts; change nothing anywhere.")
    ] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    move_to: Annotated[
        str | None,
        typer.Option("--move-to", help="IMAP: move handled messages here (default: flag \\Seen)."),
    ] = None,
    password_env: Annotated[
        str | None,
        typer.Option("--password-env", help="IMAP: the environment variable with the password."),
    ] = None,
    cafile: Annotated[
        Path | None,
        typer.Option("--cafile", help="IMAP: trust this CA certificate (a private server's)."),
    ] = None,
    any_address: Annotated[
        bool,
        typer.Option("--any-address", help="Act on bounces that match no kzmail delivery too."),
    ] = False,
    soft_limit: Annotated[
        int | None,
        typer.Option(min=1, help="Suppress after soft bounces in this many campaigns (3)."),
    ] = None,
    authserv_id: Annotated[
        list[str] | None,
        typer.Option("--authserv-id", help="Trust Authentication-Results from this server."),
    ] = None,
    trust_from: Annotated[
        bool, typer.Option("--trust-from", help="Take unsubscribe replies' From as proven.")
    ] = False,
) -> None:
    """Read the reply mailbox: suppress hard bounces and complaints, count soft ones."""
    from kzmail.inbox.replies import Trust
    from kzmail.services import inbox as service

    ws = current_workspace(campaign, announce=not json_out)
    options = service.Options(
        source=source,
        campaign=campaign,
        dry_run=dry_run,
        any_address=any_address,
        move_to=move_to,
        password=ws.environ.get(password_env, "") if password_env else "",
        cafile=cafile,
        trust=Trust(tuple(authserv_id or ()), trust_from),
        soft_limit=soft_limit,
    )
    show(service.inbox(ws, options), json_out=json_out)


def show(result: InboxResult, *, json_out: bool = False) -> None:
    """Print what a run did (also for `unsubscribes import` of a mailbox)."""
    import json

    from kzmail.services import inbox as service

    dry_run = result.dry_run
    for line in result.problems:  # text from strangers' mail: never markup
        err.print(f"note: {untrusted(line)}", markup=False, soft_wrap=True)
    for line in result.warnings:
        err.print(f"WARNING: {line}", style="bold yellow", markup=False, soft_wrap=True)
    if json_out:
        print(json.dumps(result.as_json(), ensure_ascii=False))
        return
    for message in result.messages:
        for r in message["recipients"]:
            verb = ("would suppress" if dry_run else "suppressed") if r["suppress"] else "kept"
            out.print(
                f"{message['kind']} {message['id']}: {verb} {r['address']} "
                f"({r['status'] or '-'} {r['reason']})",
                markup=False,
                soft_wrap=True,
            )
    t = result.totals
    shown = ", ".join(f"{t[k]} {k}" for k in service.KINDS if t[k])
    out.print(
        f"{t['messages']} messages ({shown or 'none new'}); {t['suppressed']} "
        f"{'would be ' if dry_run else ''}suppressed, {t['soft_counted']} soft bounces counted, "
        f"{t['policy_blocked']} policy blocks, {t['unverified']} not verified, "
        f"{t['repeated']} handled before{_unmatched_before(t['unmatched_before'])}, "
        f"{t['unmatched']} unmatched.",
        soft_wrap=True,
    )


def _unmatched_before(count: int) -> str:
    if not count:
        return ""
    return f" ({count} of them bounces matching no delivery: --any-address acts on them)"
