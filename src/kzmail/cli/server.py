"""`kzmail server bundle` and `kzmail sync`: the public unsubscribe server and its records.

Services load on first use, so `kzmail --help` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from kzmail.cli.common import KzmailTyper, current_workspace, err, out

app = KzmailTyper()
server_cli = KzmailTyper(
    no_args_is_help=True, help="The public unsubscribe server that holds no subscriber list."
)


@server_cli.command("bundle")
def bundle(
    campaigns: Annotated[
        list[Path], typer.Argument(help="The campaigns whose links it answers.", show_default=False)
    ],
    out_dir: Annotated[
        Path, typer.Option("--out", help="The folder to write (copy it to the server).")
    ],
    sync_url: Annotated[
        str | None,
        typer.Option("--sync-url", help="Sync from here (default: the unsubscribe.url)."),
    ] = None,
    kzmail_bin: Annotated[
        str, typer.Option("--kzmail", metavar="PATH", help="kzmail on the server, for the unit.")
    ] = "/opt/kzmail/bin/kzmail",
    server_dir: Annotated[
        str, typer.Option("--server-dir", metavar="DIR", help="Where the bundle goes there.")
    ] = "/var/lib/kzmail-unsubscribe",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port it listens on there.")] = 8025,
) -> None:
    """Write the server's whole state folder: no campaign, template, list or address."""
    from kzmail.services.bundle import make_bundle

    ws = current_workspace(campaigns[0], announce=True)
    made = make_bundle(
        ws,
        campaigns,
        out_dir,
        sync_url=sync_url,
        kzmail=kzmail_bin,
        server_dir=server_dir,
        port=port,
    )
    out.print(f"Server bundle in {made.folder} for {', '.join(made.lists)}", soft_wrap=True)
    out.print(
        f"Copy it to {server_dir} on the server; see its kzmail-unsubscribe.service.",
        soft_wrap=True,
    )
    out.print(f"send and check now sync from {made.sync_url} first (kzmail sync).", soft_wrap=True)


@app.command()
def sync(
    campaign: Annotated[
        Path | None, typer.Argument(help="Only this campaign's list (default: every server).")
    ] = None,
    from_url: Annotated[
        str | None, typer.Option("--from", metavar="URL", help="Sync from this address instead.")
    ] = None,
    ack: Annotated[
        bool, typer.Option("--ack", help="Let the server forget the records synced.")
    ] = False,
) -> None:
    """Pull the unsubscribes the public server recorded into this project's suppressions."""
    from kzmail.services import sync as service

    ws = current_workspace(campaign, announce=True)
    lists = service.campaign_lists([campaign]) if campaign is not None else None
    report = service.sync(ws, lists, from_url=from_url, ack=ack)
    if not report.servers:
        err.print("No server bundle was made for this project (kzmail server bundle).")
        raise typer.Exit(1)
    new = report.new.get("unsubscribe", 0)
    line = (
        f"Synced {report.records} records from {report.servers} server(s): {new} new unsubscribed."
    )
    if ack:
        line += f" The server forgot {report.forgotten}."
    out.print(line)


app.add_typer(server_cli, name="server")
