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
import mailbox
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import Message
from email.utils import getaddresses, parseaddr
from pathlib import Path
from typing import TextIO, cast

from kzmail import campaign_file
from kzmail.errors import InputError
from kzmail.inbox import authresults
from kzmail.lists.checker import ListChecker
from kzmail.lists.rows import Problem, clean_address, header_key
from kzmail.lists.writer import runs_as_formula, spreadsheet_text
from kzmail.models import ANY_LIST, ListSource, Workspace
from kzmail.private import open_private
from kzmail.services import workspace
from kzmail.state.journal import Journal
from kzmail.state.secret import load_signer
from kzmail.tokens import TokenSigner

CSV_COLUMNS = ("email", "list_id", "reason", "unsubscribed_at")
ALL_LISTS = "all lists"  # how an export names `ANY_LIST`
_AUTO_SENDERS = re.compile(r"^(mailer-daemon|postmaster|no-?reply|bounces?)([+@-]|$)", re.I)


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
class Trust:
    """What proves a reply: the authserv-ids whose headers count, or From taken as it is."""

    authserv_ids: tuple[str, ...] = ()
    trust_from: bool = False


@dataclass(frozen=True)
class Unverified:
    """A reply whose sender nothing proves: reported, not acted on."""

    where: str
    address: str


_TOKEN = re.compile(r"(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{22}(?![A-Za-z0-9_.-])")
_MAX_TOKEN_SCAN = 64 * 1024  # a reply quoting our message has the link near its end
_MAX_CANDIDATES = 20


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


def _auto_reason(message: Message) -> str | None:
    """Why a message is not a person's request (auto-reply, bounce), or None."""
    auto = str(message.get("Auto-Submitted", "no")).strip().lower()
    if auto and auto != "no":
        return f"auto-submitted ({auto})"
    if str(message.get("Precedence", "")).strip().lower() in {"bulk", "junk", "list", "auto_reply"}:
        return "bulk or auto-reply precedence"
    if message.get("X-Autoreply") or message.get("X-Autorespond"):
        return "auto-reply"
    if str(message.get("Return-Path", "")).strip() == "<>":
        return "bounce (empty return path)"
    if "report" in message.get_content_type() and message.get_content_maintype() == "multipart":
        return "delivery report"
    return None


def _sender(message: Message) -> str:
    """The single address in From, or ValueError."""
    found = [
        addr for _, addr in getaddresses([str(h) for h in message.get_all("From", [])]) if addr
    ]
    if len(found) != 1:
        raise ValueError("no single From address")
    address = clean_address(found[0])
    if _AUTO_SENDERS.match(address):
        raise ValueError(f"automatic sender {address}")
    return address


def _texts(message: Message) -> Iterator[str]:
    """The subject and the text parts, decoded, each cut to a bounded length."""
    yield str(message.get("Subject", ""))[:_MAX_TOKEN_SCAN]
    for part in message.walk():
        if part.get_content_maintype() != "text":
            continue
        payload = part.get_payload(decode=True)
        if isinstance(payload, bytes):
            text = payload.decode("utf-8", errors="replace")
            yield text[:_MAX_TOKEN_SCAN] + text[-_MAX_TOKEN_SCAN:]


def _token_address(message: Message, signer: TokenSigner) -> str | None:
    """The address named by a genuine unsubscribe token in the reply, or None."""
    tried = 0
    for text in _texts(message):
        for candidate in _TOKEN.findall(text):
            tried += 1
            if tried > _MAX_CANDIDATES:
                return None
            found = signer.verify(candidate)
            if found is not None:
                return found[1]
    return None


def _verified(message: Message, sender: str, trust: Trust, signer: TokenSigner) -> str | None:
    """The address this reply proves it may unsubscribe, or None."""
    token_address = _token_address(message, signer)
    if token_address is not None:
        return clean_address(token_address)
    if trust.trust_from or authresults.proven(message, sender, trust.authserv_ids):
        return sender
    return None


def _from_messages(
    messages: Iterator[tuple[str, Message]], trust: Trust, signer: TokenSigner
) -> Iterator[str | Problem | Unverified]:
    for where, message in messages:
        reason = _auto_reason(message)
        if reason is not None:
            yield Problem(where, 0, f"skipped: {reason}")
            continue
        try:
            sender = _sender(message)
            address = _verified(message, sender, trust, signer)
        except ValueError as exc:
            yield Problem(where, 0, f"skipped: {exc}")
            continue
        yield address if address is not None else Unverified(where, sender)


def _mbox(path: Path) -> Iterator[tuple[str, Message]]:
    box = mailbox.mbox(path, create=False)
    try:
        for number, message in enumerate(box, start=1):
            yield f"{path} message {number}", message
    finally:
        box.close()


def _maildir(path: Path) -> Iterator[tuple[str, Message]]:
    box = mailbox.Maildir(path, create=False)
    for key in sorted(box.keys()):
        yield f"{path}/{key}", box[key]


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
        yield from _from_messages(_maildir(path), trust, load_signer(ws.state))
        return
    try:
        with path.open(encoding="utf-8-sig", errors="replace") as handle:
            head = handle.read(4096)
            handle.seek(0)
            if head.startswith("From "):
                handle.close()
                yield from _from_messages(_mbox(path), trust, load_signer(ws.state))
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
