"""The suppression list and forgetting a person: the part of the journal about who must
never be mailed again.

`SuppressionStore` is mixed into `Journal` (one connection, one class for callers): it keeps
`suppressions` (unsubscribed from a list, or bounced for good: list `*`), the record of removed
suppressions, and erases a person from the state on request (DSGVO Art. 17) while keeping a
keyed hash if they had unsubscribed. Every write is on stable storage before it returns.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from pathlib import Path

from kzmail.errors import StateError
from kzmail.models import ANY_LIST
from kzmail.state.durable import WalSync
from kzmail.state.sqlerrors import mapped
from kzmail.state.suppressed import SuppressedCopy, hash_key, hashed


@mapped
class SuppressionStore:
    """Suppressions and erasure over the journal's connection (see the module)."""

    _db: sqlite3.Connection
    _path: Path
    _clock: Callable[[], float]
    _suppressed: SuppressedCopy
    _wal_sync: WalSync

    @property
    def path(self) -> Path:
        """The database file."""
        return self._path

    def _settle(self) -> None:
        raise NotImplementedError  # the journal's: write and fold what is queued

    def suppress(self, list_id: str, address: str, reason: str) -> None:
        self._db.execute(
            "INSERT OR IGNORE INTO suppressions VALUES (?, ?, ?, ?)",
            (list_id, address.lower(), reason, self._clock()),
        )
        self._durable_now()
        self._suppressed.add(list_id, address.lower())

    def is_suppressed(self, list_id: str, address: str) -> bool:
        """True if `address` must not get `list_id`'s mail; from memory (`suppressed`)."""
        return self._suppressed.contains(list_id, address.lower())

    def suppress_new(
        self, list_id: str, address: str, reason: str, at: float | None = None
    ) -> bool:
        """Suppress like `suppress`, dated `at` (default: now, e.g. an export's own time);
        True if this was new, False if already recorded (that record is kept as it is)."""
        cursor = self._db.execute(
            "INSERT OR IGNORE INTO suppressions VALUES (?, ?, ?, ?)",
            (list_id, address.lower(), reason, self._clock() if at is None else at),
        )
        self._durable_now()
        self._suppressed.add(list_id, address.lower())
        return cursor.rowcount == 1

    def _durable_now(self) -> None:
        """An unsubscribe is kept forever: on stable storage before we say it is recorded."""
        self._wal_sync.wrote()
        self._wal_sync.now()

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
        key = hash_key(self._db)
        forms = (address.lower(), hashed(key, address.lower()) if key else address.lower())
        row = self._db.execute(
            "SELECT 1 FROM suppressions WHERE address IN (?, ?) LIMIT 1", forms
        ).fetchone()
        return row is not None

    def suppressed_on(self, address: str, list_id: str | None = None) -> list[str]:
        """The lists `address` is suppressed on (sorted; `list_id` only, if given)."""
        return sorted(lid for lid, _, _, _ in self._rows_of(address.lower(), list_id))

    def _rows_of(self, address: str, list_id: str | None) -> list[tuple[str, str, str, float]]:
        """(list_id, stored address, reason, created_at) of `address`, plain or hashed."""
        key = hash_key(self._db)
        forms = (address, hashed(key, address) if key else address)
        query = "SELECT list_id, address, reason, created_at FROM suppressions"
        query += " WHERE address IN (?, ?)"
        args: tuple[str, ...] = forms
        if list_id is not None:
            query += " AND list_id=?"
            args = (*forms, list_id)
        rows = self._db.execute(query, args).fetchall()
        return [(str(a), str(b), str(c), float(d)) for a, b, c, d in rows]

    def unsuppress(self, address: str, list_id: str | None, reason: str) -> list[str]:
        """Mail `address` again: delete its suppression on `list_id` (None: on every list,
        `*` included) and record each removal in `unsuppressions` with `reason` and what
        was removed. Returns the lists it was removed from (sorted; empty: nothing was).

        A forgotten person's suppression (a keyed hash) is matched and recorded as the hash.
        """
        self._db.execute("BEGIN IMMEDIATE")
        try:
            found = self._rows_of(address.lower(), list_id)
            now = self._clock()
            for lid, stored, was_reason, was_at in found:
                self._db.execute(
                    "DELETE FROM suppressions WHERE list_id=? AND address=?", (lid, stored)
                )
                self._db.execute(
                    "INSERT INTO unsuppressions VALUES (?, ?, ?, ?, ?, ?)",
                    (lid, stored, reason, now, was_reason, was_at),
                )
            self._db.execute("COMMIT")
        except BaseException:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise
        self._durable_now()
        self._suppressed = SuppressedCopy(self._db, ANY_LIST)  # it held the removed rows
        return sorted(lid for lid, _, _, _ in found)

    # forgetting a person (DSGVO Art. 17) -------------------------------------------
    def forget_address(self, address: str) -> tuple[int, list[str]]:
        """Delete every delivery row of `address` and every record of a suppression of it
        that was removed; keep its suppressions as keyed hashes.

        Returns (deliveries deleted, lists it stays suppressed on). `scrub` afterwards.
        """
        address = address.lower()
        try:
            return self._forget(address)
        except sqlite3.Error as exc:
            raise StateError(f"cannot erase the address from {self._path}: {exc}") from exc

    def _forget(self, address: str) -> tuple[int, list[str]]:
        self._settle()
        self._db.execute("PRAGMA secure_delete=ON")  # freed pages are zeroed
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.execute(
                "INSERT OR IGNORE INTO keys VALUES ('suppression', ?)", (os.urandom(32),)
            )
            key = hash_key(self._db) or b""
            gone = self._db.execute("DELETE FROM deliveries WHERE address=?", (address,)).rowcount
            gone += self._db.execute("DELETE FROM marks WHERE address=?", (address,)).rowcount
            self._db.execute("DELETE FROM soft_bounces WHERE address=?", (address,))
            rows = self._db.execute(
                "SELECT list_id, reason, created_at FROM suppressions WHERE address=?", (address,)
            ).fetchall()
            for list_id, reason, at in rows:  # a bounce's reason may quote the address
                kept = (
                    "bounced (forgotten)"
                    if str(reason).startswith("bounce")
                    else "unsubscribed (forgotten)"
                )
                self._db.execute(
                    "INSERT OR IGNORE INTO suppressions VALUES (?, ?, ?, ?)",
                    (list_id, hashed(key, address), kept, at),
                )
            self._db.execute("DELETE FROM suppressions WHERE address=?", (address,))
            # a removed suppression's record names them too, and its reasons may
            self._db.execute("DELETE FROM unsuppressions WHERE address=?", (address,))
            self._db.execute("COMMIT")
        except BaseException:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise
        self._suppressed = SuppressedCopy(self._db, ANY_LIST)
        return gone, sorted(str(row[0]) for row in rows)

    def scrub(self) -> bool:
        """Rewrite the database without free pages and empty the WAL, so deleted rows leave
        no copy in either file; False if another connection kept the WAL from emptying."""
        try:
            self._db.execute("PRAGMA temp_store=MEMORY")  # VACUUM's copy stays off the disk
            self._db.execute("VACUUM")
            busy, _, _ = self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        except sqlite3.Error as exc:
            raise StateError(f"cannot rewrite {self._path}: {exc}") from exc
        return int(busy) == 0
