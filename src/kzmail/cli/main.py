"""The `kzmail` command: parse arguments, call the services, print results, map errors to exits.

No logic lives here beyond presentation; every `KzmailError` becomes one line on
stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
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

from kzmail.cli.common import CampaignArg, cli, err, fail, out, untrusted
from kzmail.errors import KzmailError
from kzmail.lists.checker import ListSummary
from kzmail.lists.rows import Problem
from kzmail.services import lists as service_lists
from kzmail.services import send as service_send
from kzmail.services import workspace as app


@cli.command()
def preview(
    campaign: Annotated[Optional[Path], typer.Argument(  # noqa: UP045 - typer needs Optional
        help="The campaign YAML file (default: the only one in campaigns/).")] = None,
    subscriber: Annotated[Optional[str], typer.Option(  # noqa: UP045
        help="Preview for this subscriber's address (default: the first).")] = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for the files.")] = Path("preview"),
    serve: Annotated[bool, typer.Option(
        "--serve", help="Serve a live preview on localhost instead of writing files.")] = False,
    no_open: Annotated[bool, typer.Option(
        "--no-open", help="With --serve: do not open the browser.")] = False,
    port: Annotated[int, typer.Option(min=0, max=65535, help="With --serve: the port.")] = 8026,
) -> None:
    """Write exactly what one subscriber will get: .html, .txt and the whole .eml."""
    if serve:
        _serve_preview(campaign, subscriber, port, open_browser=not no_open)
        return
    try:
        files = app.preview(campaign, address=subscriber, out_dir=out_dir)
    except KzmailError as exc:
        raise fail(exc) from None
    out.print(f"Preview for {files.subscriber}:")
    for path in (files.html, files.text, files.eml):
        out.print(f"  {path}")


def _show_plan(plan: service_send.SendPlan) -> None:
    s = plan.summary
    for problem in s.problems:
        err.print(f"skipped {problem}", markup=False, soft_wrap=True)
    if s.problems_truncated:
        err.print(f"... and {s.problems_truncated} more (`kzmail check` lists them all)")
    out.print(f"Campaign {plan.campaign.name!r}: {plan.campaign.subject}", markup=False,
              soft_wrap=True)
    out.print(f"  {list_summary(s)}", markup=False, soft_wrap=True)
    target = f"{plan.relay}" + (f" -> {plan.outbox}/" if plan.outbox else "")
    mode = "dry run, nothing is sent" if plan.dry_run else f"via {target}"
    if plan.to:
        mode += f", one test message to {plan.to}"
    if plan.mode == "retry":
        mode += ", re-attempting the temporary failures only"
    out.print(f"  {mode}")


class _RateColumn(ProgressColumn):
    """Messages per second, for the progress bar."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.0f} msg/s" if speed else "")


def _run_send(campaign: Path, *, dry_run: bool = False, to: str | None = None,
              limit: int | None = None, yes: bool = False, resend_uncertain: bool = False,
              mode: service_send.Mode = "send") -> None:
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        _RateColumn(), TimeRemainingColumn(), console=out, transient=True)
    task = progress.add_task("sending", total=None)

    def confirm(plan: service_send.SendPlan) -> bool:
        _show_plan(plan)
        if yes or plan.dry_run or plan.outbox is not None:
            return True
        return typer.confirm("Send now?", default=False, abort=True)

    def start(total: int) -> None:
        progress.update(task, total=total, description="building" if dry_run else "sending")
        progress.start()

    try:
        result = service_send.send(campaign, dry_run=dry_run, to=to, limit=limit,
                                   resend_uncertain=resend_uncertain, mode=mode,
                                   confirm=confirm, on_start=start,
                                   on_progress=lambda _: progress.advance(task))
    except KzmailError as exc:
        raise fail(exc) from None
    except typer.Abort:
        err.print("Not sent.")
        raise typer.Exit(1) from None
    finally:
        progress.stop()
    _show_result(campaign, result, dry_run)


def _show_result(campaign: Path, result: service_send.SendResult, dry_run: bool) -> None:
    report = result.report
    for address, reason in report.failures:
        err.print(f"[red]failed[/] {untrusted(address)}: {untrusted(reason)}", markup=True,
                  soft_wrap=True)
    for d in result.uncertain:
        who = f"{d.name} <{d.address}>" if d.name else d.address
        err.print(f"[yellow]uncertain[/] {untrusted(who)}: a crash caught this message "
                  "mid-transaction; "
                  "it may or may not have arrived, so it is not re-sent "
                  "(use --resend-uncertain to send it again)", markup=True, soft_wrap=True)
    if dry_run:
        out.print(f"Dry run: built {result.built} messages, sent none.")
        return
    out.print(f"Sent {report.sent}, failed {report.failed}, "
              f"skipped {report.skipped + result.plan.summary.problems_total}"
              f" (already sent, uncertain or invalid).")
    if report.suppressed:
        out.print(f"{report.suppressed} unknown addresses were added to the suppression list.")
    if result.plan.outbox is not None and report.sent:
        out.print(f"Messages are in {result.plan.outbox}/new/ (one file each).")
    if report.retryable:
        out.print(f"Temporary failures can be re-attempted: kzmail retry {campaign}")
    if report.paused:
        err.print(f"[bold red]paused:[/] {untrusted(report.paused)}", markup=True,
                  soft_wrap=True)
        err.print(f"Fix the cause, then resume with: kzmail send {campaign}", soft_wrap=True)
        raise typer.Exit(4)
    if report.interrupted:
        err.print(f"Interrupted: every message in flight was finished and recorded. "
                  f"Resume with: kzmail send {campaign}", soft_wrap=True)
        raise typer.Exit(130)
    if report.failed:
        raise typer.Exit(3)


@cli.command()
def send(
    campaign: CampaignArg,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Build every message, send none.")] = False,
    to: Annotated[Optional[str], typer.Option(  # noqa: UP045
        help="Send one message, identical to a real one, to this address only.")] = None,
    limit: Annotated[Optional[int], typer.Option(min=1,  # noqa: UP045
        help="Send to the first N pending subscribers only.")] = None,
    resend_uncertain: Annotated[bool, typer.Option(
        "--resend-uncertain",
        help="Also send to those a crash left uncertain (they may get it twice).")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Send one personal message per subscriber (asks first, unless --yes or the sink).

    An interrupted send resumes where it stopped: nobody already sent is mailed again.
    """
    _run_send(campaign, dry_run=dry_run, to=to, limit=limit, yes=yes,
              resend_uncertain=resend_uncertain)


@cli.command()
def retry(
    campaign: CampaignArg,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Re-attempt only the deliveries that failed for a temporary reason (4xx, timeouts)."""
    _run_send(campaign, yes=yes, mode="retry")


@cli.command()
def status(
    campaign: CampaignArg,
    as_json: Annotated[bool, typer.Option("--json", help="Print the counts as JSON.")] = False,
) -> None:
    """How many subscribers of the list are sent, failed, uncertain and still pending."""
    try:
        result = service_send.status(campaign)
    except KzmailError as exc:
        raise fail(exc) from None
    c = result.counts
    if as_json:
        print(json.dumps(c))
        return
    out.print(f"Campaign {result.campaign!r} ({result.run_key}): {c['total']} subscribers")
    for key in service_send.STATUS_KEYS[1:]:
        if c[key] or key in ("sent", "pending"):
            out.print(f"  {key:<11}{c[key]:>8}")
    for d in result.uncertain:
        who = f"{d.name} <{d.address}>" if d.name else d.address
        out.print(f"  uncertain: {who} (message {d.message_id or '?'})")


@cli.command()
def report(
    campaign: CampaignArg,
    out_file: Annotated[Path, typer.Option("--out", help="The CSV file to write.")] = Path(
        "failures.csv"),
) -> None:
    """Write who failed (or is uncertain) and why, with the relay's reply, to a CSV file."""
    try:
        count = service_send.report(campaign, out_file)
    except KzmailError as exc:
        raise fail(exc) from None
    out.print(f"Wrote {count} rows to {out_file}.")


def list_summary(s: ListSummary) -> str:
    """The one-line count shown by `check`, `clean` and `send`."""
    return (f"{s.rows} rows: {s.valid} valid, {s.invalid} invalid, {s.duplicates} duplicates, "
            f"{s.unsubscribed} marked unsubscribed, {s.suppressed} suppressed "
            f"(unsubscribed or bounced earlier) -> {s.sendable} sendable")


def _print_problem(problem: Problem) -> None:
    out.print(str(problem), markup=False, highlight=False, soft_wrap=True)


@cli.command()
def check(
    campaign: Annotated[Optional[Path], typer.Argument(  # noqa: UP045 - typer needs Optional
        help="The campaign YAML file (default: the only one in campaigns/).")] = None,
    subscribers: Annotated[Optional[list[Path]], typer.Option(  # noqa: UP045
        "--subscribers", help="Check this list instead of the campaign's (repeatable).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    check_dns: Annotated[bool, typer.Option(
        "--check-dns", help="Also ask DNS whether each domain accepts mail.")] = False,
) -> None:
    """Check the campaign, its template and every list; print each problem as FILE:LINE."""
    try:
        result = service_lists.check(campaign, lists=subscribers or [], check_dns=check_dns,
                                     on_problem=(lambda _: None) if as_json else _print_problem,
                                     keep_problems=10_000 if as_json else 0)
    except KzmailError as exc:
        if as_json:
            typer.echo(json.dumps({"ok": False, "errors": [str(exc)]}, ensure_ascii=False))
        else:
            err.print(f"error: {exc}", markup=False, soft_wrap=True)
        raise typer.Exit(1) from None
    s = result.summary
    errors = [str(e) for e in s.errors] + result.errors
    if as_json:
        typer.echo(json.dumps({
            "ok": result.ok, "campaign": result.campaign.name if result.campaign else None,
            "lists": result.lists, "rows": s.rows, "valid": s.valid, "invalid": s.invalid,
            "duplicates": s.duplicates, "unsubscribed": s.unsubscribed,
            "suppressed": s.suppressed, "sendable": s.sendable,
            "problems": [{"file": p.file, "line": p.line, "reason": p.reason, "kind": p.kind}
                         for p in s.problems],
            "problems_truncated": s.problems_truncated, "errors": errors, "notes": s.notes,
            "warnings": result.warnings,
        }, ensure_ascii=False))
    else:
        for note in s.notes:
            out.print(f"note: {note}", markup=False, soft_wrap=True)
        for warning in result.warnings:
            err.print(f"warning: {warning}", markup=False, soft_wrap=True)
        for line in errors:
            err.print(f"error: {line}", markup=False, soft_wrap=True)
        if not result.lists:             # the campaign could not even be read
            raise typer.Exit(1)
        out.print(list_summary(s), markup=False, soft_wrap=True)
        if result.ok:
            out.print(f"OK: can be sent to {s.sendable} subscribers; rows with problems "
                      "are skipped.", markup=False)
        else:
            out.print("Cannot be sent: fix the errors above.", markup=False)
    if not result.ok:
        raise typer.Exit(1)


@cli.command()
def clean(
    subscriber_list: Annotated[Path, typer.Argument(
        metavar="LIST", help="The list to clean (.csv, .tsv, .txt, .xlsx, .xls, .ods).")],
    out_file: Annotated[Path, typer.Option(
        "--out", help="Where to write the clean list (.csv, or .xlsx).")],
    campaign: Annotated[Optional[Path], typer.Option(  # noqa: UP045
        help="Drop addresses suppressed for this campaign's list (default: for any list).")
    ] = None,
    encoding: Annotated[Optional[str], typer.Option(  # noqa: UP045
        help="Read the list in this encoding (default: detected).")] = None,
    delimiter: Annotated[Optional[str], typer.Option(  # noqa: UP045
        help="Column delimiter of a text list (default: detected).")] = None,
) -> None:
    """Write the list back without invalid, duplicate and suppressed rows, every column kept."""
    try:
        result = service_lists.clean(subscriber_list, out_file, campaign=campaign,
                                     encoding=encoding, delimiter=delimiter,
                                     on_problem=_print_problem)
    except KzmailError as exc:
        err.print(f"error: {exc}", markup=False, soft_wrap=True)
        raise typer.Exit(1) from None
    for note in result.summary.notes:
        out.print(f"note: {note}", markup=False, soft_wrap=True)
    out.print(list_summary(result.summary), markup=False, soft_wrap=True)
    out.print(f"Wrote {result.written} subscribers to {result.out}", markup=False)


def main() -> None:
    cli()


def _serve_preview(campaign: Path | None, subscriber: str | None, port: int, *,
                   open_browser: bool) -> None:
    """`preview --serve`: live preview with reload, picker, both widths and the text part."""
    from kzmail.services import preview as service_preview

    def ready(url: str) -> None:
        out.print(f"Live preview on {url} (reloads when campaign, article or template "
                  "change). Ctrl-C stops it.", soft_wrap=True)

    try:
        service_preview.serve_preview(campaign, port=port, address=subscriber,
                                      open_browser=open_browser, on_ready=ready)
    except KzmailError as exc:
        raise fail(exc) from None


# Registered last so `kzmail --help` lists the pipeline commands first.
from kzmail.cli import unsubscribe as cli_unsubscribe  # noqa: E402, F401 - registers serve, secret, unsubscribes

__all__ = ["cli", "main"]
