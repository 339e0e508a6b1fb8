"""The state database (SQLite, WAL) in the state folder: deliveries and suppressions.

`deliveries` records, per campaign run and recipient, whether a message was sent, so a
second `kzmail send` never mails anyone twice. `suppressions` holds addresses that must
never be mailed again (unsubscribed from a list, or bounced for good: list `*`).
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from .errors import StateError

DB_FILE = "state.db"
ANY_LIST = "*"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS deliveries (
    campaign   TEXT NOT NULL,
    address    TEXT NOT NULL,
    status     TEXT NOT NULL CHECK (status IN
               ('pending', 'sending', 'sent', 'failed', 'uncertain')),
    attempts   INTEGER NOT NULL DEFAULT 0,
    code       INTEGER,
    detail     TEXT,
    message_id TEXT,
    updated_at REAL NOT NULL,
    PRIMARY KEY (campaign, address)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS suppressions (
    list_id    TEXT NOT NULL,
    address    TEXT NOT NULL,
    reason     TEXT NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (list_id, address)
) WITHOUT ROWID;
"""


class Journal:
    """One connection to the state database; every write is committed at once."""

    def __init__(self, state_dir: Path) -> None:
        try:
            state_dir.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(state_dir / DB_FILE, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise StateError(f"cannot open the state database in {state_dir}: {exc}") from None

    def close(self) -> None:
        self._db.close()

    # deliveries ---------------------------------------------------------------
    def status(self, campaign: str, address: str) -> str | None:
        row = self._db.execute("SELECT status FROM deliveries WHERE campaign=? AND address=?",
                               (campaign, address.lower())).fetchone()
        return None if row is None else str(row[0])

    def mark(self, campaign: str, address: str, status: str, *, code: int | None = None,
             detail: str | None = None, message_id: str | None = None) -> None:
        """Record the new status of one delivery (durably, before returning)."""
        self._db.execute(
            """INSERT INTO deliveries (campaign, address, status, attempts, code, detail,
                                       message_id, updated_at)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT (campaign, address) DO UPDATE SET
                 status=excluded.status,
                 attempts=attempts + excluded.attempts,
                 code=COALESCE(excluded.code, code),
                 detail=COALESCE(excluded.detail, detail),
                 message_id=COALESCE(excluded.message_id, message_id),
                 updated_at=excluded.updated_at""",
            (campaign, address.lower(), status, 1 if status == "sending" else 0, code, detail,
             message_id, time.time()))

    def counts(self, campaign: str) -> dict[str, int]:
        rows = self._db.execute("SELECT status, COUNT(*) FROM deliveries WHERE campaign=? "
                                "GROUP BY status", (campaign,))
        return {str(status): int(count) for status, count in rows}

    def forget(self, campaign: str) -> None:
        """Drop every delivery record of a campaign run (used for sink rehearsals)."""
        self._db.execute("DELETE FROM deliveries WHERE campaign=?", (campaign,))

    # suppressions -------------------------------------------------------------
    def suppress(self, list_id: str, address: str, reason: str) -> None:
        self._db.execute("INSERT OR IGNORE INTO suppressions VALUES (?, ?, ?, ?)",
                         (list_id, address.lower(), reason, time.time()))

    def is_suppressed(self, list_id: str, address: str) -> bool:
        row = self._db.execute("SELECT 1 FROM suppressions WHERE address=? AND list_id IN (?, ?)",
                               (address.lower(), list_id, ANY_LIST)).fetchone()
        return row is not None

    def suppress_new(self, list_id: str, address: str, reason: str) -> bool:
        """Suppress like `suppress`; True if this was new, False if already recorded."""
        cursor = self._db.execute("INSERT OR IGNORE INTO suppressions VALUES (?, ?, ?, ?)",
                                  (list_id, address.lower(), reason, time.time()))
        return cursor.rowcount == 1

    def suppressions(self, list_id: str | None = None) -> list[tuple[str, str, str, float]]:
        """(list_id, address, reason, created_at) rows, oldest first; one list or all."""
        query = "SELECT list_id, address, reason, created_at FROM suppressions"
        args: tuple[str, ...] = ()
        if list_id is not None:
            query += " WHERE list_id IN (?, ?)"
            args = (list_id, ANY_LIST)
        rows = self._db.execute(query + " ORDER BY created_at, list_id, address", args)
        return [(str(a), str(b), str(c), float(d)) for a, b, c, d in rows]

    def is_suppressed_anywhere(self, address: str) -> bool:
        """True if `address` is suppressed for any list (for lists checked without a campaign)."""
        row = self._db.execute("SELECT 1 FROM suppressions WHERE address=? LIMIT 1",
                               (address.lower(),)).fetchone()
        return row is not None
