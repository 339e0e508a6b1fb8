"""`kzmail status` and `kzmail report`: where a campaign's subscribers stand, from the journal.

Both read the campaign file and the journal only (no template is compiled): `status` counts
the list's valid subscribers per state, `report` writes who failed or is uncertain, and why,
to a CSV file only the owner can read.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from kzmail import campaign_file
from kzmail.errors import StateError
from kzmail.lists.checker import ListChecker
from kzmail.lists.writer import spreadsheet_row
from kzmail.models import Workspace
from kzmail.private import open_private
from kzmail.services.send import run_key
from kzmail.state.journal import Delivery, Journal
from kzmail.state.runlock import running

STATUS_KEYS = (
    "total",
    "sent",
    "bounced",
    "failed",
    "uncertain",
    "pending",
    "sending",
    "suppressed",
)


@dataclass
class Status:
    """Counts per status for the campaign's list, who is uncertain, and who is in flight.

    While a send of the run is going on (`sender` is its process id), rows still `sending`
    are messages in flight; with no send running they were caught by a crash: uncertain.
    """

    campaign: str
    run_key: str
    counts: dict[str, int]
    uncertain: list[Delivery]
    in_flight: list[Delivery] = field(default_factory=list)
    sender: int | None = None


def status(ws: Workspace, path: Path) -> Status:
    """Where each valid subscriber of the list stands in the journal (no template needed)."""
    campaign = campaign_file.load(path)
    key = run_key(campaign)
    counts = dict.fromkeys(STATUS_KEYS, 0)
    journal = Journal(ws.state, ws.clock)
    try:
        # no suppression filter in the checker: suppressed subscribers are counted below
        with ListChecker(campaign.subscribers, list_id=campaign.list_id) as checker:
            for item in checker.subscribers():
                counts["total"] += 1
                state = journal.status(key, item.email)
                if state is None:
                    state = (
                        "suppressed"
                        if journal.is_suppressed(campaign.list_id, item.email)
                        else "pending"
                    )
                counts[state] = counts.get(state, 0) + 1
        sender = running(ws.state, key)
        left = list(journal.deliveries(key, ("uncertain", "sending")))
    finally:
        journal.close()
    if sender is None:  # nobody is sending: a row still `sending` was caught by a crash
        counts["uncertain"] += counts["sending"]
        counts["sending"] = 0
        return Status(campaign.name, key, counts, left)
    in_flight = [d for d in left if d.status == "sending"]
    uncertain = [d for d in left if d.status != "sending"]
    return Status(campaign.name, key, counts, uncertain, in_flight, sender)


def report(ws: Workspace, path: Path, out: Path) -> int:
    """Write who failed (or is uncertain) and why to a CSV file; return how many rows."""
    campaign = campaign_file.load(path)
    journal = Journal(ws.state, ws.clock)
    try:
        rows = list(
            journal.deliveries(run_key(campaign), ("bounced", "failed", "uncertain", "sending"))
        )
    finally:
        journal.close()
    try:
        with open_private(out, "w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(
                ["email", "name", "status", "attempts", "code", "reason", "retryable", "updated_at"]
            )
            for d in rows:
                writer.writerow(
                    spreadsheet_row(
                        [
                            d.address,
                            d.name,
                            d.status,
                            str(d.attempts),
                            "" if d.code is None else str(d.code),
                            d.detail,
                            "yes" if d.retryable else "no",
                            datetime.fromtimestamp(d.updated_at, UTC).isoformat(),
                        ],
                        verbatim={0},
                    )
                )
    except OSError as exc:
        raise StateError(f"cannot write {out}: {exc}") from exc
    return len(rows)
