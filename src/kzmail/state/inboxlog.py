"""What the inbox did, kept in the state database: deliveries bounced, soft bounces counted,
messages handled.

`InboxStore` is mixed into `Journal` (one connection): `delivery_by_message_id` finds the
delivery a bounce returns; `mark_bounced` makes it `bounced`; `count_soft` records one soft
bounce per address and campaign and says in how many campaigns it happened; `handled` and
`remember` make a message handled twice count once; `record_run` keeps the list each
campaign run sent to, for complaints whose campaign file is gone. `migrate_status` rebuilds
the two status tables of a database made before `bounced` existed (SQLite cannot alter a
CHECK).
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable

from kzmail.models import ANY_LIST
from kzmail.state.schema import AFTER_MIGRATION, SCHEMA, STATUS_TABLES
from kzmail.state.sqlerrors import mapped
from kzmail.state.suppressed import SuppressedCopy


def _create(table: str) -> str:
    found = re.search(rf"CREATE TABLE IF NOT EXISTS {table} \(.*?\n\)[^;]*;", SCHEMA, re.S)
    if found is None:  # pragma: no cover - the schema names both tables
        raise LookupError(table)
    return found.group(0)


def migrate_status(db: sqlite3.Connection) -> None:
    """Let `deliveries` and `marks` take the `bounced` status (once; a no-op afterwards)."""
    for table in STATUS_TABLES:
        (sql,) = db.execute("SELECT sql FROM sqlite_master WHERE name=?", (table,)).fetchone()
        if "'bounced'" in str(sql):
            continue
        columns = ", ".join(str(row[1]) for row in db.execute(f"PRAGMA table_info({table})"))
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute(f"ALTER TABLE {table} RENAME TO {table}_before_bounced")
            db.execute(_create(table))
            db.execute(
                f"INSERT INTO {table} ({columns}) "  # noqa: S608 - names from the schema
                f"SELECT {columns} FROM {table}_before_bounced"
            )
            db.execute(f"DROP TABLE {table}_before_bounced")
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
    db.execute(AFTER_MIGRATION)


@mapped
class InboxStore:
    """Bounces and handled messages over the journal's connection (see the module)."""

    _db: sqlite3.Connection
    _clock: Callable[[], float]
    _suppressed: SuppressedCopy

    def _settle(self) -> None:
        raise NotImplementedError  # the journal's: write and fold what is queued

    def _durable_now(self) -> None:
        raise NotImplementedError  # the suppression store's: fdatasync the WAL

    def begin_inbox(self) -> None:
        """Start a batch: what follows is one transaction until `commit_inbox` (a commit
        and an fdatasync per message would cost more than reading it)."""
        self._settle()  # every delivery's mark folded in before we look them up
        self._db.execute("BEGIN IMMEDIATE")

    def commit_inbox(self) -> None:
        """Commit the batch and put it on stable storage; only then may a mailbox flag."""
        if self._db.in_transaction:
            self._db.execute("COMMIT")
        self._durable_now()

    def rollback_inbox(self) -> None:
        if self._db.in_transaction:
            self._db.execute("ROLLBACK")
        self._suppressed = SuppressedCopy(self._db, ANY_LIST)  # it may hold undone rows

    def suppress_in_batch(self, list_id: str, address: str, reason: str) -> bool:
        """Suppress inside the batch (durable at `commit_inbox`); True if it was new."""
        cursor = self._db.execute(
            "INSERT OR IGNORE INTO suppressions VALUES (?, ?, ?, ?)",
            (list_id, address.lower(), reason, self._clock()),
        )
        self._suppressed.add(list_id, address.lower())
        return cursor.rowcount == 1

    def delivery_by_message_id(self, message_id: str) -> tuple[str, str] | None:
        """(campaign run, address) of the delivery that sent `message_id`, or None
        (inside a batch: `begin_inbox` folded the marks in)."""
        row = self._db.execute(
            "SELECT campaign, address FROM deliveries WHERE message_id=? LIMIT 1",
            (message_id.strip(),),
        ).fetchone()
        return None if row is None else (str(row[0]), str(row[1]))

    def delivery_by_message_local(self, local: str) -> tuple[str, str] | None:
        """Like `delivery_by_message_id`, from the Message-ID's local part (VERP)."""
        start = f"<{local}@"
        row = self._db.execute(
            "SELECT campaign, address FROM deliveries WHERE message_id >= ? "
            "AND message_id < ? LIMIT 1",
            (start, start + "\x7f"),
        ).fetchone()
        return None if row is None else (str(row[0]), str(row[1]))

    def delivery_exists(self, campaign: str, address: str) -> bool:
        self._settle()
        row = self._db.execute(
            "SELECT 1 FROM deliveries WHERE campaign=? AND address=?", (campaign, address.lower())
        ).fetchone()
        return row is not None

    def mark_bounced(self, campaign: str, address: str, code: int | None, detail: str) -> None:
        """The delivery came back: `bounced`, with the code and diagnostic kept."""
        self._db.execute(
            "UPDATE deliveries SET status='bounced', code=COALESCE(?, code), detail=?, "
            "updated_at=? WHERE campaign=? AND address=?",
            (code, detail, self._clock(), campaign, address.lower()),
        )

    def count_soft(self, address: str, campaign: str, status: str, reason: str) -> int:
        """Record a soft bounce of `address` in `campaign` (once per campaign); return in how
        many different campaigns it soft-bounced."""
        self._db.execute(
            "INSERT OR IGNORE INTO soft_bounces VALUES (?, ?, ?, ?, ?)",
            (address.lower(), campaign, status, reason, self._clock()),
        )
        (count,) = self._db.execute(
            "SELECT COUNT(*) FROM soft_bounces WHERE address=?", (address.lower(),)
        ).fetchone()
        return int(count)

    def soft_count(self, address: str) -> int:
        (count,) = self._db.execute(
            "SELECT COUNT(*) FROM soft_bounces WHERE address=?", (address.lower(),)
        ).fetchone()
        return int(count)

    def handled(self, key: str) -> bool:
        """True if the message with this key was handled by an earlier run."""
        return self.handled_as(key) is not None

    def handled_as(self, key: str) -> str | None:
        """What an earlier run handled the message as (its kind, or `unmatched`), or None."""
        row = self._db.execute("SELECT kind FROM handled_messages WHERE key=?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def remember(self, key: str, kind: str) -> None:
        """The message is handled, as `kind` (an `unmatched` one may be acted on later)."""
        self._db.execute(
            "INSERT OR REPLACE INTO handled_messages VALUES (?, ?, ?)", (key, kind, self._clock())
        )

    def record_run(self, campaign: str, list_id: str) -> None:
        """The list a campaign run sends to, so a complaint finds it without the file."""
        self._db.execute(
            "INSERT OR REPLACE INTO runs VALUES (?, ?, ?)", (campaign, list_id, self._clock())
        )

    def list_of_run(self, campaign: str) -> str | None:
        row = self._db.execute("SELECT list_id FROM runs WHERE campaign=?", (campaign,)).fetchone()
        return None if row is None else str(row[0])
