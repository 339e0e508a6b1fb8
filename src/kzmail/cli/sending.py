"""`kzmail preview`, `send`, `retry`, `status` and `report`: one campaign, from the first look
to who did not get it.

Services load on first use, so `kzmail --help` stays fast.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from kzmail.cli.common import CampaignArg, KzmailTyper, current_workspace, err, out, untrusted
from kzmail.cli.lists import list_summary

if TYPE_CHECKING:
    from rich.progress import Progress

    import kzmail.services.send
    from kzmail.services.outcome import Delivery, Outcome

app = KzmailTyper()


@app.command()
def preview(
    campaign: Annotated[
        Path | None,
        typer.Argument(help="The campaign YAML file (default: the only one in campaigns/)."),
    ] = None,
    subscriber: Annotated[
        str | None,
        typer.Option(
            metavar="ADDRESS", help="Preview for this subscriber's address (default: the first)."
        ),
    ] = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for the files.")] = Path("preview"),
    serve: Annotated[
        bool,
        typer.Option("--serve", help="Serve a live preview on localhost instead of writing files."),
    ] = False,
    no_open: Annotated[
        bool, typer.Option("--no-open", help="With --serve: do not open the browser.")
    ] = False,
    port: Annotated[int, typer.Option(min=0, max=65535, help="With --serve: the port.")] = 8026,
) -> None:
    """Write exactly what one subscriber will get: .html, .txt and the whole .eml."""
    if serve:
        _serve_preview(campaign, subscriber, port, open_browser=not no_open)
        return
    from kzmail.services import workspace

    files = workspace.preview(
        current_workspace(campaign), campaign, address=subscriber, out_dir=out_dir
    )
    out.print(f"Preview for {files.subscriber}:")
    for path in (files.html, files.text, files.eml):
        out.print(f"  {path}")


def _show_plan(plan: kzmail.services.send.SendPlan) -> None:
    s = plan.summary
    for problem in s.problems:
        err.print(f"skipped {problem}", markup=False, soft_wrap=True)
    if s.problems_truncated:
        err.print(f"... and {s.problems_truncated} more (`kzmail check` lists them all)")
    out.print(
        f"Campaign {plan.campaign.name!r}: {plan.campaign.subject}", markup=False, soft_wrap=True
    )
    out.print(f"  {list_summary(s)}", markup=False, soft_wrap=True)
    target = f"{plan.relay}" + (f" -> {plan.outbox}/" if plan.outbox else "")
    mode = "dry run, nothing is sent" if plan.dry_run else f"via {target}"
    if plan.to:
        mode += f", one test message to {plan.to}"
    if plan.mode == "retry":
        mode += ", re-attempting the temporary failures only"
    out.print(f"  {mode}")
    for note in plan.notes:
        out.print(f"  note: {note}", markup=False, soft_wrap=True)


def _progress() -> Progress:
    """A progress bar with messages per second (rich.progress loads only for a send)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        Task,
        TextColumn,
        TimeRemainingColumn,
    )
    from rich.text import Text

    class RateColumn(ProgressColumn):
        def render(self, task: Task) -> Text:
            speed = task.finished_speed or task.speed
            return Text(f"{speed:,.0f} msg/s" if speed else "")

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(),
        TimeRemainingColumn(),
        console=out,
        transient=True,
    )


def _run_send(
    campaign: Path,
    *,
    dry_run: bool = False,
    to: str | None = None,
    limit: int | None = None,
    yes: bool = False,
    resend_uncertain: bool = False,
    mode: kzmail.services.send.Mode = "send",
) -> None:
    progress = _progress()
    task = progress.add_task("sending", total=None)

    def confirm(plan: kzmail.services.send.SendPlan) -> bool:
        _show_plan(plan)
        if yes or plan.dry_run or plan.outbox is not None:
            return True
        return typer.confirm("Send now?", default=False, abort=True)

    def start(total: int) -> None:
        progress.update(task, total=total, description="building" if dry_run else "sending")
        progress.start()

    import kzmail.services.send

    try:
        result = kzmail.services.send.send(
            current_workspace(campaign),
            campaign,
            dry_run=dry_run,
            to=to,
            limit=limit,
            resend_uncertain=resend_uncertain,
            mode=mode,
            confirm=confirm,
            on_start=start,
            on_progress=lambda _: progress.advance(task),
        )
    except typer.Abort:
        err.print("Not sent.")
        raise typer.Exit(1) from None
    finally:
        progress.stop()
    _show_result(campaign, result, dry_run)


def sync_first(campaign: Path, *, required: bool) -> None:
    """Pull the public server's unsubscribes before using the list, if it has a server."""
    import kzmail.services.sync
    from kzmail.errors import SyncError

    try:
        done = kzmail.services.sync.before_send(current_workspace(campaign), campaign)
    except SyncError as exc:
        if required:
            raise SyncError(
                f"{exc}; not sending, since it could mail someone who unsubscribed "
                "(--no-sync sends anyway)"
            ) from exc
        err.print(f"warning: not synced: {exc}", markup=False, soft_wrap=True)
        return
    if done is not None:
        new = done.new.get("unsubscribe", 0)
        err.print(f"Synced the unsubscribe server: {new} new unsubscribed.")


def _who(d: Delivery) -> str:
    return untrusted(f"{d.name} <{d.address}>" if d.name else d.address)


def _show_undelivered(d: Delivery) -> None:
    """One line on the terminal (never a log) for someone who failed or is uncertain."""
    if d.status == "uncertain":
        err.print(
            f"[yellow]uncertain[/] {_who(d)}: a crash caught this message mid-transaction; "
            "it may or may not have arrived, so it is not re-sent "
            "(use --resend-uncertain to send it again)",
            markup=True,
            soft_wrap=True,
        )
        return
    if d.status == "bounced":  # the relay took it, then it came back (a soft bounce)
        why, label = "not re-sent", "[red]bounced[/]"
    else:
        why = "temporary: the next send tries again" if d.retryable else "permanent: not retried"
        label = "[red]failed[/]"
    err.print(
        f"{label} {untrusted(d.address)}: {untrusted(d.detail)} ({why})",
        markup=True,
        soft_wrap=True,
    )


def _show_left(campaign: Path, left: Outcome) -> None:
    """Everyone still without the message: who failed or is uncertain by name, and how many
    are not sent yet (a pause or Ctrl-C caught them before the relay took them, or the send
    had not reached them: the pause line already says why)."""
    named = [d for d in left.undelivered if d.status in ("failed", "bounced", "uncertain")]
    for d in named:
        _show_undelivered(d)
    if left.complete:
        out.print("Every sendable subscriber has the message.")
        return
    counts = Counter(d.status for d in named)
    parts = [f"{n} {status}" for status, n in counts.items()]
    if unsent := left.untried + len(left.undelivered) - len(named):
        parts.append(f"{unsent} not sent yet")
    out.print(
        f"Not delivered yet: {', '.join(parts)}; `kzmail send {campaign}` re-attempts all "
        "but the uncertain and the permanent failures.",
        soft_wrap=True,
    )


def _show_result(campaign: Path, result: kzmail.services.send.SendResult, dry_run: bool) -> None:
    report = result.report
    if dry_run:
        out.print(f"Dry run: built {result.built} messages, sent none.")
        return
    left = result.outcome
    named = {d.address for d in left.undelivered} if left is not None else set()
    for address, reason in report.failures:  # those not named below: --to, or now suppressed
        if address.lower() not in named:
            err.print(
                f"[red]failed[/] {untrusted(address)}: {untrusted(reason)}",
                markup=True,
                soft_wrap=True,
            )
    out.print(
        f"Sent {report.sent}, failed {report.failed}, "
        f"skipped {report.skipped + result.plan.summary.problems_total}"
        f" (already sent, uncertain or invalid)."
    )
    if report.suppressed:
        out.print(f"{report.suppressed} unknown addresses were added to the suppression list.")
    if result.plan.outbox is not None and report.sent:
        out.print(f"Messages are in {result.plan.outbox}/new/ (one file each).")
    if left is not None:
        _show_left(campaign, left)
    if report.retryable:
        out.print(
            f"Temporary failures are re-attempted by the next `kzmail send {campaign}`, "
            f"or alone by: kzmail retry {campaign}",
            soft_wrap=True,
        )
    if report.paused:
        err.print(f"[bold red]paused:[/] {untrusted(report.paused)}", markup=True, soft_wrap=True)
        err.print(f"Fix the cause, then resume with: kzmail send {campaign}", soft_wrap=True)
        raise typer.Exit(4)
    if report.interrupted:
        err.print(
            f"Interrupted: every message in flight was finished and recorded. "
            f"Resume with: kzmail send {campaign}",
            soft_wrap=True,
        )
        raise typer.Exit(130)
    if report.failed or (left is not None and left.undelivered):
        raise typer.Exit(3)


@app.command()
def send(
    campaign: CampaignArg,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Build every message, send none.")
    ] = False,
    to: Annotated[
        str | None,
        typer.Option(
            metavar="ADDRESS",
            help="Send one message, made exactly like a real one, to this address only; for "
            "an address not in the list, the list's first row gives the extra fields.",
        ),
    ] = None,
    limit: Annotated[
        int | None, typer.Option(min=1, help="Send to the first N pending subscribers only.")
    ] = None,
    resend_uncertain: Annotated[
        bool,
        typer.Option(
            "--resend-uncertain",
            help="Also send to those a crash left uncertain (they may get it twice).",
        ),
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    no_sync: Annotated[
        bool,
        typer.Option(
            "--no-sync", help="Send without first syncing unsubscribes from the public server."
        ),
    ] = False,
) -> None:
    """Send one personal message per subscriber (asks first, unless --yes or the sink).

    An interrupted or paused send resumes where it stopped: nobody already sent is mailed
    again, and earlier temporary failures are re-attempted. Exit 0: everyone sendable has it.
    With a server bundle made for the list, it first syncs the server's unsubscribes and does
    not start if the server cannot be reached (unless --no-sync).
    """
    if not no_sync and not dry_run:
        sync_first(campaign, required=True)
    _run_send(
        campaign, dry_run=dry_run, to=to, limit=limit, yes=yes, resend_uncertain=resend_uncertain
    )


@app.command()
def retry(
    campaign: CampaignArg,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Re-attempt only the deliveries that failed for a temporary reason (4xx, timeouts)."""
    sync_first(campaign, required=True)  # someone may have unsubscribed since
    _run_send(campaign, yes=yes, mode="retry")


@app.command()
def status(
    campaign: CampaignArg,
    as_json: Annotated[bool, typer.Option("--json", help="Print the counts as JSON.")] = False,
) -> None:
    """How many subscribers of the list are sent, failed, uncertain and still pending."""
    import kzmail.services.status

    result = kzmail.services.status.status(current_workspace(campaign), campaign)
    c = result.counts
    if as_json:
        print(json.dumps(c))
        return
    out.print(f"Campaign {result.campaign!r} ({result.run_key}): {c['total']} subscribers")
    for key in kzmail.services.status.STATUS_KEYS[1:]:
        if c[key] or key in ("sent", "pending"):
            out.print(f"  {key:<11}{c[key]:>8}")
    if result.sender is not None:
        out.print(f"  a send of this campaign is running (process {result.sender})")
    for label, rows in (("in flight", result.in_flight), ("uncertain", result.uncertain)):
        for d in rows:
            who = f"{d.name} <{d.address}>" if d.name else d.address
            out.print(f"  {label}: {who} (message {d.message_id or '?'})")


@app.command()
def report(
    campaign: CampaignArg,
    out_file: Annotated[Path, typer.Option("--out", help="The CSV file to write.")] = Path(
        "failures.csv"
    ),
) -> None:
    """Write who failed (or is uncertain) and why, with the relay's reply, to a CSV file."""
    import kzmail.services.status

    count = kzmail.services.status.report(current_workspace(campaign), campaign, out_file)
    out.print(f"Wrote {count} rows to {out_file}.")


def _serve_preview(
    campaign: Path | None, subscriber: str | None, port: int, *, open_browser: bool
) -> None:
    """`preview --serve`: live preview with reload, picker, both widths and the text part."""
    import kzmail.services.preview

    def ready(url: str) -> None:
        out.print(
            f"Live preview on {url} (reloads when campaign, article or template "
            "change). Ctrl-C stops it.",
            soft_wrap=True,
        )

    kzmail.services.preview.serve_preview(
        current_workspace(campaign),
        campaign,
        port=port,
        address=subscriber,
        open_browser=open_browser,
        on_ready=ready,
    )
