"""The suppression list for organisers: import mailto unsubscribes, list and export them.

`import_file` reads replies to the `mailto:` unsubscribe address from an mbox or a
Maildir, or a plain list of addresses, or a CSV with an email column. A reply is acted
on only when it is shown to come from the subscriber: it carries their unsubscribe token
(the List-Unsubscribe subject, or the /u/ link quoted in the body), or the receiving
server's Authentication-Results (from an authserv-id the organiser names) say DKIM or SPF
passed aligned with From. Anyone can write a From header: other replies are reported as
not verified, unless the organiser trusts From. Auto-replies and bounces are skipped.
`rows` and `write_csv` give back who unsubscribed,
when and from which list, as a CSV to paste into the spreadsheet; importing that CSV
(`is_export`) restores each row's own list, reason and time. `remove` undoes one
suppression, recorded with the organiser's reason.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parseaddr
from pathlib import Path
from typing import TextIO, cast

from kzmail import campaign_file
from kzmail.errors import InputError, NoCampaignFile, SeveralCampaigns
from kzmail.inbox.replies import Trust, Unverified, from_messages, maildir_messages, mbox_messages
from kzmail.lists.checker import ListChecker
from kzmail.lists.rows import Problem, clean_address, header_key
from kzmail.lists.writer import runs_as_formula, spreadsheet_text
from kzmail.models import ANY_LIST, ListSource, Workspace
from kzmail.private import open_private
from kzmail.services import workspace
from kzmail.state.journal import Journal
from kzmail.state.secret import load_signer

CSV_COLUMNS = ("email", "list_id", "reason", "unsubscribed_at")
ALL_LISTS = "all lists"  # how an export names `ANY_LIST`


@dataclass
class ImportReport:
    """What an import did: who was added, who was already there, what was skipped and why.

    From an export, `added` and `already` say `address on list` (one address may be on
    several)."""

    list_id: str
    source: str
    added: list[str] = field(default_factory=list)
    already: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    unverified: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Restored:
    """One row of an export: a suppression to restore as it was."""

    address: str
    list_id: str
    reason: str
    at: float | None  # None: the row gave no time (now)


def target_list(
    ws: Workspace, list_id: str | None, campaign: Path | None, path: Path | None = None
) -> str | None:
    """The list to suppress on: `--list` (`*` = every list), else the campaign's list;
    None for an export (`path`) when neither is given: each row names its own list."""
    if list_id:
        return list_id.strip()
    if campaign is None and path is not None and is_export(path):
        return None
    return campaign_file.load(workspace.resolve_campaign(ws, campaign)).list_id


def is_mailbox(spec: str) -> bool:
    """True for what `kzmail inbox` reads: an IMAP folder, a folder (Maildir), an mbox."""
    if spec.startswith(("imap://", "imaps://")):
        return True
    path = Path(spec)
    if path.is_dir():
        return True
    try:
        with path.open("rb") as handle:
            return handle.read(5) == b"From "
    except OSError:
        return False


def mailbox_list(ws: Workspace, list_id: str | None, campaign: Path | None) -> str | None:
    """The list for proven replies without a token: `--list`, else the campaign's (the
    only one in `campaigns/`); None when there is none to take (tokens still name one)."""
    if list_id:
        return list_id.strip()
    try:
        return campaign_file.load(workspace.resolve_campaign(ws, campaign)).list_id
    except (NoCampaignFile, SeveralCampaigns):
        if campaign is not None:
            raise
        return None


def _first_line(path: Path) -> str:
    try:
        with path.open(encoding="utf-8-sig", errors="replace") as handle:
            return handle.readline(4096)
    except OSError:
        return ""


def _dialect(line: str) -> type[csv.Dialect] | csv.Dialect:
    try:
        return csv.Sniffer().sniff(line, delimiters=",;\t")
    except csv.Error:
        return csv.excel


def is_export(path: Path) -> bool:
    """True if `path` is a CSV with exactly the columns `export` writes (a spreadsheet may
    have saved it with `;` or tabs)."""
    if not path.is_file():
        return False
    line = _first_line(path)
    header = next(csv.reader([line], _dialect(line)), [])
    return [header_key(h) for h in header] == [header_key(c) for c in CSV_COLUMNS]


def _as_written(cell: str) -> str:
    """A cell as it was before `spreadsheet_text` guarded it."""
    return cell[1:] if cell.startswith("'") and runs_as_formula(cell[1:]) else cell


def _time(text: str) -> float | None:
    """An export's ISO 8601 time as a timestamp (no offset: UTC); None if empty."""
    if not text.strip():
        return None
    stamp = datetime.fromisoformat(text.strip())
    return (stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)).timestamp()


def _restored(path: Path, line: int, record: list[str]) -> Restored | Problem:
    cells = [_as_written(c) for c in record] + [""] * (4 - len(record))
    email, list_id, reason, at = cells[:4]
    list_id = list_id.strip()
    try:
        address = clean_address(email)
        when = _time(at)
    except ValueError as exc:
        return Problem(str(path), line, str(exc))
    if not list_id:
        return Problem(str(path), line, "no list_id")
    own = ANY_LIST if list_id == ALL_LISTS else list_id
    return Restored(address, own, reason or f"unsubscribe: imported from {path.name}", when)


def read_export(path: Path) -> Iterator[Restored | Problem]:
    """Every row of an export CSV (`is_export`) as it was suppressed, or a Problem."""
    try:
        with path.open(encoding="utf-8-sig", errors="replace", newline="") as handle:
            reader = csv.reader(handle, _dialect(handle.readline(4096)))
            for line, record in enumerate(reader, start=2):
                if any(cell.strip() for cell in record):
                    yield _restored(path, line, record)
    except OSError as exc:
        raise InputError(f"cannot read the file ({exc})", path=path) from exc


def _plain(path: Path, handle: TextIO) -> Iterator[str | Problem]:
    for number, line in enumerate(handle, start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        if "<" in text:  # "Name <addr>", as copied from a mail client
            text = parseaddr(text)[1] or text
        try:
            yield clean_address(text)
        except ValueError as exc:
            yield Problem(str(path), number, str(exc))


def read_addresses(
    ws: Workspace, path: Path, trust: Trust | None = None
) -> Iterator[str | Problem | Unverified]:
    """Every address in the file (or Maildir), or a Problem per entry that is not one.

    Replies in a mailbox whose sender nothing proves come as Unverified.
    """
    trust = trust or Trust()
    if path.is_dir():
        if not (path / "cur").is_dir() and not (path / "new").is_dir():
            raise InputError("a folder must be a Maildir (with cur/ and new/)", path=path)
        yield from from_messages(maildir_messages(path), trust, load_signer(ws.state))
        return
    try:
        with path.open(encoding="utf-8-sig", errors="replace") as handle:
            head = handle.read(4096)
            handle.seek(0)
            if head.startswith("From "):
                handle.close()
                yield from from_messages(mbox_messages(path), trust, load_signer(ws.state))
                return
            first = head.splitlines()[0] if head.strip() else ""
            if not re.search(r"[,;\t|]", first):
                yield from _plain(path, handle)
                return
    except FileNotFoundError:
        raise InputError("file not found", path=path) from None
    except OSError as exc:
        raise InputError(f"cannot read the file ({exc})", path=path) from exc
    with ListChecker([ListSource(path=path)]) as checker:
        for row in checker.rows(strict=True):
            if isinstance(row.result, Problem):  # a row marked unsubscribed is one to take
                marked = row.result.kind == "unsubscribed"
                yield row.result.address if marked else row.result
            else:
                yield row.result.email


def import_file(
    ws: Workspace, path: Path, list_id: str | None, trust: Trust | None = None
) -> ImportReport:
    """Suppress every proven address in `path` on `list_id`; report what happened.

    An export (`is_export`) restores each row's reason and time, on its own list unless
    `list_id` is given; other files need `list_id`.
    """
    if is_export(path):
        return _import_export(ws, path, list_id)
    if list_id is None:
        raise InputError("name the list to suppress on (--list or --campaign)", path=path)
    report = ImportReport(list_id=list_id, source=str(path))
    journal = Journal(ws.state, ws.clock)
    try:
        seen: set[str] = set()
        for item in read_addresses(ws, path, trust):
            if isinstance(item, Problem):
                report.skipped.append(str(item).replace(":0: ", ": "))
            elif isinstance(item, Unverified):
                report.unverified.append(f"{item.where}: {item.address}")
            elif item.lower() not in seen:
                seen.add(item.lower())
                added = journal.suppress_new(
                    list_id, item, f"unsubscribe: imported from {path.name}"
                )
                (report.added if added else report.already).append(item.lower())
    finally:
        journal.close()
    return report


def _import_export(ws: Workspace, path: Path, list_id: str | None) -> ImportReport:
    """Restore an export's rows; the report names the lists they went to."""
    report = ImportReport(list_id=list_id or "", source=str(path))
    lists: set[str] = set()
    journal = Journal(ws.state, ws.clock)
    try:
        for item in read_export(path):
            if isinstance(item, Problem):
                report.skipped.append(str(item))
                continue
            target = list_id or item.list_id
            shown = ALL_LISTS if target == ANY_LIST else target
            lists.add(shown)
            added = journal.suppress_new(target, item.address, item.reason, item.at)
            (report.added if added else report.already).append(f"{item.address} on {shown}")
    finally:
        journal.close()
    report.list_id = list_id or ", ".join(sorted(lists)) or "no list"
    return report


def rows(ws: Workspace, list_id: str | None = None) -> list[dict[str, str]]:
    """Who is suppressed, on which list, why and when (ISO 8601, UTC), oldest first."""
    journal = Journal(ws.state, ws.clock)
    try:
        found = journal.suppressions(list_id)
    finally:
        journal.close()
    return [
        {
            "email": address,
            "list_id": ALL_LISTS if lid == ANY_LIST else lid,
            "reason": reason,
            "unsubscribed_at": datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds"),
        }
        for lid, address, reason, at in found
        if "@" in address
    ]  # forgotten people are kept as a hash only


def write_csv(records: list[dict[str, str]], out: TextIO) -> None:
    """The rows as CSV with a header row, ready for a spreadsheet."""
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(
        {k: v if k == "email" else spreadsheet_text(v) for k, v in r.items()} for r in records
    )


def export(ws: Workspace, out: Path, list_id: str | None = None) -> int:
    """Write the CSV to `out`; return how many rows it holds."""
    records = rows(ws, list_id)
    try:
        with open_private(out, "w", encoding="utf-8", newline="") as handle:
            write_csv(records, cast(TextIO, handle))
    except OSError as exc:
        raise InputError(f"cannot write the export ({exc})", path=out) from exc
    return len(records)


@dataclass(frozen=True)
class Removal:
    """What `remove` found: where `address` was suppressed (`lists`, as an export names
    them; empty: nowhere that was asked about), and whether that was removed."""

    address: str
    lists: list[str]
    removed: bool
    elsewhere: list[str] = field(default_factory=list)  # lists it stays suppressed on


def _shown(lists: list[str]) -> list[str]:
    return [ALL_LISTS if lid == ANY_LIST else lid for lid in lists]


def remove(
    ws: Workspace,
    address: str,
    list_id: str | None,
    reason: str,
    confirm: Callable[[str, list[str]], bool] = lambda _a, _l: True,
) -> Removal:
    """Mail `address` again on `list_id` (None: every list) after `confirm(address, lists)`;
    the journal records the removal with `reason`. Nothing is asked when nothing is there."""
    try:
        clean = clean_address(address).lower()
    except ValueError as exc:
        raise InputError(f"not an address: {exc}", key="ADDRESS") from exc
    wanted = None if list_id is None else list_id.strip()
    journal = Journal(ws.state, ws.clock)
    try:
        lists = _shown(journal.suppressed_on(clean, wanted))
        if not lists or not confirm(clean, lists):
            return Removal(clean, lists, False, _shown(journal.suppressed_on(clean)))
        removed = _shown(journal.unsuppress(clean, wanted, reason))
        return Removal(clean, removed, True, _shown(journal.suppressed_on(clean)))
    finally:
        journal.close()
