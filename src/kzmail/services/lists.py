"""`kzmail check` and `kzmail clean`: the campaign, its template and every list, checked
through the same path `send` uses (`lists.checker`), and a list written back without the rows
that would not be mailed.

These functions return plain results and raise `KzmailError`s; the CLI prints.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from kzmail import campaign_file
from kzmail.dkim.signer import check_key
from kzmail.errors import InputError, KzmailError, NoCampaignFile, SeveralCampaigns
from kzmail.lists.checker import ListChecker, ListSummary
from kzmail.lists.rows import AddressChecker, Problem
from kzmail.lists.writer import XLSX_SUFFIXES, ListWriter
from kzmail.models import ANY_LIST, Campaign, ListSource, Rendered, Subscriber, Workspace
from kzmail.render.message import Outgoing
from kzmail.render.related import size_warnings
from kzmail.services.relays import RelayCheck, check_relays
from kzmail.services.workspace import (
    Prepared,
    prepare,
    remote_problems,
    resolve_campaign,
)
from kzmail.state.journal import Journal
from kzmail.text import without_controls

DNS_SERVER_ENV = "KZMAIL_DNS_SERVER"
RELAY_EXIT = 4  # as a send that pauses because the relay refuses us or cannot be reached


@dataclass
class CheckResult:
    """What `check` found: the list summary and, if any, why the campaign cannot be sent."""

    summary: ListSummary
    campaign: Campaign | None = None
    errors: list[str] = field(default_factory=list)
    lists: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    codes: list[int] = field(default_factory=list)  # exit codes of the errors raised
    relays: list[RelayCheck] = field(default_factory=list)  # with `smtp`: one per relay

    @property
    def ok(self) -> bool:
        """True when the campaign can be sent (problem rows are skipped, not fatal)."""
        relays_ok = all(relay.ok for relay in self.relays)
        return (
            relays_ok and not self.errors and not self.summary.errors and self.summary.sendable > 0
        )

    @property
    def exit_code(self) -> int:
        """0 when it can be sent; otherwise 2 for a mistake in the files, or the code of the
        error that stopped the check (1: the state folder, say)."""
        if self.ok:
            return 0
        relay = [RELAY_EXIT] if not all(relay.ok for relay in self.relays) else []
        return max(self.codes + relay, default=InputError.exit_code)


class _AnyList:
    """Suppressions for lists checked without a campaign: suppressed on any list."""

    def __init__(self, journal: Journal) -> None:
        self._journal = journal

    def is_suppressed(self, list_id: str, address: str) -> bool:
        return self._journal.is_suppressed_anywhere(address)


def dns_resolver(environ: Mapping[str, str]) -> Any:
    """The resolver for `--check-dns`: the system's, or `$KZMAIL_DNS_SERVER` (host:port)."""
    import dns.resolver

    server = environ.get(DNS_SERVER_ENV, "").strip()
    if not server:
        return dns.resolver.Resolver()
    host, _, port = server.rpartition(":") if ":" in server else (server, "", "53")
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = [host]
    resolver.port = int(port)
    resolver.lifetime = 5.0
    return resolver


def _campaign(
    ws: Workspace,
    path: Path | None,
    lists: Sequence[Path],
    errors: list[str],
    codes: list[int],
    warnings: list[str],
) -> Prepared | None:
    """The campaign to check, or None: with `lists` and no campaign named, the lists are
    checked alone when `campaigns/` holds no campaign or several (which one is unknown)."""
    try:
        return prepare(ws, resolve_campaign(ws, path))
    except (NoCampaignFile, SeveralCampaigns) as exc:
        if path is None and lists:  # lists alone: nothing to say about a campaign
            if isinstance(exc, SeveralCampaigns):
                warnings.append(f"{exc}; the lists were checked alone, without a campaign")
            return None
        errors.append(str(exc))
        codes.append(exc.exit_code)
    except KzmailError as exc:
        errors.append(str(exc))
        codes.append(exc.exit_code)
    return None


def check(
    ws: Workspace,
    path: Path | None,
    *,
    lists: Sequence[Path] = (),
    check_dns: bool = False,
    smtp: bool = False,
    resolver: Any = None,
    on_problem: Callable[[Problem], None] = lambda _: None,
    keep_problems: int = 1000,
) -> CheckResult:
    """Validate the campaign and its template, then read every list once and count.

    `lists` replaces the campaign's lists (and works without a campaign). DNS is only
    queried with `check_dns`, through `resolver` (default: `dns_resolver()`). With `smtp`,
    each relay is connected to as a send would (TLS, AUTH), without sending (`relays`).
    """
    errors: list[str] = []
    codes: list[int] = []
    unchecked: list[str] = []  # a campaign not checked, and why
    prepared = _campaign(ws, path, lists, errors, codes, unchecked)
    if prepared is None and not lists:
        return CheckResult(ListSummary(), errors=errors, codes=codes)
    sources = (
        [ListSource(path=p) for p in lists]
        if lists
        else prepared.campaign.subscribers
        if prepared
        else []
    )
    if check_dns and resolver is None:
        resolver = dns_resolver(ws.environ)
    journal = Journal(ws.state, ws.clock)
    suppressions = journal if prepared else _AnyList(journal)
    list_id = prepared.campaign.list_id if prepared else ANY_LIST
    first: dict[int, Subscriber] = {}
    built: tuple[Rendered, Outgoing] | None = None
    try:
        with ListChecker(
            sources,
            list_id=list_id,
            suppressions=suppressions,
            addresses=AddressChecker(check_dns=check_dns, resolver=resolver),
            on_problem=on_problem,
            keep_problems=keep_problems,
        ) as checker:
            for item in checker.rows(strict=False):
                if isinstance(item.result, Subscriber) and item.source not in first:
                    first[item.source] = item.result
            summary = checker.summary
    finally:
        journal.close()
    if prepared is not None:
        # StrictUndefined: a field the template uses but a list lacks fails here, not mid-send.
        for index, subscriber in first.items():
            try:
                built = prepared.render(subscriber)
            except KzmailError as exc:
                errors.append(f"{exc} (rendering row {subscriber.line} of {sources[index].path})")
                codes.append(exc.exit_code)
                break
    warnings = (
        _dkim_warnings(prepared.campaign, resolver if check_dns else None)
        if prepared is not None
        else unchecked
    )
    if prepared is not None and built is not None:  # Gmail clips, phones pay per MB
        parts, message = built
        sizes = (len(parts.html.encode()), len(message.data), prepared.template.images)
        warnings = [*warnings, *size_warnings(*sizes)]
    if prepared is not None:  # a remote image tells its host who reads the message
        remote = remote_problems(prepared)
        if prepared.campaign.allow_remote_images:
            warnings = remote + warnings
        else:
            errors.extend(remote)
    if not summary.errors and summary.sendable == 0 and not errors:
        errors.append("no sendable subscriber in the list" + ("s" if len(sources) > 1 else ""))
    relays: list[RelayCheck] = []
    if smtp:
        relays = _relays(ws, prepared, errors, codes)
    return CheckResult(
        summary,
        prepared.campaign if prepared else None,
        errors,
        [str(s.path) for s in sources],
        warnings,
        codes,
        relays,
    )


def _relays(
    ws: Workspace, prepared: Prepared | None, errors: list[str], codes: list[int]
) -> list[RelayCheck]:
    """`check --smtp`: each relay's answer; a setting that stops us first is an error."""
    if prepared is None:  # no campaign, or one that could not be read (said already)
        if not errors:
            errors.append("--smtp needs a campaign: its relays are the ones checked")
            codes.append(InputError.exit_code)
        return []
    try:
        return check_relays(ws, prepared.campaign)
    except KzmailError as exc:
        errors.append(str(exc))
        codes.append(exc.exit_code)
    return []


def _dkim_warnings(campaign: Campaign, resolver: Any) -> list[str]:
    """DKIM key and alignment problems; with a resolver, also the published record."""
    if campaign.dkim is None:
        return []
    published = None
    if resolver is not None:
        name = f"{campaign.dkim.selector}._domainkey.{campaign.dkim.domain}"
        try:
            answer = resolver.resolve(name, "TXT")
            published = "".join(
                b.decode("ascii", "replace") for record in answer for b in record.strings
            )
        except Exception as exc:  # noqa: BLE001 - any DNS failure is one warning, not a crash
            return [
                *check_key(campaign.dkim, campaign.from_),
                f"dkim: no DKIM record found at {name} ({type(exc).__name__})",
            ]
    return check_key(campaign.dkim, campaign.from_, published)


@dataclass
class CleanResult:
    summary: ListSummary
    out: Path
    written: int


def clean(
    ws: Workspace,
    list_path: Path,
    out: Path,
    *,
    campaign: Path | None = None,
    encoding: str | None = None,
    delimiter: str | None = None,
    on_problem: Callable[[Problem], None] = lambda _: None,
) -> CleanResult:
    """Write `list_path` to `out` (UTF-8 CSV, or .xlsx) without invalid, duplicate,
    unsubscribed and suppressed rows, keeping every column.

    A CSV is separated like the input (its detected delimiter, or `delimiter`), so a `;`
    list from German Excel stays `;`; a spreadsheet input gives `,`, a `.tsv` output tabs."""
    if out.suffix.lower() not in XLSX_SUFFIXES | {".csv", ".txt", ".tsv"}:
        raise InputError("the output must be a .csv or .xlsx file", path=out)
    if out.exists() and list_path.exists() and out.resolve() == list_path.resolve():
        raise InputError("write the clean list to a new file, not over the original", path=out)
    try:
        source = ListSource(path=list_path, encoding=encoding, delimiter=delimiter)
    except ValidationError as exc:
        detail = exc.errors()[0]
        raise InputError(
            detail["msg"].removeprefix("Value error, "), key=f"--{detail['loc'][0]}"
        ) from exc
    loaded = campaign_file.load(campaign) if campaign is not None else None
    journal = Journal(ws.state, ws.clock)
    try:
        with ListChecker(
            [source],
            list_id=loaded.list_id if loaded else ANY_LIST,
            suppressions=journal if loaded else _AnyList(journal),
            on_problem=on_problem,
            keep_problems=1000,
        ) as checker:
            summary = checker.check()  # first pass: marks, counts, errors
            checker.on_problem = lambda _: None  # reported once, in the first pass
            if summary.errors:
                first = summary.errors[0]
                raise InputError(first.reason, path=first.file, line=first.line or None)
            columns = checker.columns[0]
            width = max((i + 1 for i, h in enumerate(columns.headers) if h.strip()), default=1)
            headers = [without_controls(h) for h in columns.headers[:width]]
            with ListWriter(
                out, headers, verbatim={columns.email}, delimiter=checker.delimiters.get(0)
            ) as writer:
                for item in checker.rows(strict=True):
                    if isinstance(item.result, Subscriber):
                        cells = [without_controls(c) for c in item.cells[:width]]
                        cells += [""] * (width - len(cells))
                        cells[columns.email] = item.result.email
                        writer.row(cells)
            return CleanResult(summary, out, writer.rows)
    finally:
        journal.close()
