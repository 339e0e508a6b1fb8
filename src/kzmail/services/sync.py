"""`kzmail sync`: pull the public server's sealed records into the organiser's state.

For each server bundle made here (`servers.json`) serving the lists asked for, pages of
records above the saved cursor are fetched over HTTPS (plain HTTP only to a loopback test
server) with the bundle's credential, opened with the private sealing key, and applied by
kind: an "unsubscribe" becomes a suppression. The cursor is saved after each page, so an
interrupted sync resumes, and applying a record twice changes nothing. `ack` lets the
server forget what was synced. A list with no bundle never goes online.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from kzmail import campaign_file
from kzmail.errors import StateError, SyncError
from kzmail.models import Workspace
from kzmail.sealing import load_private, open_sealed
from kzmail.state.journal import Journal
from kzmail.state.servers import ServerEntry, advance, load_servers

TIMEOUT = 15.0
_LOOPBACK = {"127.0.0.1", "::1", "localhost"}
REASONS = {"one-click": "unsubscribe: one-click (server)", "page": "unsubscribe: web page (server)"}


@dataclass
class SyncReport:
    servers: int = 0
    records: int = 0
    new: dict[str, int] = field(default_factory=dict)  # kind -> records that changed state
    forgotten: int = 0


def _unsubscribe(journal: Journal, lists: Sequence[str], record: Mapping[str, Any]) -> bool:
    list_id, address = str(record.get("list_id", "")), str(record.get("address", ""))
    if list_id not in lists or "@" not in address:
        raise SyncError(f"a record names a list this server does not serve: {list_id!r}")
    reason = REASONS.get(str(record.get("via")), "unsubscribe (server)")
    at = record.get("at")
    return journal.suppress_new(list_id, address, reason, float(at) if at else None)


# kind -> how a record of that kind changes the organiser's state (True: something new).
# Sign-ups (issue 19) add their kind here.
APPLY: dict[str, Callable[[Journal, Sequence[str], Mapping[str, Any]], bool]] = {
    "unsubscribe": _unsubscribe,
}


def _endpoint(url: str, path: str) -> str:
    parts = urlsplit(url)
    if parts.scheme != "https" and not (parts.scheme == "http" and parts.hostname in _LOOPBACK):
        raise SyncError(f"{url}: sync needs https:// (plain http only to a loopback test server)")
    return f"{url.rstrip('/')}{path}"


def _call(entry: ServerEntry, url: str, data: bytes | None = None) -> Any:
    method = "POST" if data is not None else "GET"
    request = urllib.request.Request(url, data=data, method=method)  # noqa: S310 - scheme checked
    request.add_header("Authorization", f"Bearer {entry.credential}")
    if data is not None:
        request.add_header("Content-Type", "application/x-www-form-urlencoded")
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as answer:  # noqa: S310 - scheme checked
            return json.loads(answer.read(8 * 1024 * 1024))
    except urllib.error.HTTPError as exc:
        why = "the credential was refused (make a new bundle?)" if exc.code == 401 else exc.reason
        raise SyncError(f"{url.split('?')[0]}: {exc.code} {why}") from exc
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise SyncError(
            f"cannot reach the unsubscribe server {url.split('?')[0]}: {reason}"
        ) from exc
    except ValueError as exc:
        raise SyncError(f"{url.split('?')[0]}: the answer is not JSON") from exc


def _pull(
    ws: Workspace, entry: ServerEntry, base: str, journal: Journal, key: bytes, report: SyncReport
) -> int:
    cursor = entry.cursor
    while True:
        page = _call(entry, _endpoint(base, "/sync/records?" + urlencode({"after": cursor})))
        items = page.get("records", []) if isinstance(page, dict) else None
        if not isinstance(items, list):
            raise SyncError(f"{base}: the answer holds no records")
        for item in items:
            record = open_sealed(key, base64.b64decode(item["box"]))
            apply = APPLY.get(record["kind"])
            if apply is None:
                raise SyncError(
                    f"record kind {record['kind']!r} is unknown to this kzmail: update it"
                )
            if apply(journal, entry.lists, record):
                report.new[record["kind"]] = report.new.get(record["kind"], 0) + 1
            report.records += 1
            cursor = max(cursor, int(item["seq"]))
        advance(ws.state, entry.id, cursor)  # applied first, then the cursor: resumable
        if not items or not page.get("more"):
            return cursor


def servers_for(ws: Workspace, list_ids: Sequence[str] | None) -> list[ServerEntry]:
    """The bundles made here that serve any of `list_ids` (None: every bundle)."""
    entries = load_servers(ws.state)
    if list_ids is None:
        return entries
    return [e for e in entries if set(e.lists) & set(list_ids)]


def sync(
    ws: Workspace,
    list_ids: Sequence[str] | None = None,
    *,
    from_url: str | None = None,
    ack: bool = False,
) -> SyncReport:
    """Pull every new record of the servers for `list_ids`; SyncError if one fails."""
    entries = servers_for(ws, list_ids)
    report = SyncReport(servers=len(entries))
    if not entries:
        return report
    key = load_private(ws.state)
    journal = Journal(ws.state, ws.clock)
    try:
        for entry in entries:
            base = from_url or entry.url
            cursor = _pull(ws, entry, base, journal, key, report)
            if ack and cursor:
                answer = _call(
                    entry, _endpoint(base, "/sync/ack"), urlencode({"through": cursor}).encode()
                )
                report.forgotten += int(answer.get("forgotten", 0))
    except (KeyError, TypeError, ValueError) as exc:
        raise SyncError(
            f"the unsubscribe server sent a record this kzmail cannot read: {exc}"
        ) from exc
    finally:
        journal.close()
    return report


def campaign_lists(paths: Sequence[Path]) -> list[str]:
    return [campaign_file.load(p).list_id for p in paths]


def before_send(ws: Workspace, campaign: Path) -> SyncReport | None:
    """Sync the campaign's list first if a bundle was made for it (None: there is none)."""
    lists = campaign_lists([campaign])
    if not servers_for(ws, lists):
        return None
    try:
        return sync(ws, lists)
    except StateError as exc:
        if isinstance(exc, SyncError):
            raise
        raise SyncError(str(exc)) from exc
