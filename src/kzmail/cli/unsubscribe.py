"""`kzmail serve`, `secret`, `unsubscribes` and `forget`: the unsubscribe side of a list.

Services load on first use, so `kzmail --help` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from kzmail.cli.common import KzmailTyper, current_workspace, err, out, untrusted

app = KzmailTyper()
secret_cli = KzmailTyper(no_args_is_help=True, help="The secret that signs unsubscribe links.")


@app.command()
def serve(
    campaigns: Annotated[
        list[Path] | None,
        typer.Option("--campaigns", help="Campaign files or folders (default: campaigns/)."),
    ] = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to listen on.")] = 8025,
) -> None:
    """Run the unsubscribe pages (GET shows, POST unsubscribes) behind your HTTPS proxy.

    Campaigns are read again when they change or are added; one that does not load is
    reported and the others are served. With KZMAIL_STATE_DIR set to a server bundle it
    runs from the bundle alone (kzmail server bundle).
    """
    import kzmail.services.unsubscribe

    def ready(serving: kzmail.services.unsubscribe.Serving) -> None:
        names = ", ".join(sorted(serving.lists))
        out.print(f"Unsubscribe service on {serving.url} for {names}", soft_wrap=True)
        out.print("Put it behind your HTTPS reverse proxy (see README). Ctrl-C stops it.")

    def problem(line: str) -> None:
        err.print(f"warning: not served: {line}", soft_wrap=True)

    kzmail.services.unsubscribe.serve(
        current_workspace(announce=True),
        campaigns or [],
        host,
        port,
        on_ready=ready,
        on_problem=problem,
    )


@secret_cli.command("rotate")
def secret_rotate(
    grace_days: Annotated[
        float,
        typer.Option(
            min=0, help="Days the old secret's links keep working (0: stop every old link now)."
        ),
    ] = 90,
) -> None:
    """Make a new unsubscribe secret; links already sent keep working for the grace period."""
    from datetime import datetime

    import kzmail.services.unsubscribe

    old = kzmail.services.unsubscribe.rotate(current_workspace(announce=True), grace_days)
    if grace_days:
        until = datetime.fromtimestamp(old.valid_until).astimezone().strftime("%Y-%m-%d %H:%M")
        out.print(f"New secret made. Links signed with the old one work until {until}.")
    else:
        out.print("New secret made. Links signed with any older secret no longer work.")


# the suppression list: mailto unsubscribes in, CSV out -----------------------------------
unsubscribes_cli = KzmailTyper(
    no_args_is_help=True, help="Who unsubscribed: import mailto replies, list, export, remove."
)
ListOption = Annotated[
    str | None,
    typer.Option("--list", help="List id (default: the campaign's list; '*' means every list)."),
]
FilterOption = Annotated[
    str | None, typer.Option("--list", help="Only this list id (default: every list).")
]


@unsubscribes_cli.command("import")
def unsubscribes_import(
    source: Annotated[
        str,
        typer.Argument(
            help="An mbox file, Maildir or imaps:// folder of replies (read like `kzmail "
            "inbox`), a list of addresses, or a CSV.",
            show_default=False,
        ),
    ],
    list_id: ListOption = None,
    campaign: Annotated[
        Path | None,
        typer.Option(
            help="Take the list from this campaign (default: the only one in campaigns/)."
        ),
    ] = None,
    authserv_id: Annotated[
        list[str] | None,
        typer.Option(
            "--authserv-id",
            help="Trust Authentication-Results from this receiving server "
            "(e.g. mx.example.org); repeat for several.",
        ),
    ] = None,
    trust_from: Annotated[
        bool, typer.Option("--trust-from", help="Act on every reply's From header, proven or not.")
    ] = False,
    password_env: Annotated[
        str | None,
        typer.Option("--password-env", help="IMAP: the environment variable with the password."),
    ] = None,
    cafile: Annotated[
        Path | None,
        typer.Option("--cafile", help="IMAP: trust this CA certificate (a private server's)."),
    ] = None,
) -> None:
    """Suppress the proven senders of unsubscribe replies (or the addresses in a list).

    A mailbox is read as `kzmail inbox` reads it (bounces and complaints included), with
    every human reply taken as a request to unsubscribe."""
    from kzmail.inbox.replies import Trust
    from kzmail.services import suppressions

    trust = Trust(tuple(authserv_id or ()), trust_from)
    ws = current_workspace(campaign, announce=True)
    if suppressions.is_mailbox(source):
        from kzmail.cli.inbox import show
        from kzmail.services import inbox

        target = suppressions.mailbox_list(ws, list_id, campaign)
        options = inbox.Options(
            source,
            campaign,
            password=ws.environ.get(password_env, "") if password_env else "",
            cafile=cafile,
            trust=trust,
            replies_unsubscribe=True,
            reply_list=target,
        )
        show(inbox.inbox(ws, options))
        return
    file = Path(source)
    report = suppressions.import_file(
        ws, file, suppressions.target_list(ws, list_id, campaign, file), trust
    )
    for line in report.skipped:
        err.print(f"[yellow]skipped[/] {untrusted(line)}", markup=True, soft_wrap=True)
    for line in report.unverified:  # attacker-written text: no markup
        err.print(
            "not verified (no token, no aligned DKIM/SPF pass): " + line,
            markup=False,
            soft_wrap=True,
        )
    for address in report.added:
        out.print(f"unsubscribed {address}")
    out.print(
        f"{len(report.added)} newly unsubscribed from {report.list_id}, "
        f"{len(report.already)} already were, {len(report.skipped)} skipped, "
        f"{len(report.unverified)} not verified."
    )


@unsubscribes_cli.command("list")
def unsubscribes_list(list_id: FilterOption = None) -> None:
    """Show who unsubscribed, when, from which list and how."""
    from kzmail.services import suppressions

    records = suppressions.rows(current_workspace(announce=True), list_id)
    for row in records:
        out.print(
            f"{row['unsubscribed_at']}  {row['email']}  {row['list_id']}  ({row['reason']})",
            soft_wrap=True,
        )
    out.print(f"{len(records)} unsubscribed.")


@unsubscribes_cli.command("export")
def unsubscribes_export(
    list_id: FilterOption = None,
    out_file: Annotated[
        Path | None, typer.Option("--out", help="Write the CSV here (default: print it).")
    ] = None,
) -> None:
    """Write who unsubscribed as CSV (email, list_id, reason, unsubscribed_at)."""
    import sys

    from kzmail.services import suppressions

    if out_file is None:
        suppressions.write_csv(
            suppressions.rows(current_workspace(announce=True), list_id), sys.stdout
        )
        return
    count = suppressions.export(current_workspace(announce=True), out_file, list_id)
    err.print(f"{count} rows written to {out_file}")


@unsubscribes_cli.command("remove")
def unsubscribes_remove(
    address: Annotated[str, typer.Argument(help="The address to mail again.", show_default=False)],
    list_id: Annotated[
        str | None,
        typer.Option("--list", help="Only on this list id, '*' included (default: every list)."),
    ] = None,
    reason: Annotated[
        str, typer.Option(help="Why, kept with the record of the removal.")
    ] = "removed by the organiser",
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Undo a suppression (a wrong bounce, someone who subscribed again), with a reason."""
    from kzmail.services import suppressions

    def confirm(clean: str, lists: list[str]) -> bool:
        return yes or typer.confirm(f"Mail {clean} on {', '.join(lists)} again?", default=False)

    done = suppressions.remove(current_workspace(), address, list_id, reason, confirm)
    if not done.lists:
        where = f" on {list_id}" if list_id is not None else ""
        still = f" (it is on: {', '.join(done.elsewhere)})" if done.elsewhere else ""
        err.print(f"{done.address} is not suppressed{where}{still}.", markup=False, soft_wrap=True)
        raise typer.Exit(1)
    if not done.removed:
        err.print("Nothing removed.")
        raise typer.Exit(1)
    out.print(
        f"Removed the suppression of {done.address} on {', '.join(done.lists)}.",
        markup=False,
        soft_wrap=True,
    )


@app.command()
def forget(
    address: Annotated[str, typer.Argument(help="The person's address.", show_default=False)],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Erase a person from the state (DSGVO Art. 17); if they unsubscribed, still skip them."""
    import kzmail.services.forget

    def confirm(clean: str) -> bool:
        return yes or typer.confirm(
            f"Erase {clean} from the state? This cannot be undone.", default=False
        )

    done = kzmail.services.forget.forget(current_workspace(announce=True), address, confirm)
    if done is None:
        err.print("Nothing erased.")
        raise typer.Exit(1)
    out.print(f"Erased {done.deliveries} delivery records of {done.address}.", markup=False)
    if done.lists:
        out.print(
            f"Still suppressed (as a keyed hash only) on: {', '.join(done.lists)}.",
            markup=False,
            soft_wrap=True,
        )
    out.print(
        "Delete them from your subscriber lists and from reports, exports, previews "
        "and the outbox yourself.",
        soft_wrap=True,
    )


app.add_typer(secret_cli, name="secret")
app.add_typer(unsubscribes_cli, name="unsubscribes")
